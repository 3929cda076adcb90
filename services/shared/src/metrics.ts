/**
 * A service's Prometheus metrics (prom-client), one registry per service (tests and the demo run
 * several in one process), served on the service's own metrics address (`serveMetrics`), not on
 * its API.
 *
 * Names follow Prometheus' conventions: the `stafett_` prefix, base units (`_seconds`), `_total`
 * for counters. No label carries personal data or an unbounded id: labels are codes, states,
 * urgencies, route patterns, consumer names, countries and key ids, each a small fixed set per
 * service; never a referral or event id. docs/operations.md, "Metrics", lists every metric.
 *
 * Most values are read from the service's state when Prometheus scrapes (`onScrape`): what the
 * service holds is the truth, and a counter rebuilt from the journal survives a restart.
 */
import { createServer, type Server } from "node:http";
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type Metric,
} from "prom-client";
import type { Logger } from "./logger.js";
import type { Urgency } from "./types.js";

export const URGENCIES: readonly Urgency[] = [
  "URGENCY_IMMEDIATE",
  "URGENCY_HIGH",
  "URGENCY_NORMAL",
];

/** Latency buckets for a journal append (group commit and O_DSYNC: about a millisecond on SSD). */
const JOURNAL_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** HTTP request buckets: from a cached read to a publish that waits for the broker. */
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One referral as the metrics see it: no id, only what is counted. */
export interface ReferralView {
  /** Its state in the service's book (a fixed set per kind). */
  state: string;
  urgency: Urgency;
  /** When it entered the service's book (ms since the epoch). */
  since: number;
  /** Its deadline (ms since the epoch). */
  deadline: number;
  /** Whether nobody has accepted responsibility for it yet. */
  unaccepted: boolean;
}

/** What one pass over a book of referrals counts. */
export interface ReferralTally {
  byState: Map<string, number>;
  /** Age in seconds of the oldest unaccepted referral, per urgency (0 when none). */
  oldestUnacceptedSeconds: Map<Urgency, number>;
  /** Unaccepted referrals whose deadline falls within the next hour, per urgency. */
  dueNextHour: Map<Urgency, number>;
  /** Unaccepted referrals past their deadline, per urgency. */
  overdue: Map<Urgency, number>;
}

