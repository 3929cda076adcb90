/**
 * The runtime every Stafett service shares: one organisation's identity on the bus, the trust
 * lists in force (watched), its own journal, and the receive loop that verifies every message,
 * quarantines and answers what fails, refuses replays, and hands the rest to the service.
 *
 * Write-ahead: a service decides (a plan: records, and events with derived ids); the party
 * issues the plan's events (sealed, signed), then writes the plan, records and issued events
 * byte for byte, with the fact that the message was handled, to the journal in one durable
 * append; applies the records; only then publishes the events; then acks the message and marks
 * the plan done (a short line, written with the next batch). So nothing it sends can be
 * answered before it is on disk, and a crash anywhere leaves either nothing (the message comes
 * again and is decided again) or a plan that is published again, byte for byte, on restart or
 * redelivery (the stream drops a second copy by its id). Timers and officers' commands
 * (`carryOut`) go the same way. Plans whose publishing failed are retried in the background.
 *
 * Fail safe and loud: a journal that cannot be written refuses at once; the message is not
 * acked (it comes again after the consumer's back-off), the party reports itself not ready
 * with the reason, and on the last delivery the message is quarantined with it. A clock that
 * differs from the broker's beyond a tolerance makes it not ready and stops it handling and
 * issuing until the clocks agree. A message that crashes the process is handled alone on its
 * next deliveries, and after it crashed it alone `poisonAfter` times, quarantined and its sender
 * told, without touching the messages around it.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DiscardPolicy, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { nkeyAuthenticator, type ConnectionOptions } from "@nats-io/transport-node";
import {
  Bus,
  isRetryablePublishError,
  type BusConfig,
  type Consumption,
  type Delivery,
  type OutgoingMessage,
} from "./bus.js";
import { isStafettError, StafettError, type ErrorCode } from "./errors.js";
import { peekReferralId } from "./codec.js";
import { isRefusal, type Outgoing, type Plan, type Reseal, type Verdict } from "./decision.js";
import { crashInjection, crashPoint, poisonPoint, systemNow } from "./faults.js";
import { open, recipientKids, seal } from "./jwe.js";
import { keyedIds, type DeriveId } from "./ids.js";
import {
  Journal,
  type Appended,
  type CompactReport,
  type JournalHealth,
  type JournalRef,
  type KeptLine,
} from "./journal.js";
import {
  compactLines,
  DEFAULT_RETENTION,
  type ErasureCause,
  type Holdings,
  type Retention,
} from "./retention.js";
import type { KeyHandle } from "./keys.js";
import type { Logger } from "./logger.js";
import { KeyedMutex, Turns } from "./mutex.js";
import {
  checkOwnKeyUsable,
  countersign,
  digestOf,
  issue,
  receive,
  type Identity,
  type IssueInput,
  type IssuedEvent,
  type ReceiveContext,
  type ReceiveResult,
  type VerifiedEvent,
} from "./pipeline.js";
import {
  consumersOf,
  parseOrgId,
  quarantineStreamName,
  quarantineSubject,
  streamName,
} from "./subjects.js";
import { watchTrust, type TrustWatch } from "./trust-watch.js";
import type { TrustStore } from "./trust.js";
import type { ServiceRuntime } from "./service-config.js";
import { inboxPrefixOf } from "./permissions.js";
import { decryptionKeyFor, Keyring } from "./keyring.js";
import type { PartyObserver } from "./observer.js";
import { ORG_API_PREFIX } from "./accounts.js";

/** The stream, in the organisation's own account, whose stored times give the broker's clock. */
const CLOCK_STREAM = "STAFETT_CLOCK";
const CLOCK_SUBJECT = "stafett-clock";
/** How long `onChange` waits to tell of a change, so a burst of changes is told once. */
const CHANGE_COALESCE_MS = 150;

/** How the own clock is compared with the broker's. */
export interface ClockCheckOptions {
  /** How often (default 30 s; every 2 s while it differs). */
  checkMs?: number;
  /** How far the clocks may differ (default 60 s; receivers refuse events 5 minutes ahead). */
  toleranceMs?: number;
}

export interface PartyOptions<R> {
  identity: Identity;
  /** The own country's trust anchors (partners' anchors come from the own trust list). */
  anchors: readonly KeyHandle[];
  bus: BusConfig;
  log: Logger;
  /** Directory of this party's own state (its journal). */
  stateDir: string;
  /**
   * Applies one journal record to the service's state; called on replay and after each append,
   * with the record's place in the journal (see `Party.stored`).
   */
  apply: (record: R, at: JournalRef) => void;
  receive?: Pick<ReceiveContext, "maxBytes" | "futureSkewMs" | "maxAgeMs">;
  /** Messages handled at once per consumer (default `DEFAULT_CONCURRENCY`). */
  concurrency?: number;
  /** The clock (default the machine's): for event times, and the keys a personal part is sealed to. */
  now?: () => Date;
  /** How long a countersigned event waits between attempts while a partner's link is down. */
  linkRetryMs?: number;
  /** Told of journal appends, refusals and quarantine copies (operations' metrics). */
  observer?: PartyObserver;
  /** The clock comparison with the broker's; `false`: none. */
  clock?: ClockCheckOptions | false;
  /** How often a journal that failed probes the disk (default 1 s). */
  journalProbeMs?: number;
  /** How long a plan whose publishing failed waits before it is published again (default 2 s). */
  outboxRetryMs?: number;
  /** Crashes of the process while handling a message alone before it is quarantined (default 2). */
  poisonAfter?: number;
  /**
   * Told when a publish to a partner (store and forward) first fails, and when one succeeds
   * after failures: the liaison's signal of a partner link's state.
   */
  onLink?: (subject: string, up: boolean) => void;
  /** What the service's state does for erasure, retention and compaction (none: neither). */
  holdings?: Holdings<R>;
  /** How long personal parts and metadata are kept (default `DEFAULT_RETENTION`). */
  retention?: Retention;
  /** How often retention is applied and the journal compacted (default 1 h; 0: never by itself). */
  sweepMs?: number;
}

/**
 * Messages a consumer handles at once unless told otherwise. A handler spends most of its time
 * waiting (publish acks, the journal's fsync), so 8 left a hub draining a backlog idle a quarter
 * of the time; 32 drained 50,000 referrals about 30 % faster and cut the CPU per referral,
 * because more publishes and acks share each socket write (bench/results.md). Events about one
 * referral are still handled one at a time, in delivery order.
 */
export const DEFAULT_CONCURRENCY = 32;

/** How one consumer is read: its durable, how many at once, and whether the party is the addressee. */
export interface ConsumerOptions {
  durable: string;
  concurrency?: number;
  /** "relay": events on this consumer are addressed to others (a liaison's border traffic). */
  mode?: "addressee" | "relay";
}

/** What decides about a verified message: a role's pure `decide`, given the party's state. */
export type Decide<R> = (event: VerifiedEvent, delivery: Delivery) => Verdict<R>;

