/**
 * What an operator sees of a running service: readiness (readiness.ts) and metrics (metrics.ts),
 * fed by the party runtime the service runs on. Every service's `start` creates one
 * `Operations`, hands its `observer` to the party, calls `watchParty` once the party runs, adds
 * its own books of referrals to `metrics`, and gives `readiness` and `metrics` to its HTTP layer.
 *
 * The checks every party registers (docs/operations.md, "Health and readiness"):
 * - `nats`: connected to the broker;
 * - `consumer`: each of its durable consumers exists (asked of the broker);
 * - `journal`: its journal takes writes (it has not failed, and a durable write to its state
 *   directory succeeds: a full or read-only disk shows before a referral needs it);
 * - `trust`: its country's trust list in force is the one in the trust bucket, has not expired
 *   and does not expire within the warning time;
 * - `keys`: the key it signs with is in the trust list, valid and not about to expire, and the
 *   encryption key senders seal to (the newest valid one the list names) is one it holds.
 * Other modules add their own (`readiness.register` or `readiness.report`).
 */
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { Kvm, type KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { isNotFound, type Bus } from "./bus.js";
import type { StafettError } from "./errors.js";
import type { Logger } from "./logger.js";
import { decryptionKeysOf } from "./keyring.js";
import { ServiceMetrics, serveMetrics } from "./metrics.js";
import type { PartyObserver } from "./observer.js";
import type { Problem } from "./party.js";
import type { Identity } from "./pipeline.js";
import { TRUST_BUCKET } from "./provision.js";
import { failing, logReadiness, passing, Readiness, type CheckState } from "./readiness.js";
import { DEFAULT_EXPIRY_WARNING_MS, type ServiceRuntime } from "./service-config.js";
import { consumersOf } from "./subjects.js";
import type { TrustKey, TrustList, TrustStore } from "./trust.js";

/** What operations reads of a party (Party has all of it). */
export interface WatchedParty {
  readonly identity: Identity;
  readonly bus: Bus;
  readonly country: string;
  readonly stream: string;
  readonly trust: TrustStore;
  /** Why the journal refuses writes now (it recovers by itself once the disk takes them). */
  readonly journalFailure: StafettError | undefined;
  /** How the own clock differs from the broker's beyond the tolerance, while it does. */
  readonly clockDifference: Problem | undefined;
}

export interface OperationsOptions {
  /** The service's name, e.g. "gateway" (for logs). */
  service: string;
  log: Logger;
  /** The party's state directory (its journal's). */
  stateDir: string;
  /** Where /metrics listens; none: metrics are kept but not served. */
  metrics?: { host: string; port: number };
  /** How long before a key or the trust list expires the warnings start. */
  expiryWarningMs?: number;
  clock?: () => Date;
  /** How often readiness is evaluated in the background, so that changes are logged (15 s). */
  intervalMs?: number;
  /** How long the trust bucket may hold a newer list than the one in force before that fails. */
  trustGraceMs?: number;
  /** Process metrics (CPU, memory, event loop): on unless turned off (tests running many). */
  defaultMetrics?: boolean;
}

/** What the metrics call each expiring thing: the `what` label of stafett_expiry_warnings. */
type Expiring = "trust_list" | "partner_trust_list" | "signing_key" | "encryption_key";

export class Operations {
  readonly readiness = new Readiness();
  readonly metrics: ServiceMetrics;
  readonly observer: PartyObserver;
  private readonly log: Logger;
  private readonly clock: () => Date;
  private readonly warnMs: number;
  private readonly stops: (() => void | Promise<void>)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private metricsUrl: string | undefined;
  /** Which things are within their warning time (or past it), as the checks last found. */
  private readonly expiring = new Map<Expiring, boolean>();

  constructor(private readonly options: OperationsOptions) {
    this.log = options.log.child({ component: "operations" });
    this.clock = options.clock ?? (() => new Date());
    this.warnMs = options.expiryWarningMs ?? DEFAULT_EXPIRY_WARNING_MS;
    this.metrics = new ServiceMetrics({ defaultMetrics: options.defaultMetrics !== false });
    const m = this.metrics;
    this.observer = {
      journalAppended(seconds, failed) {
        m.journalAppend.observe(seconds);
        if (failed) m.journalAppendFailures.inc();
      },
      refused: (code) => m.refused.inc({ code }),
      quarantined: (code) => m.quarantined.inc({ code }),
    };
    logReadiness(this.readiness, this.log);
    const ready = m.gauge("stafett_ready", "1 when every readiness check passes, else 0.");
    const checks = m.gauge("stafett_readiness_check", "1 when the check passes, else 0.", [
      "check",
    ]);
    m.onScrape(async () => {
      const report = await this.readiness.evaluate();
      ready.set(report.ready ? 1 : 0);
      checks.reset();
      for (const [name, state] of Object.entries(report.checks))
        checks.set({ check: name }, state.ok ? 1 : 0);
    });
  }

  /** The operations of a service from its runtime configuration. */
  static forService(runtime: ServiceRuntime, log: Logger, service: string): Operations {
    return new Operations({
      service,
      log,
      stateDir: runtime.stateDir,
      ...(runtime.metrics === undefined ? {} : { metrics: runtime.metrics }),
      ...(runtime.expiryWarningMs === undefined
        ? {}
        : { expiryWarningMs: runtime.expiryWarningMs }),
    });
  }

  /** Registers the party's checks and metrics, and starts evaluating readiness in the background. */
  watchParty(party: WatchedParty): void {
    const nats = this.watchConnection(party.bus.nc);
    this.readiness.register("nats", () =>
      nats.connected
        ? passing()
        : failing(
            "ERR_UNAVAILABLE",
            "disconnected",
            `not connected to NATS since ${new Date(nats.since).toISOString()}`,
          ),
    );
    this.watchConsumers(party, nats);
    this.watchJournal(party);
    // What the bus watchers found missing (the stream, the trust bucket); the connection and
    // the consumers have checks of their own (nats, consumer).
    this.readiness.register("bus", () => {
      const missing = party.bus.health.problems.filter(
        (p) => p.component !== "connection" && !p.component.startsWith("consumer:"),
      );
      const first = missing[0];
      return first === undefined
        ? passing()
        : failing(
            first.code,
            first.reason,
            `missing on the bus since ${first.since}: ${missing.map((p) => p.component).join(", ")}`,
          );
    });
    this.readiness.register("clock", () => {
      const p = party.clockDifference;
      return p === undefined ? passing() : failing(p.code, p.reason, p.message);
    });
    this.watchTrust(party, nats);
    this.watchKeys(party);
    this.timer = setInterval(
      () => void this.readiness.evaluate().catch(() => undefined),
      this.options.intervalMs ?? 15_000,
    );
    this.timer.unref();
    void this.readiness.evaluate().catch(() => undefined);
  }

  /** Starts serving /metrics when an address is configured; returns its URL. */
  async listen(): Promise<string | undefined> {
    if (this.options.metrics === undefined) return undefined;
    const served = await serveMetrics(this.metrics, this.options.metrics, this.log);
    this.stops.push(() => served.close());
    this.metricsUrl = served.url;
    return served.url;
  }

  /** The URL /metrics is served at, once listening. */
  get url(): string | undefined {
    return this.metricsUrl;
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    for (const stop of this.stops.splice(0).reverse()) await stop();
  }

  /** Follows the connection's status: up from connect, down from a disconnect until a reconnect. */
  private watchConnection(nc: NatsConnection): { connected: boolean; since: number } {
    const state = { connected: !nc.isClosed(), since: Date.now() };
    const status = nc.status();
    void (async () => {
      for await (const s of status) {
        if (s.type === "disconnect" || s.type === "close") {
          if (state.connected) state.since = Date.now();
          state.connected = false;
        } else if (s.type === "reconnect") {
          state.connected = true;
          state.since = Date.now();
        }
      }
      state.connected = false;
    })();
    void nc.closed().then(() => {
      state.connected = false;
    });
    return state;
  }

  private watchConsumers(party: WatchedParty, nats: { connected: boolean }): void {
    const durables = consumersOf(party.identity.id).map((c) => c.durable);
    const pending = this.metrics.gauge(
      "stafett_consumer_pending_messages",
      "Messages in the stream for this consumer not yet delivered.",
      ["consumer"],
    );
    const ackPending = this.metrics.gauge(
      "stafett_consumer_ack_pending_messages",
      "Messages delivered to this consumer and not yet acknowledged.",
      ["consumer"],
    );
    const redelivered = this.metrics.gauge(
      "stafett_consumer_redelivered_messages",
      "Messages delivered to this consumer more than once and not yet acknowledged.",
      ["consumer"],
    );
    // One request per consumer for readiness and metrics together, at most once a second.
    let last: { at: number; result: Promise<Map<string, ConsumerState>> } | undefined;
    const ask = (): Promise<Map<string, ConsumerState>> => {
      if (last !== undefined && Date.now() - last.at < 1_000) return last.result;
      const result = (async () => {
        const out = new Map<string, ConsumerState>();
        if (!nats.connected) return out;
        const jsm = await party.bus.manager();
        await Promise.all(
          durables.map(async (durable) => {
            try {
              const info = await jsm.consumers.info(party.stream, durable);
              out.set(durable, {
                exists: true,
                pending: info.num_pending,
                ackPending: info.num_ack_pending,
                redelivered: info.num_redelivered,
              });
            } catch (err) {
              out.set(durable, { exists: isNotFound(err) ? false : undefined });
            }
          }),
        );
        return out;
      })();
      last = { at: Date.now(), result };
      result.catch(() => {
        last = undefined;
      });
      return result;
    };
    this.readiness.register("consumer", async () => {
      if (!nats.connected)
        return failing("ERR_UNAVAILABLE", "unknown", "cannot ask for the consumer without NATS");
      const states = await ask();
      const missing = durables.filter((d) => states.get(d)?.exists === false);
      if (missing.length > 0)
        return failing(
          "ERR_NOT_FOUND",
          "consumer_missing",
          `no durable consumer ${missing.join(", ")} on ${party.stream}: provision it again`,
        );
      const unknown = durables.filter((d) => states.get(d)?.exists !== true);
      if (unknown.length > 0)
        return failing(
          "ERR_UNAVAILABLE",
          "unknown",
          `the broker did not answer for ${unknown.join(", ")}`,
        );
      return passing();
    });
    this.metrics.onScrape(async () => {
      const states = await ask();
      for (const d of durables) {
        const s = states.get(d);
        if (s?.exists !== true) {
          for (const g of [pending, ackPending, redelivered]) g.remove({ consumer: d });
          continue;
        }
        pending.set({ consumer: d }, s.pending ?? 0);
        ackPending.set({ consumer: d }, s.ackPending ?? 0);
        redelivered.set({ consumer: d }, s.redelivered ?? 0);
      }
    });
  }

  private watchJournal(party: WatchedParty): void {
    const probe = join(this.options.stateDir, ".readyz-probe");
    this.readiness.register("journal", async () => {
      const refused = party.journalFailure;
      if (refused !== undefined)
        return failing("ERR_JOURNAL_WRITE", refused.reason ?? "io_error", refused.message);
      // A small durable write beside the journal: what a full, read-only or failing disk refuses.
      try {
        const file = await open(
          probe,
          constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (constants.O_DSYNC ?? 0),
          0o600,
        );
        try {
          await file.write(`${this.clock().toISOString()}\n`);
          if (constants.O_DSYNC === undefined) await file.datasync();
        } finally {
          await file.close();
        }
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        return failing(
          "ERR_JOURNAL_WRITE",
          "not_writable",
          `the state directory takes no writes (${typeof code === "string" ? code : "error"})`,
        );
      }
      return passing();
    });
  }

  private watchTrust(party: WatchedParty, nats: { connected: boolean }): void {
    const version = this.metrics.gauge(
      "stafett_trust_list_version",
      "Version of the trust list in force, per country.",
      ["country"],
    );
    const toExpiry = this.metrics.gauge(
      "stafett_trust_list_time_to_expiry_seconds",
      "Seconds until the trust list in force expires (negative once expired), per country.",
      ["country"],
    );
    const warnings = this.metrics.gauge(
      "stafett_expiry_warnings",
      "1 while a key or trust list is within the warning time of its expiry, or past it.",
      ["what"],
    );
    const expiring = this.expiring;
    this.metrics.onScrape(() => {
      const now = this.clock().getTime();
      version.reset();
      toExpiry.reset();
      for (const list of party.trust.lists) {
        version.set({ country: list.country }, list.version);
        if (list.notAfter !== undefined)
          toExpiry.set({ country: list.country }, (Date.parse(list.notAfter) - now) / 1_000);
      }
      for (const what of [
        "trust_list",
        "partner_trust_list",
        "signing_key",
        "encryption_key",
      ] as const)
        warnings.set({ what }, expiring.get(what) === true ? 1 : 0);
    });
    // The bucket's latest list: one in force that is older means the watch is stuck, or the new
    // list was refused (the log says why).
    let kv: Promise<KV> | undefined;
    let behindSince: number | undefined;
    const grace = this.options.trustGraceMs ?? 10_000;
    this.readiness.register("trust", async () => {
      const store = party.trust;
      const now = this.clock().getTime();
      const [own, ...partners] = store.lists;
      if (own === undefined)
        return failing("ERR_TRUST_LIST_INVALID", "missing", "no trust list in force");
      const notes: string[] = [];
      let partnerWarning = false;
      for (const p of partners) {
        const s = listExpiry(p, now, this.warnMs);
        if (s !== undefined) {
          partnerWarning = true;
          notes.push(s.message);
        }
      }
      expiring.set("partner_trust_list", partnerWarning);
      const ownState = listExpiry(own, now, this.warnMs);
      expiring.set("trust_list", ownState !== undefined);
      if (ownState !== undefined) return failing(ownState.code, ownState.reason, ownState.message);
      if (nats.connected) {
        try {
          kv ??= new Kvm(party.bus.nc).open(TRUST_BUCKET);
          const entry = await (await kv).get(party.country);
          const inBucket = entry === null ? undefined : versionOf(entry.string());
          if (inBucket !== undefined && inBucket > own.version) {
            behindSince ??= Date.now();
            if (Date.now() - behindSince >= grace)
              return failing(
                "ERR_TRUST_LIST_INVALID",
                "not_in_force",
                `the trust bucket holds version ${inBucket} of the ${own.country} list, but version ${own.version} is in force: see the log for why it was refused`,
              );
          } else behindSince = undefined;
        } catch {
          kv = undefined;
        }
      }
      return passing(notes.length === 0 ? undefined : notes.join("; "));
    });
  }

  private watchKeys(party: WatchedParty): void {
    const valid = this.metrics.gauge(
      "stafett_key_valid",
      "1 when the trust list holds this private key valid now (not revoked, within its validity).",
      ["use", "kid"],
    );
    const toExpiry = this.metrics.gauge(
      "stafett_key_time_to_expiry_seconds",
      "Seconds until the trust list's validity of this private key ends (negative once past).",
      ["use", "kid"],
    );
    const held = (): { use: "sig" | "enc"; kid: string }[] => {
      const identity = party.identity as Identity & { signingKeys?: readonly { kid: string }[] };
      const signing = identity.signingKeys ?? [identity.signing];
      return [
        ...signing.map((k) => ({ use: "sig" as const, kid: k.kid })),
        ...decryptionKeysOf(identity).map((k) => ({ use: "enc" as const, kid: k.kid })),
      ];
    };
    this.metrics.onScrape(() => {
      const now = this.clock().getTime();
      valid.reset();
      toExpiry.reset();
      for (const { use, kid } of held()) {
        const entry = party.trust.key(kid);
        valid.set({ use, kid }, entry !== undefined && usableAt(entry, now) ? 1 : 0);
        if (entry !== undefined)
          toExpiry.set({ use, kid }, (Date.parse(entry.notAfter) - now) / 1_000);
      }
    });
    this.readiness.register("keys", () => {
      const states = keyStates(party.identity, party.trust, this.clock().getTime(), this.warnMs);
      this.expiring.set("signing_key", states.signingExpiring);
      this.expiring.set("encryption_key", states.encryptionExpiring);
      return states.check;
    });
  }
}

interface ConsumerState {
  /** True when the broker has it, false when it said it has not, undefined when it did not say. */
  exists: boolean | undefined;
  pending?: number;
  ackPending?: number;
  redelivered?: number;
}

function usableAt(key: TrustKey, now: number): boolean {
  return (
    key.revokedAt === undefined &&
    Date.parse(key.notBefore) <= now &&
    now <= Date.parse(key.notAfter)
  );
}

/** A trust list that has expired or expires within `warnMs`, as a failing state; else undefined. */
export function listExpiry(
  list: TrustList,
  now: number,
  warnMs: number,
):
  { code: "ERR_TRUST_LIST_INVALID" | "ERR_EXPIRING"; reason: string; message: string } | undefined {
  if (list.notAfter === undefined) return undefined;
  const end = Date.parse(list.notAfter);
  if (end <= now)
    return {
      code: "ERR_TRUST_LIST_INVALID",
      reason: "expired",
      message: `the ${list.country} trust list (version ${list.version}) expired at ${list.notAfter}: it stays in force until the coordinator signs a new one`,
    };
  if (end - now <= warnMs)
    return {
      code: "ERR_EXPIRING",
      reason: "trust_list",
      message: `the ${list.country} trust list (version ${list.version}) expires at ${list.notAfter}, in ${humanDuration(end - now)}`,
    };
  return undefined;
}

/**
 * The `keys` check: the key the identity signs with must be listed, valid now and not within
 * `warnMs` of its end; the encryption key senders seal to (the newest valid one of the
 * organisation's, as TrustStore.encryptionKeys picks it) must be held and not about to expire.
 */
export function keyStates(
  identity: Identity,
  trust: TrustStore,
  now: number,
  warnMs: number,
): { check: CheckState; signingExpiring: boolean; encryptionExpiring: boolean } {
  const problems: CheckState[] = [];
  let signingExpiring = false;
  let encryptionExpiring = false;
  const sig = trust.key(identity.signing.kid);
  if (sig === undefined)
    problems.push(
      failing(
        "ERR_UNKNOWN_KEY",
        "not_listed",
        `the signing key ${identity.signing.kid} is not in the trust list: readers refuse what it signs`,
      ),
    );
  else if (sig.revokedAt !== undefined)
    problems.push(
      failing(
        "ERR_KEY_REVOKED",
        "revoked",
        `the signing key ${sig.kid} is revoked (${sig.revokedAt})`,
      ),
    );
  else if (!usableAt(sig, now))
    problems.push(
      failing(
        "ERR_KEY_NOT_VALID",
        "outside_validity",
        `the signing key ${sig.kid} is valid from ${sig.notBefore} to ${sig.notAfter}`,
      ),
    );
  else if (Date.parse(sig.notAfter) - now <= warnMs) {
    signingExpiring = true;
    problems.push(
      failing(
        "ERR_EXPIRING",
        "signing_key",
        `the signing key ${sig.kid} expires at ${sig.notAfter}, in ${humanDuration(Date.parse(sig.notAfter) - now)}: install its successor`,
      ),
    );
  }
  const org = trust.organisation(identity.id);
  const sealTo = org?.keys
    .filter((k) => k.use === "enc" && usableAt(k, now))
    .sort((a, b) => Date.parse(b.notBefore) - Date.parse(a.notBefore))[0];
  if (sealTo === undefined)
    problems.push(
      failing(
        "ERR_KEY_NOT_VALID",
        "no_valid_key",
        `the trust list names no valid encryption key of ${identity.id}: nobody can seal to it`,
      ),
    );
  else if (!decryptionKeysOf(identity).some((k) => k.kid === sealTo.kid))
    problems.push(
      failing(
        "ERR_KEY_INVALID",
        "not_held",
        `senders seal to the encryption key ${sealTo.kid}, whose private key this service does not hold: add its file to STAFETT_ENCRYPTION_KEY`,
      ),
    );
  else if (Date.parse(sealTo.notAfter) - now <= warnMs) {
    encryptionExpiring = true;
    problems.push(
      failing(
        "ERR_EXPIRING",
        "encryption_key",
        `the encryption key ${sealTo.kid} expires at ${sealTo.notAfter}, in ${humanDuration(Date.parse(sealTo.notAfter) - now)}: install its successor`,
      ),
    );
  }
  const first = problems[0];
  const check: CheckState =
    first === undefined || first.ok
      ? passing()
      : problems.length === 1
        ? first
        : failing(
            first.code,
            first.reason,
            problems.map((p) => (p.ok ? "" : p.message)).join("; "),
          );
  return { check, signingExpiring, encryptionExpiring };
}

/** A trust list's version, read from its payload without verifying it (comparison only). */
function versionOf(jws: string): number | undefined {
  try {
    const payload = JSON.parse(
      Buffer.from(jws.split(".")[1] ?? "", "base64url").toString("utf8"),
    ) as { version?: unknown };
    return typeof payload.version === "number" ? payload.version : undefined;
  } catch {
    return undefined;
  }
}

/** A duration as a person reads it; each unit is chosen on the rounded value (119.9 min is 2 h). */
function humanDuration(ms: number): string {
  const s = Math.round(ms / 1_000);
  if (s < 120) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.round(s / 3_600);
  if (h < 48) return `${h} h`;
  return `${Math.round(s / 86_400)} d`;
}