/** Counts a book of referrals in one pass (pure: unit-tested with a table). */
export function tallyReferrals(
  referrals: Iterable<ReferralView>,
  states: readonly string[],
  now: number,
): ReferralTally {
  const byState = new Map(states.map((s) => [s, 0]));
  const oldest = new Map<Urgency, number>(URGENCIES.map((u) => [u, 0]));
  const due = new Map<Urgency, number>(URGENCIES.map((u) => [u, 0]));
  const overdue = new Map<Urgency, number>(URGENCIES.map((u) => [u, 0]));
  const hour = now + 3_600_000;
  for (const r of referrals) {
    byState.set(r.state, (byState.get(r.state) ?? 0) + 1);
    if (!r.unaccepted) continue;
    const age = Math.max(0, (now - r.since) / 1_000);
    if (age > (oldest.get(r.urgency) ?? 0)) oldest.set(r.urgency, age);
    if (r.deadline < now) overdue.set(r.urgency, (overdue.get(r.urgency) ?? 0) + 1);
    else if (r.deadline <= hour) due.set(r.urgency, (due.get(r.urgency) ?? 0) + 1);
  }
  return { byState, oldestUnacceptedSeconds: oldest, dueNextHour: due, overdue };
}

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly httpDuration: Histogram<"method" | "route" | "status">;
  readonly journalAppend: Histogram;
  readonly journalAppendFailures: Counter;
  readonly refused: Counter<"code">;
  readonly quarantined: Counter<"code">;
  private readonly referrals: Gauge<"kind" | "state">;
  private readonly oldestUnaccepted: Gauge<"kind" | "urgency">;
  private readonly dueNextHour: Gauge<"kind" | "urgency">;
  private readonly overdue: Gauge<"kind" | "urgency">;
  private readonly escalations: Counter;
  private readonly refreshers: (() => void | Promise<void>)[] = [];

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.httpDuration = new Histogram({
      name: "stafett_http_request_duration_seconds",
      help: "HTTP requests by method, route pattern and status, and how long each took.",
      labelNames: ["method", "route", "status"],
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.journalAppend = new Histogram({
      name: "stafett_journal_append_duration_seconds",
      help: "Journal appends, from the call until the record is on disk.",
      buckets: JOURNAL_BUCKETS,
      registers,
    });
    this.journalAppendFailures = new Counter({
      name: "stafett_journal_append_failures_total",
      help: "Journal appends that failed (the step was not taken and will be redone).",
      registers,
    });
    this.refused = new Counter({
      name: "stafett_refused_messages_total",
      help: "Messages this party refused, by error code (each is quarantined).",
      labelNames: ["code"],
      registers,
    });
    this.quarantined = new Counter({
      name: "stafett_quarantined_messages_total",
      help: "Refused messages the quarantine stream confirmed, by error code.",
      labelNames: ["code"],
      registers,
    });
    this.referrals = new Gauge({
      name: "stafett_referrals",
      help: "Referrals this service holds, by book (kind) and state.",
      labelNames: ["kind", "state"],
      registers,
    });
    this.oldestUnaccepted = new Gauge({
      name: "stafett_oldest_unaccepted_referral_age_seconds",
      help: "Age of the oldest referral nobody has accepted yet, per urgency (0 when none).",
      labelNames: ["kind", "urgency"],
      registers,
    });
    this.dueNextHour = new Gauge({
      name: "stafett_referral_deadlines_next_hour",
      help: "Unaccepted referrals whose deadline falls within the next hour, per urgency.",
      labelNames: ["kind", "urgency"],
      registers,
    });
    this.overdue = new Gauge({
      name: "stafett_referrals_overdue",
      help: "Unaccepted referrals past their deadline, per urgency.",
      labelNames: ["kind", "urgency"],
      registers,
    });
    this.escalations = new Counter({
      name: "stafett_escalations_total",
      help: "Escalations: sent by a hub for a missed deadline, received by the coordinator.",
      registers,
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** A gauge in this registry. */
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return new Gauge<L>({ name, help, labelNames, registers: [this.registry] });
  }

  /** Work done before each scrape (reading state, asking the broker); errors leave old values. */
  onScrape(refresh: () => void | Promise<void>): void {
    this.refreshers.push(refresh);
  }

  /**
   * A book of referrals, counted on each scrape: `stafett_referrals{kind,state}` (every state
   * named, 0 when empty), the oldest unaccepted one's age, deadlines in the next hour and
   * overdue ones, per urgency.
   */
  referralBook(
    kind: string,
    states: readonly string[],
    list: () => Iterable<ReferralView>,
    clock: () => number = Date.now,
  ): void {
    this.onScrape(() => {
      const t = tallyReferrals(list(), states, clock());
      for (const [state, n] of t.byState) this.referrals.set({ kind, state }, n);
      for (const u of URGENCIES) {
        this.oldestUnaccepted.set({ kind, urgency: u }, t.oldestUnacceptedSeconds.get(u) ?? 0);
        this.dueNextHour.set({ kind, urgency: u }, t.dueNextHour.get(u) ?? 0);
        this.overdue.set({ kind, urgency: u }, t.overdue.get(u) ?? 0);
      }
    });
  }

  /** The escalations counter, read from the service's state (it never decreases). */
  escalationCount(count: () => number): void {
    this.onScrape(() => {
      this.escalations.reset();
      this.escalations.inc(count());
    });
  }

  /** The text Prometheus scrapes (format 0.0.4), after every refresh has run. */
  async scrape(): Promise<string> {
    for (const refresh of this.refreshers) {
      try {
        await refresh();
      } catch {
        // A refresh that fails (the broker is down) leaves its values as they were; readiness
        // says why.
      }
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A metric by name (tests). */
  metric(name: string): Metric | undefined {
    return this.registry.getSingleMetric(name);
  }
}

/**
 * Serves `GET /metrics` (and nothing else) on its own address: bind it where only the
 * monitoring network reaches (docs/operations.md, "Metrics"). Returns the bound URL and a stop.
 */
export async function serveMetrics(
  metrics: ServiceMetrics,
  listen: { host: string; port: number },
  log: Logger,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      return;
    }
    metrics.scrape().then(
      (text) => res.writeHead(200, { "content-type": metrics.contentType }).end(text),
      (err: unknown) => {
        log.error({ error: err instanceof Error ? err.name : typeof err }, "metrics failed");
        res.writeHead(500, { "content-type": "text/plain" }).end("metrics failed\n");
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : listen.port;
  const host = listen.host.includes(":") ? `[${listen.host}]` : listen.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