/** The message a journal line handled. */
export type Seen = { id: string; seq: number; durable: string; referralId?: string };
/** A referral's personal part erased (on request, or its retention period ended). */
export type Erasure = { referralId: string; cause: ErasureCause; at: string };
/** A delivery handled alone because it may have crashed the process (see `Party.handle`). */
export type Tried = { durable: string; seq: number };
/** An event a plan publishes, as journaled: published again byte for byte, under its id. */
export interface JournaledMessage {
  subject: string;
  headers: Record<string, string>;
  /** The message body, standard base64. */
  bytes: string;
  /** Waits while a partner's link is down (a countersigned event for a partner). */
  patient?: true;
}
/**
 * A journal line. Everything one step did is one line: the handled message's id, the records
 * it led to and the events it publishes (`out`). A line is on disk whole or not at all, so a
 * crash can never keep "handled" and lose part of what the handling did. `{ done: seq }` says
 * the plan on the line with that sequence number is published; `{ tried }` that a delivery was
 * handled alone (counted to recognise a message that crashes the process). Journals written
 * before held one line per record (`{ r }`) and one for the id (`{ seen }`); they still replay.
 */
export type JournalLine<R> =
  | { seen?: Seen; rs: R[]; out?: JournaledMessage[] }
  | { done: number }
  | { tried: Tried }
  | { erase: Erasure }
  | { forget: { referralId: string; at: string } }
  | { seen: Seen }
  | { r: R };

/** What a journal line holds. */
export interface ReadLine<R> {
  seen?: Seen;
  records: { record: R; at: JournalRef }[];
  out?: JournaledMessage[];
  done?: number;
  tried?: Tried;
  erase?: Erasure;
  forget?: string;
}

/** What a journal line holds: the message it handled, its records with their places, its plan. */
export function readJournalLine<R>(line: JournalLine<R>, at: JournalRef): ReadLine<R> {
  if ("done" in line) return { records: [], done: line.done };
  if ("tried" in line) return { records: [], tried: line.tried };
  if ("erase" in line) return { records: [], erase: line.erase };
  if ("forget" in line) return { records: [], forget: line.forget.referralId };
  const seen = "seen" in line && line.seen !== undefined ? { seen: line.seen } : {};
  if ("rs" in line)
    return {
      ...seen,
      records: line.rs.map((record, index) => ({ record, at: { ...at, index } })),
      ...(line.out === undefined || line.out.length === 0 ? {} : { out: line.out }),
    };
  if ("r" in line) return { ...seen, records: [{ record: line.r, at }] };
  return { ...seen, records: [] };
}

/** Why a party is not ready. */
export interface Problem {
  code: ErrorCode;
  reason: string;
  message: string;
  since?: string;
}

/** Whether a party can do its work now, and if not, why. */
export interface PartyReadiness {
  ready: boolean;
  problems: Problem[];
}

/** What is known of a refused message: enough to quarantine it, and its sender when verified. */
interface About {
  digest: string;
  eventId?: string;
  referralId?: string;
  eventType?: string;
  sender?: string;
}

/** Failures that are retried later rather than refused: the message is not the problem. */
const RETRY_LATER: ReadonlySet<ErrorCode> = new Set(["ERR_JOURNAL_WRITE", "ERR_CLOCK_SKEW"]);

function isRetryLater(err: unknown): err is StafettError {
  return isStafettError(err) && RETRY_LATER.has(err.code);
}

/** An event ready to publish, and whether it waits for a partner's link. */
type Planned = OutgoingMessage & { patient?: boolean };

const toJournaled = (m: Planned): JournaledMessage => ({
  subject: m.subject,
  headers: m.headers,
  bytes: Buffer.from(m.bytes).toString("base64"),
  ...(m.patient === true ? { patient: true as const } : {}),
});

const fromJournaled = (m: JournaledMessage): Planned => ({
  subject: m.subject,
  headers: m.headers,
  bytes: new Uint8Array(Buffer.from(m.bytes, "base64")),
  ...(m.patient === true ? { patient: true } : {}),
});

const aboutOf = (v: VerifiedEvent): About => ({
  digest: v.digest,
  eventId: v.event.id,
  referralId: v.event.referralId,
  eventType: v.event.type,
  sender: v.issuer.id,
});

const refOf = (at: Appended): JournalRef => ({ offset: at.offset, length: at.length });

/**
 * Connection options for the credentials a runtime carries: an nkey, or a user and password;
 * and TLS (the CA the broker's certificate must chain to, a client certificate for mutual TLS).
 */
export function natsAuth(n: ServiceRuntime["nats"]): Partial<ConnectionOptions> {
  const tls = n.tls === undefined ? {} : { tls: { ...n.tls } };
  if (n.nkeySeed !== undefined) return { authenticator: nkeyAuthenticator(n.nkeySeed), ...tls };
  if (n.user !== undefined)
    return { user: n.user, ...(n.pass === undefined ? {} : { pass: n.pass }), ...tls };
  return tls;
}

/**
 * The party's secret for deriving event ids (ids.ts keyedIds): 32 random bytes made at its first
 * start, kept in its state directory (0600) beside its journal, which it must outlive.
 */
function idSecret(stateDir: string): Uint8Array {
  const file = join(stateDir, "id-secret");
  if (!existsSync(file)) {
    mkdirSync(stateDir, { recursive: true });
    try {
      writeFileSync(file, randomBytes(32), { mode: 0o600, flag: "wx" });
    } catch (err) {
      if ((err as { code?: unknown }).code !== "EEXIST") throw err;
    }
  }
  return new Uint8Array(readFileSync(file));
}

/** A publish that failed because the way to the partner's broker is down, not refused there. */
const LINK_DOWN = /closed|disconnect|connection|reconnect/i;

/** Where a party remembers the highest trust list version it held, per country. */
const TRUST_VERSIONS = "trust-versions.json";

function readTrustVersions(stateDir: string, country: string): Record<string, number> {
  const file = join(stateDir, TRUST_VERSIONS);
  if (existsSync(file)) {
    const parsed: unknown = JSON.parse(readFileSync(file, "utf8"));
    const out: Record<string, number> = {};
    if (parsed !== null && typeof parsed === "object")
      for (const [c, v] of Object.entries(parsed)) if (typeof v === "number") out[c] = v;
    return out;
  }
  // Before partners' versions were kept: the own list's version alone, in its own file.
  const legacy = join(stateDir, "trust-version");
  return existsSync(legacy) ? { [country]: Number(readFileSync(legacy, "utf8")) || 0 } : {};
}

