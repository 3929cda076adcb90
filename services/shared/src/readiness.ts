/**
 * Readiness: whether a service can do its work now, as a set of named checks that any module
 * feeds. The HTTP layer serves it as `GET /readyz` (200, or 503 naming the failing checks with
 * their reasons); the metrics give it as `stafett_ready` and `stafett_readiness_check`.
 *
 * A module takes part in one of two ways:
 * - `register(name, check)`: a check that is run when readiness is asked (a request to the
 *   broker, a probe write), each with a time limit, so one that hangs counts as failing;
 * - `report(name, state)`: a state that the module holds and changes when it learns something
 *   (a watcher that stopped, a journal that failed), kept until reported again or cleared.
 *
 * Names are short, lower-case and fixed by the code (they are metric labels); reasons are
 * sentences about the service's own machinery, never about a referral or a person.
 */
import { StafettError, type ErrorCode } from "./errors.js";
import type { Logger } from "./logger.js";

/**
 * One check's answer: fine (with an optional note), or failing with a code, a short reason
 * within the code (as a StafettError has) and a sentence for the operator.
 */
export type CheckState =
  | { readonly ok: true; readonly note?: string }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      readonly reason: string;
      readonly message: string;
    };

export type Check = () => CheckState | Promise<CheckState>;

export interface ReadinessReport {
  ready: boolean;
  /** The names of the failing checks, sorted. */
  failing: string[];
  checks: Record<string, CheckState>;
}

export interface ReadinessOptions {
  /** How long one registered check may take before it counts as failing (default 2 s). */
  checkTimeoutMs?: number;
  /** Answers younger than this are reused: a burst of probes runs the checks once (default 500 ms). */
  maxAgeMs?: number;
}

const NAME = /^[a-z][a-z0-9_]{0,39}$/;

/** A failing state, for checks to return. */
export function failing(code: ErrorCode, reason: string, message: string): CheckState {
  return { ok: false, code, reason, message };
}

/** A passing state, with an optional note (a warning that does not make the service unready). */
export function passing(note?: string): CheckState {
  return note === undefined ? { ok: true } : { ok: true, note };
}

export class Readiness {
  private readonly checks = new Map<string, Check>();
  private readonly reported = new Map<string, CheckState>();
  private readonly listeners: ((report: ReadinessReport) => void)[] = [];
  private readonly checkTimeoutMs: number;
  private readonly maxAgeMs: number;
  private last: { at: number; report: ReadinessReport } | undefined;
  private running: Promise<ReadinessReport> | undefined;

  constructor(options: ReadinessOptions = {}) {
    this.checkTimeoutMs = options.checkTimeoutMs ?? 2_000;
    this.maxAgeMs = options.maxAgeMs ?? 500;
  }

  /** Adds a check run on every evaluation; returns a function that removes it. */
  register(name: string, check: Check): () => void {
    assertName(name);
    if (this.checks.has(name) || this.reported.has(name))
      throw new Error(`readiness check ${name} is registered twice`);
    this.checks.set(name, check);
    this.last = undefined;
    return () => {
      if (this.checks.get(name) === check) this.checks.delete(name);
      this.last = undefined;
    };
  }

  /** Sets the state of a check that its module holds (until reported again or cleared). */
  report(name: string, state: CheckState): void {
    assertName(name);
    if (this.checks.has(name)) throw new Error(`readiness check ${name} is a registered check`);
    this.reported.set(name, state);
    this.last = undefined;
  }

  /** Removes a reported state. */
  clear(name: string): void {
    this.reported.delete(name);
    this.last = undefined;
  }

  /** Called with every fresh evaluation (for logs and metrics). */
  onEvaluated(listener: (report: ReadinessReport) => void): void {
    this.listeners.push(listener);
  }

  /** Runs the registered checks (at most once per `maxAgeMs`) and adds the reported states. */
  evaluate(): Promise<ReadinessReport> {
    if (this.last !== undefined && Date.now() - this.last.at < this.maxAgeMs)
      return Promise.resolve(this.last.report);
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<ReadinessReport> {
    const entries = await Promise.all(
      [...this.checks].map(
        async ([name, check]) => [name, await this.runOne(name, check)] as const,
      ),
    );
    const checks: Record<string, CheckState> = {};
    for (const [name, state] of [...entries, ...this.reported].sort(([a], [b]) =>
      a.localeCompare(b),
    ))
      checks[name] = state;
    const failingNames = Object.keys(checks).filter((n) => checks[n]?.ok === false);
    const report = { ready: failingNames.length === 0, failing: failingNames, checks };
    this.last = { at: Date.now(), report };
    for (const l of this.listeners) l(report);
    return report;
  }

  private async runOne(name: string, check: Check): Promise<CheckState> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        Promise.resolve().then(check),
        new Promise<CheckState>((resolve) => {
          timer = setTimeout(
            () =>
              resolve(
                failing(
                  "ERR_UNAVAILABLE",
                  "timeout",
                  `the ${name} check gave no answer within ${this.checkTimeoutMs} ms`,
                ),
              ),
            this.checkTimeoutMs,
          );
        }),
      ]);
    } catch (err) {
      // A check that throws is failing; only a coded error's reason is shown, never a message
      // from a library (it may quote what it was given).
      return err instanceof StafettError
        ? failing(err.code, err.reason, err.message)
        : failing("ERR_UNAVAILABLE", "check_failed", `the ${name} check failed (${kindOf(err)})`);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }
}

function assertName(name: string): void {
  if (!NAME.test(name))
    throw new Error(`readiness check name ${JSON.stringify(name)} is not valid`);
}

function kindOf(err: unknown): string {
  if (!(err instanceof Error)) return typeof err;
  return /^\w{1,64}$/.test(err.name) ? err.name : "Error";
}

/**
 * Logs each check as it starts or stops failing (warn with its code and reason, then info when
 * it passes again), and repeats a failure every `repeatMs` while it lasts: an expiry warning
 * keeps showing in the log until someone acts.
 */
export function logReadiness(readiness: Readiness, log: Logger, repeatMs = 3_600_000): void {
  const failingSince = new Map<string, { message: string; loggedAt: number }>();
  readiness.onEvaluated((report) => {
    const now = Date.now();
    for (const [name, state] of Object.entries(report.checks)) {
      const known = failingSince.get(name);
      if (state.ok) {
        if (known !== undefined) {
          failingSince.delete(name);
          log.info({ check: name }, "readiness check passes again");
        }
        continue;
      }
      if (
        known === undefined ||
        known.message !== state.message ||
        now - known.loggedAt >= repeatMs
      ) {
        failingSince.set(name, { message: state.message, loggedAt: now });
        log.warn(
          { check: name, code: state.code, reason: state.reason, detail: state.message },
          "readiness check failing",
        );
      }
    }
    for (const name of [...failingSince.keys()])
      if (!(name in report.checks)) failingSince.delete(name);
  });
}