export class Party<R> {
  readonly identity: Identity;
  readonly bus: Bus;
  readonly log: Logger;
  readonly country: string;
  readonly stream: string;
  private readonly trustWatch: TrustWatch;
  private readonly journal: Journal<JournalLine<R>>;
  private readonly seen = new Map<string, number>();
  private readonly options: PartyOptions<R>;
  private readonly consumptions: Consumption[] = [];
  readonly locks = new KeyedMutex();
  /** Derives the ids of events derived from others, keyed with this party's secret. */
  readonly derive: DeriveId;
  private stopping = false;
  /** Plans journaled and not yet published, by the sequence number of their line. */
  private readonly undone = new Map<number, { at: JournalRef; seenId?: string }>();
  private readonly undoneBySeen = new Map<string, number>();
  private readonly publishing = new Map<number, Promise<void>>();
  private outboxTimer: NodeJS.Timeout | undefined;
  /** Deliveries handled alone (`${durable}:${seq}`), counted from the journal. */
  private readonly tried = new Map<string, number>();
  /** Deliveries whose handling failed in this process (so a redelivery is no crash suspect). */
  private readonly failedHere = new Set<string>();
  private readonly turns = new Turns();
  private clockProblem: Problem | undefined;
  private clockWaiters: { go: () => void; stop: (e: Error) => void }[] = [];
  private clockTimer: NodeJS.Timeout | undefined;
  private clockWarned = false;
  /** Whether the own account's clock stream exists (made at the first comparison). */
  private clockStream = false;
  /** Referrals whose personal part is erased (until their metadata is forgotten). */
  private readonly erasures = new Map<string, Erasure>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private readonly changeListeners = new Set<() => void>();
  private changeTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<CompactReport<JournalLine<R>> | undefined> | undefined;

  private constructor(
    options: PartyOptions<R>,
    bus: Bus,
    trustWatch: TrustWatch,
    journal: Journal<JournalLine<R>>,
  ) {
    this.options = options;
    this.identity = options.identity;
    this.bus = bus;
    this.trustWatch = trustWatch;
    this.journal = journal;
    this.log = options.log;
    this.country = parseOrgId(options.identity.id).country;
    this.stream = streamName(this.country);
    this.derive = keyedIds(idSecret(options.stateDir));
  }

  /** Starts the party of a service from its runtime configuration. */
  static forService<R>(
    runtime: ServiceRuntime,
    log: Logger,
    apply: (record: R, at: JournalRef) => void,
    extra: Pick<
      PartyOptions<R>,
      | "concurrency"
      | "receive"
      | "now"
      | "linkRetryMs"
      | "clock"
      | "outboxRetryMs"
      | "onLink"
      | "holdings"
      | "retention"
      | "sweepMs"
    > = {},
  ): Promise<Party<R>> {
    const observer = runtime.observer === undefined ? {} : { observer: runtime.observer };
    return Party.start<R>({
      identity: runtime.identity,
      anchors: runtime.anchors,
      bus: {
        servers: runtime.nats.servers,
        name: `stafett-${runtime.identity.id}`,
        connection: { ...natsAuth(runtime.nats), inboxPrefix: inboxPrefixOf(runtime.identity.id) },
        // The organisation's own account imports the JetStream API it may use under this prefix.
        apiPrefix: ORG_API_PREFIX,
      },
      log,
      stateDir: runtime.stateDir,
      apply,
      ...observer,
      ...(runtime.retention === undefined ? {} : { retention: runtime.retention }),
      ...(runtime.sweepMs === undefined ? {} : { sweepMs: runtime.sweepMs }),
      ...extra,
    });
  }

  static async start<R>(options: PartyOptions<R>): Promise<Party<R>> {
    const path = join(options.stateDir, "journal.jsonl");
    let party: Party<R> | undefined;
    let opened;
    try {
      opened = Journal.openForReplay<JournalLine<R>>(path, {
        onHealth: (h, cause) => party?.journalHealth(h, cause),
        ...(options.journalProbeMs === undefined ? {} : { probeMs: options.journalProbeMs }),
      });
    } catch (err) {
      const coded = isStafettError(err)
        ? { code: err.code, reason: err.reason, at: err.field }
        : {};
      options.log.fatal({ ...coded, err, file: path }, "the journal cannot be read; not starting");
      throw err;
    }
    const { journal, records, report } = opened;
    if (report.torn !== undefined)
      options.log.warn(
        {
          code: "ERR_JOURNAL_DAMAGED",
          reason: "torn_tail",
          file: path,
          offset: report.torn.offset,
          bytes: report.torn.bytes,
          kept_in: report.torn.keptIn,
        },
        "the journal ended in a torn write (never acknowledged): cut off and kept aside",
      );
    if (report.duplicates > 0)
      options.log.warn(
        { code: "ERR_JOURNAL_DAMAGED", reason: "duplicate", file: path, lines: report.duplicates },
        "the journal repeats lines; each is replayed once",
      );
    journal.onAppend = options.observer?.journalAppended?.bind(options.observer);
    const bus = await Bus.connect(options.bus, options.log);
    try {
      const country = parseOrgId(options.identity.id).country;
      // The highest trust list versions held before, per country: older ones are refused.
      const versions = readTrustVersions(options.stateDir, country);
      const trustWatch = await watchTrust(
        bus,
        {
          country,
          anchors: options.anchors,
          minVersions: { ...versions },
          onVersion: (c, v) => {
            if (v > (versions[c] ?? 0)) {
              versions[c] = v;
              writeFileSync(join(options.stateDir, TRUST_VERSIONS), JSON.stringify(versions), {
                mode: 0o600,
              });
            }
          },
        },
        options.log,
      );
      party = new Party(options, bus, trustWatch, journal);
      // A keyring signs with its newest key that the trust list in force holds valid.
      const p = party;
      if (options.identity instanceof Keyring) options.identity.useTrust(() => p.trust);
      for (const { record, at, seq } of records) party.replay(record, at, seq);
      await party.startClock();
      party.resume();
      party.scheduleSweep();
      return party;
    } catch (err) {
      await bus.close();
      await journal.close();
      throw err;
    }
  }

  private replay(line: JournalLine<R>, at: JournalRef, seq: number | undefined): void {
    const l = readJournalLine(line, at);
    if (l.done !== undefined) {
      this.published(l.done);
      return;
    }
    if (l.tried !== undefined) {
      const key = `${l.tried.durable}:${l.tried.seq}`;
      this.tried.set(key, (this.tried.get(key) ?? 0) + 1);
      return;
    }
    if (l.erase !== undefined) {
      this.erasures.set(l.erase.referralId, l.erase);
      this.options.holdings?.erase(l.erase.referralId);
      return;
    }
    if (l.forget !== undefined) {
      this.erasures.delete(l.forget);
      this.options.holdings?.forget(l.forget);
      return;
    }
    if (l.seen !== undefined) {
      // The same message's line again (an old journal's repeated line): replayed once.
      if (this.seen.get(l.seen.id) === l.seen.seq) return;
      this.seen.set(l.seen.id, l.seen.seq);
      // Handled: whatever crashed while it was tried alone, it was not this message.
      this.tried.delete(`${l.seen.durable}:${l.seen.seq}`);
    }
    for (const r of l.records) this.options.apply(r.record, r.at);
    if (l.out !== undefined && seq !== undefined) this.planned(seq, at, l.seen?.id);
  }

  private planned(seq: number, at: JournalRef, seenId: string | undefined): void {
    this.undone.set(seq, { at, ...(seenId === undefined ? {} : { seenId }) });
    if (seenId !== undefined) this.undoneBySeen.set(seenId, seq);
  }

  private published(seq: number): void {
    const u = this.undone.get(seq);
    this.undone.delete(seq);
    if (u?.seenId !== undefined) this.undoneBySeen.delete(u.seenId);
  }

  /** Publishes, in journal order, the plans a previous run journaled and did not finish. */
  private resume(): void {
    if (this.undone.size === 0) return;
    this.log.info({ plans: this.undone.size }, "publishing again what was decided before a stop");
    void this.drainOutbox("resume");
  }

  get trust(): TrustStore {
    return this.trustWatch.holder.current;
  }

  /** Why the journal refuses appends now (readiness); undefined while it works. */
  get journalFailure(): StafettError | undefined {
    return this.journal.unavailable();
  }

  /** How the clock differs from the broker's beyond the tolerance (readiness), while it does. */
  get clockDifference(): Problem | undefined {
    return this.clockProblem;
  }

  /** Throws ERR_UNKNOWN_KEY, ERR_KEY_REVOKED or ERR_KEY_NOT_VALID when the trust list no longer lets this party sign. */
  checkOwnKey(at: Date): void {
    checkOwnKeyUsable(this.trust, this.identity.signing.kid, at);
  }

  /** The party's clock. */
  now(): Date {
    return this.options.now?.() ?? systemNow();
  }

  /** Whether the party can do its work now (journal writable, clock agreeing, bus connected). */
  readiness(): PartyReadiness {
    const problems: Problem[] = [];
    const h = this.journal.health;
    const refused = this.journal.unavailable();
    if (!h.ok && refused !== undefined)
      problems.push({
        code: "ERR_JOURNAL_WRITE",
        reason: refused.reason,
        message: refused.message,
        ...(h.since === undefined ? {} : { since: h.since }),
      });
    if (this.clockProblem !== undefined) problems.push(this.clockProblem);
    for (const p of this.bus.health.problems)
      problems.push({
        code: p.code,
        reason: p.reason,
        message: `missing on the bus: ${p.component}`,
        since: p.since,
      });
    return { ready: problems.length === 0, problems };
  }

  private journalHealth(h: JournalHealth, cause?: unknown): void {
    if (h.ok) {
      this.log.info(
        { code: "ERR_JOURNAL_WRITE", reason: "recovered", file: this.journal.path },
        "the journal can be written again; ready",
      );
      return;
    }
    const errno = (cause as { code?: unknown } | undefined)?.code;
    this.log.error(
      {
        code: "ERR_JOURNAL_WRITE",
        reason: h.reason,
        file: this.journal.path,
        ...(typeof errno === "string" ? { errno } : {}),
      },
      "the journal cannot be written: not ready; messages are redelivered until it can",
    );
  }

  issue(input: IssueInput): Promise<IssuedEvent> {
    // An event others would refuse for its time is not issued.
    if (this.clockProblem !== undefined)
      return Promise.reject(
        new StafettError("ERR_CLOCK_SKEW", this.clockProblem.message, {
          reason: this.clockProblem.reason,
        }),
      );
    return issue(
      { ...input, time: input.time ?? this.now() },
      { identity: this.identity, trust: this.trust },
    );
  }

  async publish(message: OutgoingMessage, options: { deadlineMs?: number } = {}): Promise<void> {
    await this.bus.publish(message, options);
  }

  /**
   * Issues and publishes; returns the issued event. Transient failures are retried with the same
   * message id until `deadlineMs` (default 10 s), then thrown.
   */
  async send(input: IssueInput, options: { deadlineMs?: number } = {}): Promise<IssuedEvent> {
    const issued = await this.issue(input);
    await this.publish(issued, options);
    return issued;
  }

  /**
   * Issues `inputs`, then publishes them together, in this order. They go out on one connection
   * in one batch, so the broker stores them in the order given, and their round trips overlap
   * instead of following each other. A publish that fails is retried with the same message id,
   * so after a fault a later event may precede it; receivers take events as they come.
   */
  async sendAll(
    inputs: readonly IssueInput[],
    options: { deadlineMs?: number } = {},
  ): Promise<IssuedEvent[]> {
    const issued: IssuedEvent[] = [];
    for (const input of inputs) issued.push(await this.issue(input));
    await Promise.all(issued.map((m) => this.publish(m, options)));
    return issued;
  }

  /** Durably records what the service did, then applies it to the service's state. */
  async record(records: readonly R[]): Promise<void> {
    if (records.length === 0) return;
    const at = await this.journal.append({ rs: [...records] });
    records.forEach((r, index) => this.options.apply(r, { ...refOf(at), index }));
    this.changed();
  }

  /**
   * Carries out a plan that no message led to (a deadline, an officer's command), write-ahead:
   * issues its events, journals them with its records, applies the records, then publishes.
   * Throws (nothing done) when the events cannot be issued or the journal cannot be written;
   * once journaled, a publish that fails is retried in the background until it succeeds.
   */
  async carryOut(plan: Plan<R>): Promise<IssuedEvent[]> {
    // In a shared turn, like a message's handling: a message suspected of crashing the process
    // is handled with nothing else under way, not even this.
    const prepared = await this.turns.run(false, async () => {
      const { issued, messages } = await this.prepare(plan.send);
      if (plan.records.length === 0 && messages.length === 0) return { issued, messages };
      crashPoint("carry:before-journal");
      const at = await this.journal.append({
        rs: [...plan.records],
        ...(messages.length === 0 ? {} : { out: messages.map(toJournaled) }),
      });
      plan.records.forEach((r, index) => this.options.apply(r, { ...refOf(at), index }));
      this.changed();
      crashPoint("carry:after-journal");
      return { issued, messages, at };
    });
    const { issued, messages, at } = prepared;
    if (at !== undefined && messages.length > 0) {
      this.planned(at.seq, refOf(at), undefined);
      try {
        await this.publishPlan(at.seq, messages, "carry");
      } catch (err) {
        this.log.warn(
          { err, code: "ERR_UNAVAILABLE", reason: "publish_pending" },
          "decided and journaled, not yet published: retried until it is",
        );
        this.scheduleOutbox();
      }
    }
    return issued;
  }

  /**
   * Issues (sealing personal parts as each `reseal` says) or countersigns each outgoing event;
   * returns them ready to publish, countersigned ones (for partners, waiting for the link)
   * first, then the own, in the plan's order.
   */
  private async prepare(
    send: readonly Outgoing[],
  ): Promise<{ issued: IssuedEvent[]; messages: Planned[] }> {
    const issued: IssuedEvent[] = [];
    const own: Planned[] = [];
    const countersigned: Planned[] = [];
    for (const o of send) {
      if ("countersign" in o) {
        const c = o.countersign;
        const bytes = await countersign(c.bytes, this.identity.signing);
        countersigned.push({ subject: c.subject, bytes, headers: c.headers ?? {}, patient: true });
        continue;
      }
      const input = o.reseal === undefined ? o.issue : await this.withPersonal(o.issue, o.reseal);
      const event = await this.issue(input);
      issued.push(event);
      own.push({ subject: event.subject, bytes: event.bytes, headers: event.headers });
    }
    return { issued, messages: [...countersigned, ...own] };
  }

  /**
   * Publishes a journaled plan's events (once at a time per plan), then marks it done. What
   * crosses to a partner goes first, and waits while the link is down: the events this party
   * issues about it (a notice to the sender) follow once the partner's stream has it. The own
   * events go out together in one batch (one at a time when a test injects crashes).
   */
  private publishPlan(seq: number, messages?: readonly Planned[], step = "handle"): Promise<void> {
    const running = this.publishing.get(seq);
    if (running !== undefined) return running;
    const entry = this.undone.get(seq);
    if (entry === undefined) return Promise.resolve();
    const p = (async () => {
      const list = messages ?? this.plannedAt(entry.at);
      let n = 0;
      for (const m of list.filter((x) => x.patient === true)) {
        await this.publishPatiently(m);
        crashPoint(`${step}:after-publish-${++n}`);
      }
      const rest = list.filter((x) => x.patient !== true);
      if (crashInjection) {
        for (const m of rest) {
          await this.publish(m);
          crashPoint(`${step}:after-publish-${++n}`);
        }
      } else await Promise.all(rest.map((m) => this.publish(m)));
      crashPoint(`${step}:after-publish`);
      this.published(seq);
      // Not waited for: a lost mark means only that the plan is published again (de-duplicated).
      this.journal.append({ done: seq }).catch(() => undefined);
    })().finally(() => this.publishing.delete(seq));
    this.publishing.set(seq, p);
    return p;
  }

  /** The events of the plan journaled at `at`, read back. */
  private plannedAt(at: JournalRef): Planned[] {
    const line = readJournalLine(this.journal.read(at), at);
    return (line.out ?? []).map(fromJournaled);
  }

  /** Publishes the undone plans, oldest first; on a failure, tries again later. */
  private async drainOutbox(step: string): Promise<void> {
    for (const seq of [...this.undone.keys()].sort((a, b) => a - b)) {
      if (this.stopping) return;
      try {
        await this.publishPlan(seq, undefined, step);
      } catch (err) {
        if (!this.stopping) {
          this.log.warn({ err, plans: this.undone.size }, "could not publish a decided plan yet");
          this.scheduleOutbox();
        }
        return;
      }
    }
  }

  private scheduleOutbox(): void {
    if (this.outboxTimer !== undefined || this.stopping) return;
    this.outboxTimer = setTimeout(() => {
      this.outboxTimer = undefined;
      void this.drainOutbox("outbox");
    }, this.options.outboxRetryMs ?? 2_000);
  }

  /** The input with its personal part (`body.personal`) worked out as `reseal` says. */
  private async withPersonal(input: IssueInput, reseal: Reseal): Promise<IssueInput> {
    const at = input.time ?? this.now();
    const keys = await this.trust.encryptionKeys(reseal.to, at);
    const current = reseal.current;
    let personal: string | undefined;
    if (
      reseal.fresh !== true &&
      current !== undefined &&
      keys.every((k) => recipientKids(current).includes(k.kid))
    ) {
      personal = reseal.carried;
    } else {
      const plaintext =
        reseal.plaintext ??
        (current === undefined ? undefined : await this.openWithOwnKey(current, input.referralId));
      if (plaintext === undefined) {
        throw new StafettError(
          "ERR_NOT_RECIPIENT",
          "cannot read the personal part to seal it again",
          { reason: "not_recipient", field: "personal" },
        );
      }
      personal = await seal(plaintext, keys, input.referralId);
    }
    return personal === undefined ? input : { ...input, body: { ...input.body, personal } };
  }

  /** Opens a part sealed to this party with whichever of its keys it names. */
  private async openWithOwnKey(sealed: string, referralId: string): Promise<unknown> {
    const key = decryptionKeyFor(this.identity, recipientKids(sealed));
    return key === undefined ? undefined : open(sealed, key, referralId);
  }

  /** Store and forward: publishes until the stream has it, waiting while the link is down. */
  private async publishPatiently(m: OutgoingMessage): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.bus.publish(m, { deadlineMs: 5_000 });
        if (attempt > 1) this.options.onLink?.(m.subject, true);
        return;
      } catch (err) {
        if (this.stopping) throw err;
        // Only a link that is down is waited for; anything the partner's stream itself refuses
        // would be refused for ever and hold up everything behind it: the sender is told.
        if (!isRetryablePublishError(err) && !LINK_DOWN.test(String((err as Error).message)))
          throw new StafettError("ERR_OUTBOUND_POLICY", "the partner's stream refused the event", {
            reason: "partner_refused",
          });
        if (attempt === 1) this.options.onLink?.(m.subject, false);
        if (attempt === 1 || attempt % 10 === 0)
          this.log.warn(
            { subject: m.subject, attempt },
            "partner link unavailable; the event waits",
          );
        await new Promise((r) => setTimeout(r, this.options.linkRetryMs ?? 1_000));
      }
    }
  }

  // --- The clock, compared with the broker's ---------------------------------------------

  private async startClock(): Promise<void> {
    if (this.options.clock === false) return;
    await this.checkClock();
    this.scheduleClock();
  }

  private scheduleClock(): void {
    if (this.options.clock === false || this.stopping) return;
    const every = this.options.clock?.checkMs ?? 30_000;
    this.clockTimer = setTimeout(
      () => void this.checkClock().finally(() => this.scheduleClock()),
      this.clockProblem === undefined ? every : Math.min(every, 2_000),
    );
  }

  /**
   * Compares the own clock with the broker's: the broker stamps a consumer it creates (an
   * ephemeral one on the trust bucket, which every party may read, deleted at once) with its own
   * time, which lies between the own clock's readings before the request and after the answer.
   * A difference beyond the tolerance either way makes the party not ready: ahead, others would
   * refuse what it issues; behind, it would refuse what others issue.
   */
  private async checkClock(): Promise<void> {
    const toleranceMs =
      (this.options.clock === false ? undefined : this.options.clock)?.toleranceMs ?? 60_000;
    let ahead: number;
    let behind: number;
    try {
      // The own account's JetStream (one small memory stream of its own, never the streams'
      // account): the time the broker stores a message with lies between the own clock's
      // readings before the publish and after its acknowledgement.
      const jsm = await jetstreamManager(this.bus.nc, { checkAPI: false });
      if (!this.clockStream) {
        await jsm.streams.add({
          name: CLOCK_STREAM,
          subjects: [CLOCK_SUBJECT],
          storage: StorageType.Memory,
          max_msgs: 1,
          max_bytes: 1_024,
          num_replicas: 1,
          discard: DiscardPolicy.Old,
        });
        this.clockStream = true;
      }
      const before = this.now().getTime();
      const ack = await jetstream(this.bus.nc, { checkAPI: false }).publish(
        CLOCK_SUBJECT,
        new Uint8Array([1]),
      );
      const after = this.now().getTime();
      const stored = await jsm.streams.getMessage(CLOCK_STREAM, { seq: ack.seq });
      const broker = stored?.time.getTime() ?? Number.NaN;
      if (Number.isNaN(broker)) throw new Error("no stored time");
      ahead = before - broker;
      behind = broker - after;
      this.clockWarned = false;
    } catch (err) {
      // The clock stream is in memory: a broker restart loses it. Create it again next time,
      // or the clock is never compared again.
      this.clockStream = false;
      if (!this.clockWarned && !this.stopping)
        this.log.warn({ err }, "could not compare the clock with the broker's; will try again");
      this.clockWarned = true;
      return;
    }
    const reason = ahead > toleranceMs ? "ahead" : behind > toleranceMs ? "behind" : undefined;
    if (reason === undefined) {
      if (this.clockProblem !== undefined) {
        this.log.info(
          { code: "ERR_CLOCK_SKEW", reason: "resolved" },
          "the clock agrees with the broker's again; ready",
        );
        this.clockProblem = undefined;
        for (const w of this.clockWaiters.splice(0)) w.go();
      }
      return;
    }
    const skewMs = reason === "ahead" ? ahead : -behind;
    const message = `the clock is ${Math.round(Math.abs(skewMs) / 1_000)} s ${reason} of the broker's (tolerance ${toleranceMs / 1_000} s)`;
    if (this.clockProblem?.reason !== reason)
      this.log.error(
        { code: "ERR_CLOCK_SKEW", reason, skew_ms: skewMs, tolerance_ms: toleranceMs },
        "the clock differs from the broker's: not ready; nothing is handled or issued until it agrees",
      );
    this.clockProblem = {
      code: "ERR_CLOCK_SKEW",
      reason,
      message,
      since: this.clockProblem?.since ?? new Date().toISOString(),
    };
  }

  /** Resolves once the clock agrees with the broker's (at once when it does). */
  private clockAgrees(): Promise<void> {
    if (this.clockProblem === undefined) return Promise.resolve();
    if (this.stopping) return Promise.reject(new Error("stopping"));
    return new Promise((go, stop) => this.clockWaiters.push({ go, stop }));
  }

  /**
   * A record this party journaled, read back from disk by the place `apply` was given: services
   * keep large parts (signed bytes) there instead of in memory.
   */
  stored(at: JournalRef): R {
    const found = readJournalLine(this.journal.read(at), at).records[at.index ?? 0];
    if (found === undefined) throw new Error(`journal line at ${at.offset} holds no such record`);
    return found.record;
  }

  /**
   * Consumes this organisation's consumers (a liaison has two). Every message is verified;
   * a refused one is quarantined and, when its sender is known, answered with a signed
   * `rejected`; a verified one goes to `decide`, whose plan is journaled before anything in it
   * is published, and the message acked after.
   */
  async consume(decide: Decide<R>, consumers?: readonly ConsumerOptions[]): Promise<void> {
    const list: readonly ConsumerOptions[] =
      consumers ?? consumersOf(this.identity.id).map((c) => ({ durable: c.durable }));
    for (const c of list) {
      const durable = c.durable;
      const consumption = await this.bus.consume(
        {
          stream: this.stream,
          durable,
          concurrency: c.concurrency ?? this.options.concurrency ?? DEFAULT_CONCURRENCY,
        },
        async (delivery) => {
          const key = `${durable}:${delivery.seq}`;
          try {
            await this.handle(durable, delivery, decide, c.mode ?? "addressee");
            this.failedHere.delete(key);
            return { ack: true };
          } catch (err) {
            this.failedHere.add(key);
            if (!isRetryLater(err)) throw err;
            if (delivery.lastAttempt) {
              const verified = await this.verify(delivery, c.mode ?? "addressee");
              const about = verified.ok ? aboutOf(verified) : { digest: digestOf(delivery.data) };
              await this.refuse(durable, delivery, err, about);
              this.failedHere.delete(key);
              return { ack: true };
            }
            this.log.warn(
              {
                code: err.code,
                reason: err.reason,
                seq: delivery.seq,
                attempts: delivery.deliveryCount,
              },
              "cannot handle the message now; it comes again after the consumer's back-off",
            );
            return { ack: false, retryInMs: delivery.backoffMs };
          }
        },
      );
      this.consumptions.push(consumption);
    }
  }

  /**
   * Takes one delivery. A redelivery that this process did not see fail (the process that had
   * it died, or its ack was lost) may be what crashed it: it is handled alone (no other message
   * in hand), and that attempt is journaled first; a delivery that crashed the process alone
   * `poisonAfter` times (or once, on its last delivery) is quarantined without being handled.
   */
  private async handle(
    durable: string,
    delivery: Delivery,
    decide: Decide<R>,
    mode: "addressee" | "relay",
  ): Promise<void> {
    await this.clockAgrees();
    const unavailable = this.journal.unavailable();
    if (unavailable !== undefined) throw unavailable;
    const key = `${durable}:${delivery.seq}`;
    const suspect = delivery.deliveryCount > 1 && !this.failedHere.has(key);
    const crashes = this.tried.get(key) ?? 0;
    const limit = this.options.poisonAfter ?? 2;
    if (suspect && (crashes >= limit || (crashes > 0 && delivery.lastAttempt)))
      return this.poisoned(durable, delivery, mode, crashes, crashes === limit);
    // Events about one referral are handled in the order they were delivered: the lock is taken
    // before verification (whose duration varies), keyed by the referral id read from the bytes.
    // That read is unverified and used for ordering only; receive() checks everything.
    await this.locks.run(peekReferralId(delivery.data) ?? `seq:${delivery.seq}`, async () => {
      // Deciding and journaling take a turn (alone, for a suspect). Publishing what was
      // journaled does not: a crash then replays the journaled plan, not the handler, and a
      // publish may wait long (a partner's link) without holding everything else up.
      const publish = await this.turns.run(suspect, async () => {
        if (suspect) {
          await this.journal.append({ tried: { durable, seq: delivery.seq } });
          this.tried.set(key, crashes + 1);
        }
        const next = await this.handleInOrder(durable, delivery, decide, mode);
        this.tried.delete(key);
        return next;
      });
      await publish?.();
    });
  }

  /** Quarantines a message that crashed the process; the first time, tells its sender. */
  private async poisoned(
    durable: string,
    delivery: Delivery,
    mode: "addressee" | "relay",
    crashes: number,
    tellSender: boolean,
  ): Promise<void> {
    // Counted first: should telling the sender crash too, the next delivery only quarantines.
    await this.journal.append({ tried: { durable, seq: delivery.seq } });
    const key = `${durable}:${delivery.seq}`;
    this.tried.set(key, crashes + 1);
    const error = new StafettError(
      "ERR_HANDLER_FAILED",
      `handling this message crashed the service ${crashes} time(s)`,
      { reason: "crash_loop" },
    );
    this.log.error(
      {
        code: error.code,
        reason: error.reason,
        subject: delivery.subject,
        seq: delivery.seq,
        consumer: durable,
        attempts: delivery.deliveryCount,
      },
      "a message crashed the service on every attempt: quarantined, not handled",
    );
    const digest = digestOf(delivery.data);
    let about: About = { digest };
    if (tellSender) {
      const result = await this.verify(delivery, mode);
      if (result.ok) {
        // Handled after all (its ack was lost, twice): finished, not quarantined.
        if (this.seen.get(result.event.id) === delivery.seq) {
          await this.finish(this.undoneBySeen.get(result.event.id), delivery);
          return;
        }
        about = aboutOf(result);
      }
    }
    await this.refuse(durable, delivery, error, about);
  }

  private verify(delivery: Delivery, mode: "addressee" | "relay"): Promise<ReceiveResult> {
    return receive(delivery.data, {
      identity: this.identity,
      trust: this.trust,
      subject: delivery.subject,
      mode,
      now: this.now(),
      ...this.options.receive,
    });
  }

  /**
   * Verifies, decides, prepares and journals one delivery; returns what is left to do, the
   * publishing of its plan, if any.
   */
  private async handleInOrder(
    durable: string,
    delivery: Delivery,
    decide: Decide<R>,
    mode: "addressee" | "relay",
  ): Promise<(() => Promise<void>) | undefined> {
    const log = this.log;
    const result = await this.verify(delivery, mode);
    if (!result.ok) {
      await this.refuse(durable, delivery, result.error, result);
      return undefined;
    }
    poisonPoint(result.event.referralId);
    const id = result.event.id;
    const about = aboutOf(result);
    const firstSeq = this.seen.get(id);
    if (firstSeq === delivery.seq) {
      // A redelivery of what was already decided: what it sends may not all be out yet.
      const seq = this.undoneBySeen.get(id);
      return () => this.finish(seq, delivery);
    }
    if (firstSeq !== undefined) {
      await this.refuse(
        durable,
        delivery,
        new StafettError("ERR_REPLAY", "this event was already received", {
          reason: "replay",
          field: "/id",
        }),
        about,
      );
      return undefined;
    }
    let records: R[];
    let messages: Planned[];
    try {
      const verdict = decide(result, delivery);
      if (isRefusal(verdict)) {
        await this.refuse(durable, delivery, verdict.refuse, about);
        return undefined;
      }
      messages = (await this.prepare(verdict.send)).messages;
      records = verdict.records;
    } catch (err) {
      if (isRetryLater(err)) throw err;
      // A coded failure while preparing the plan (e.g. no valid key to seal to) is answered
      // like a refusal; anything else is retried, and after the consumer's last attempt the
      // message is quarantined with that reason rather than left.
      if (!(err instanceof StafettError)) {
        if (!delivery.lastAttempt) throw err;
        this.log.error(
          {
            event_id: id,
            subject: delivery.subject,
            seq: delivery.seq,
            attempts: delivery.deliveryCount,
            err,
          },
          "handler failed on the last attempt; quarantined",
        );
        await this.refuse(
          durable,
          delivery,
          new StafettError(
            "ERR_HANDLER_FAILED",
            `handling failed ${delivery.deliveryCount} times`,
            { reason: "max_deliveries" },
          ),
          { digest: result.digest },
        );
        return undefined;
      }
      await this.refuse(durable, delivery, err, about);
      return undefined;
    }
    crashPoint("handle:before-journal");
    let at: Appended;
    try {
      at = await this.journal.append({
        // A line without records names its referral, so that a compaction can drop it with the
        // referral (one with records names it in them).
        seen: {
          id,
          seq: delivery.seq,
          durable,
          ...(records.length === 0 ? { referralId: result.event.referralId } : {}),
        },
        rs: [...records],
        ...(messages.length === 0 ? {} : { out: messages.map(toJournaled) }),
      });
    } catch (err) {
      // Not handled, nothing sent: redelivered later, or on the last attempt quarantined (and
      // its sender told) with the journal's reason.
      if (!delivery.lastAttempt || !isRetryLater(err)) throw err;
      await this.refuse(durable, delivery, err, about);
      return undefined;
    }
    this.seen.set(id, delivery.seq);
    records.forEach((r, index) => this.options.apply(r, { ...refOf(at), index }));
    this.changed();
    crashPoint("handle:after-journal");
    log.debug({ event_id: id, subject: delivery.subject, seq: delivery.seq }, "event decided");
    if (messages.length === 0) return undefined;
    this.planned(at.seq, refOf(at), id);
    return () => this.finish(at.seq, delivery, messages);
  }

  /**
   * Publishes a handled message's plan. If that fails the plan is retried in the background;
   * the message is redelivered too, except after its last attempt (the plan is journaled: the
   * background retries carry it out).
   */
  private async finish(
    seq: number | undefined,
    delivery: Delivery,
    messages?: readonly Planned[],
  ): Promise<void> {
    if (seq === undefined) return;
    try {
      await this.publishPlan(seq, messages, "handle");
    } catch (err) {
      this.scheduleOutbox();
      if (!delivery.lastAttempt) throw err;
      this.log.warn(
        { err, seq: delivery.seq },
        "could not publish what was decided on the last attempt; retried in the background",
      );
    }
  }

  /** Quarantines the bytes with the reason, and answers the sender when it is known. */
  private async refuse(
    durable: string,
    delivery: Delivery,
    error: StafettError,
    about: About,
  ): Promise<void> {
    this.options.observer?.refused?.(error.code);
    this.log.warn(
      {
        subject: delivery.subject,
        seq: delivery.seq,
        code: error.code,
        reason: error.reason,
        field: error.field,
      },
      "message refused",
    );
    await this.bus.publish(
      {
        subject: quarantineSubject(this.country, durable, error.code),
        bytes: delivery.data,
        headers: {
          "Nats-Msg-Id": `${durable}:${delivery.seq}`,
          "Stafett-Reject-Code": error.code,
          "Stafett-Reject-Reason": error.reason,
          ...(error.field === undefined ? {} : { "Stafett-Reject-Field": error.field }),
          "Stafett-Subject": delivery.subject,
          "Stafett-Seq": String(delivery.seq),
          "Stafett-Consumer": durable,
          "Stafett-Digest": about.digest,
          ...(about.eventId === undefined ? {} : { "Stafett-Event-Id": about.eventId }),
        },
      },
      { expectStream: quarantineStreamName(this.country) },
    );
    this.options.observer?.quarantined?.(error.code);
    // Never answer a rejection with a rejection: two parties must not ping-pong.
    if (
      about.sender === undefined ||
      about.sender === this.identity.id ||
      about.eventType === "rejected"
    )
      return;
    try {
      await this.send({
        type: "rejected",
        addressee: about.sender,
        referralId: about.referralId ?? this.derive("no-referral", about.digest),
        id: this.derive("rejected", about.digest),
        body: {
          ...(about.eventId === undefined ? {} : { ofEventId: about.eventId }),
          code: error.code,
          reason: error.reason,
          ...(error.field === undefined ? {} : { field: error.field }),
          digest: about.digest,
        },
      });
    } catch (err) {
      this.log.warn({ code: error.code, err }, "could not answer the sender of a refused message");
    }
  }

  /** Whether (and why, and when) a referral's personal part was erased here. */
  erasure(referralId: string): Erasure | undefined {
    return this.erasures.get(referralId);
  }

  /**
   * Erases a referral's personal part from this party's store: an erase line in the journal
   * (the state drops what leads to the bytes at once), then a compaction, which rewrites the
   * journal without them. `ERR_NOT_FOUND` (`unknown_referral`) when the party does not hold it.
   * Erasing twice is erasing once.
   */
  async erase(referralId: string, cause: ErasureCause): Promise<Erasure> {
    const holdings = this.requireHoldings();
    const erasure = await this.locks.run(referralId, async () => {
      const before = this.erasures.get(referralId);
      if (before !== undefined) return before;
      if (!holdings.holds(referralId))
        throw new StafettError("ERR_NOT_FOUND", "no such referral here", {
          reason: "unknown_referral",
        });
      return this.journalErase({ referralId, cause, at: this.now().toISOString() });
    });
    await this.compact();
    return erasure;
  }

  private async journalErase(erasure: Erasure): Promise<Erasure> {
    await this.journal.append({ erase: erasure });
    this.erasures.set(erasure.referralId, erasure);
    this.options.holdings?.erase(erasure.referralId);
    this.changed();
    this.log.info(
      { code: "ERASED", reason: erasure.cause, referral_id: erasure.referralId },
      "a referral's personal part was erased",
    );
    return erasure;
  }

  private requireHoldings(): Holdings<R> {
    const h = this.options.holdings;
    if (h === undefined) throw new Error("this service keeps no holdings: nothing to erase");
    return h;
  }

  /**
   * Applies the retention periods at `now`: erases the personal part of each referral whose
   * handling ended `personalMs` ago, forgets each one that ended `metadataMs` ago, then compacts
   * the journal if anything changed. One sweep at a time.
   */
  sweep(): Promise<CompactReport<JournalLine<R>> | undefined> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<CompactReport<JournalLine<R>> | undefined> {
    const holdings = this.options.holdings;
    if (holdings === undefined) return undefined;
    const retention = this.options.retention ?? DEFAULT_RETENTION;
    const now = this.now().getTime();
    let changed = 0;
    for (const { referralId, at } of [...holdings.ended()]) {
      const ended = Date.parse(at);
      if (!Number.isFinite(ended)) continue;
      await this.locks.run(referralId, async () => {
        if (!holdings.holds(referralId)) return;
        if (ended + retention.metadataMs <= now) {
          await this.journal.append({ forget: { referralId, at: new Date(now).toISOString() } });
          this.erasures.delete(referralId);
          holdings.forget(referralId);
          this.changed();
          changed += 1;
        } else if (ended + retention.personalMs <= now && !this.erasures.has(referralId)) {
          await this.journalErase({
            referralId,
            cause: "retention",
            at: new Date(now).toISOString(),
          });
          changed += 1;
        }
      });
    }
    return changed > 0 ? this.compact() : undefined;
  }

  private scheduleSweep(): void {
    const every = this.options.sweepMs ?? 3_600_000;
    if (every <= 0 || this.options.holdings === undefined || this.stopping) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined;
      this.sweep()
        .catch((err: unknown) =>
          this.log.error(
            { err, code: isStafettError(err) ? err.code : undefined },
            "retention could not be applied; tried again at the next sweep",
          ),
        )
        .finally(() => this.scheduleSweep());
    }, every);
    this.sweepTimer.unref();
  }

  /**
   * Rewrites the journal with only what is still needed (retention.ts `compactLines`), then
   * rebuilds the state from it: a compaction changes no state, it only lets go of the bytes and
   * memory that erased and forgotten referrals, published plans and handled crash suspects held.
   * Nothing is handled meanwhile (an exclusive turn: no handling holds a journal place across it).
   */
  async compact(): Promise<CompactReport<JournalLine<R>> | undefined> {
    const holdings = this.options.holdings;
    if (holdings === undefined) return undefined;
    return this.turns.run(true, async () => {
      const report = await this.journal.compact(
        (lines) =>
          compactLines<R>(
            lines as unknown as () => Iterable<KeptLine<Record<string, unknown>>>,
            holdings,
          ) as unknown as KeptLine<JournalLine<R>>[],
      );
      // Nothing yielded since the rewrite: the state is rebuilt before anything reads it.
      holdings.reset();
      this.seen.clear();
      this.tried.clear();
      this.erasures.clear();
      const undone = new Set(this.undone.keys());
      this.undone.clear();
      this.undoneBySeen.clear();
      for (const { record, at, seq } of report.records) this.replay(record, at, seq);
      for (const seq of undone)
        if (!this.undone.has(seq))
          throw new Error(`a compaction lost the plan of journal line ${seq}`);
      this.log.info(
        {
          code: "COMPACTED",
          bytes_before: report.bytesBefore,
          bytes_after: report.bytesAfter,
          lines_before: report.linesBefore,
          lines_after: report.linesAfter,
        },
        "the journal was compacted",
      );
      return report;
    });
  }

  /**
   * Calls `listener` soon after the party's state changed (a record applied, a personal part
   * erased, a referral forgotten), at most once per CHANGE_COALESCE_MS however many changes
   * came: the Desk's live pages refresh on it. It says only that something changed.
   */
  onChange(listener: () => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  private changed(): void {
    if (this.changeTimer !== undefined || this.changeListeners.size === 0) return;
    this.changeTimer = setTimeout(() => {
      this.changeTimer = undefined;
      for (const l of this.changeListeners) l();
    }, CHANGE_COALESCE_MS);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer);
    if (this.changeTimer !== undefined) clearTimeout(this.changeTimer);
    await this.sweeping?.catch(() => undefined);
    if (this.clockTimer !== undefined) clearTimeout(this.clockTimer);
    if (this.outboxTimer !== undefined) clearTimeout(this.outboxTimer);
    for (const w of this.clockWaiters.splice(0)) w.stop(new Error("stopping"));
    await Promise.all(this.consumptions.map((c) => c.stop()));
    await Promise.allSettled([...this.publishing.values()]);
    await this.trustWatch.stop();
    await this.bus.close();
    await this.journal.close();
  }
}
