/**
 * The runtime every Stafett service shares: one organisation's identity on the bus, the trust
 * lists in force (watched), its own journal, and the receive loop that verifies every message,
 * quarantines and answers what fails, refuses replays, and hands the rest to the service.
 *
 * A service decides (publishing with derived ids, so a repeat is de-duplicated) and returns the
 * records that describe what it did; the party writes them, with the fact that the message was
 * handled, to the journal in one durable append, applies them to the service's state, and only
 * then acks the message. A crash anywhere in between means redelivery and the same decisions
 * again: nothing lost, nothing doubled.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nkeyAuthenticator, type ConnectionOptions } from "@nats-io/transport-node";
import {
  Bus,
  type BusConfig,
  type Consumption,
  type Delivery,
  type OutgoingMessage,
} from "./bus.js";
import { StafettError } from "./errors.js";
import { peekReferralId } from "./codec.js";
import { isRefusal, type Outgoing, type Plan, type Reseal, type Verdict } from "./decision.js";
import { open, recipientKids, seal } from "./jwe.js";
import { derivedId } from "./ids.js";
import { Journal, type JournalRef } from "./journal.js";
import type { KeyHandle } from "./keys.js";
import type { Logger } from "./logger.js";
import { KeyedMutex } from "./mutex.js";
import {
  countersign,
  issue,
  receive,
  type Identity,
  type IssueInput,
  type IssuedEvent,
  type ReceiveContext,
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
import { checkKeyUsable, type TrustStore } from "./trust.js";
import type { ServiceRuntime } from "./service-config.js";
import { inboxPrefixOf } from "./permissions.js";

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
  /** The clock: for the keys a personal part is sealed to. */
  now?: () => Date;
  /** How long a countersigned event waits between attempts while a partner's link is down. */
  linkRetryMs?: number;
  /**
   * Told when a publish to a partner (store and forward) first fails, and when one succeeds
   * after failures: the liaison's signal of a partner link's state.
   */
  onLink?: (subject: string, up: boolean) => void;
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

/** A journal line: either a service record or the fact that a message was handled. */
export type Seen = { id: string; seq: number; durable: string };
/**
 * A journal line. Everything one step did is one line, the handled message's id with the
 * records it led to: a line is on disk whole or not at all (a torn last line is dropped), so a
 * crash can never keep "handled" and lose part of what the handling did. Journals written
 * before held one line per record (`{ r }`) and one for the id (`{ seen }`); they still replay.
 */
export type JournalLine<R> = { seen?: Seen; rs: R[] } | { seen: Seen } | { r: R };

/** What a journal line holds: the message it handled, if any, and its records with their places. */
export function readJournalLine<R>(
  line: JournalLine<R>,
  at: JournalRef,
): { seen?: Seen; records: { record: R; at: JournalRef }[] } {
  const seen = "seen" in line && line.seen !== undefined ? { seen: line.seen } : {};
  if ("rs" in line)
    return { ...seen, records: line.rs.map((record, index) => ({ record, at: { ...at, index } })) };
  if ("r" in line) return { ...seen, records: [{ record: line.r, at }] };
  return { ...seen, records: [] };
}

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
  private stopping = false;

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
  }

  /** Starts the party of a service from its runtime configuration. */
  static forService<R>(
    runtime: ServiceRuntime,
    log: Logger,
    apply: (record: R, at: JournalRef) => void,
    extra: Pick<PartyOptions<R>, "concurrency" | "receive" | "now" | "linkRetryMs" | "onLink"> = {},
  ): Promise<Party<R>> {
    return Party.start<R>({
      identity: runtime.identity,
      anchors: runtime.anchors,
      bus: {
        servers: runtime.nats.servers,
        name: `stafett-${runtime.identity.id}`,
        connection: { ...natsAuth(runtime.nats), inboxPrefix: inboxPrefixOf(runtime.identity.id) },
      },
      log,
      stateDir: runtime.stateDir,
      apply,
      ...extra,
    });
  }

  static async start<R>(options: PartyOptions<R>): Promise<Party<R>> {
    const { journal, records } = Journal.open<JournalLine<R>>(
      join(options.stateDir, "journal.jsonl"),
    );
    const bus = await Bus.connect(options.bus, options.log);
    try {
      const country = parseOrgId(options.identity.id).country;
      // The highest trust list versions held before, per country: older ones are refused.
      const versions = readTrustVersions(options.stateDir, country);
      const trustWatch = await watchTrust(
        bus.nc,
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
      const party = new Party(options, bus, trustWatch, journal);
      for (const { record, at } of records) party.replay(record, at);
      return party;
    } catch (err) {
      await bus.close();
      await journal.close();
      throw err;
    }
  }

  private replay(line: JournalLine<R>, at: JournalRef): void {
    const { seen, records } = readJournalLine(line, at);
    if (seen !== undefined) this.seen.set(seen.id, seen.seq);
    for (const r of records) this.options.apply(r.record, r.at);
  }

  get trust(): TrustStore {
    return this.trustWatch.holder.current;
  }

  /** Throws ERR_KEY_REVOKED or ERR_KEY_NOT_VALID when the trust list no longer lets this party sign. */
  checkOwnKey(at: Date): void {
    const own = this.trust.key(this.identity.signing.kid);
    if (own !== undefined) checkKeyUsable(own, at);
  }

  issue(input: IssueInput): Promise<IssuedEvent> {
    return issue(input, { identity: this.identity, trust: this.trust });
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
    records.forEach((r, index) => this.options.apply(r, { ...at, index }));
  }

  /**
   * Carries out a plan that no message led to (a deadline, an officer's command): sends its
   * events, then journals and applies its records.
   */
  async carryOut(plan: Plan<R>): Promise<IssuedEvent[]> {
    const issued = await this.dispatch(plan.send);
    await this.record(plan.records);
    return issued;
  }

  /**
   * Issues (sealing personal parts as each `reseal` says) or countersigns each outgoing event,
   * then publishes them together, in order (see `sendAll`). Returns the events it issued.
   */
  private async dispatch(send: readonly Outgoing[]): Promise<IssuedEvent[]> {
    if (send.length === 0) return [];
    const issued: IssuedEvent[] = [];
    const messages: OutgoingMessage[] = [];
    const countersigned: OutgoingMessage[] = [];
    for (const o of send) {
      if ("countersign" in o) {
        const c = o.countersign;
        const bytes = await countersign(c.bytes, this.identity.signing);
        countersigned.push({ subject: c.subject, bytes, headers: c.headers ?? {} });
        continue;
      }
      const input = o.reseal === undefined ? o.issue : await this.withPersonal(o.issue, o.reseal);
      const event = await this.issue(input);
      issued.push(event);
      messages.push(event);
    }
    // What crosses to a partner goes first, and waits while the link is down: the events this
    // party issues about it (a notice to the sender) follow once the partner's stream has it.
    for (const m of countersigned) await this.publishPatiently(m);
    await Promise.all(messages.map((m) => this.publish(m)));
    return issued;
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
        (current === undefined
          ? undefined
          : await open(current, this.identity.encryption, input.referralId));
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

  /** Store and forward: publishes until the stream has it, waiting while the link is down. */
  private async publishPatiently(m: OutgoingMessage): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.bus.publish(m, { deadlineMs: 5_000 });
        if (attempt > 1) this.options.onLink?.(m.subject, true);
        return;
      } catch (err) {
        if (this.stopping) throw err;
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

  private now(): Date {
    return this.options.now?.() ?? new Date();
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
   * `rejected`; a verified one goes to `handler`, whose records are journaled before the ack.
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
          await this.handle(durable, delivery, decide, c.mode ?? "addressee");
          return { ack: true };
        },
      );
      this.consumptions.push(consumption);
    }
  }

  private async handle(
    durable: string,
    delivery: Delivery,
    decide: Decide<R>,
    mode: "addressee" | "relay",
  ): Promise<void> {
    // Events about one referral are handled in the order they were delivered: the lock is taken
    // before verification (whose duration varies), keyed by the referral id read from the bytes.
    // That read is unverified and used for ordering only; receive() checks everything.
    await this.locks.run(peekReferralId(delivery.data) ?? `seq:${delivery.seq}`, () =>
      this.handleInOrder(durable, delivery, decide, mode),
    );
  }

  private async handleInOrder(
    durable: string,
    delivery: Delivery,
    decide: Decide<R>,
    mode: "addressee" | "relay",
  ): Promise<void> {
    const log = this.log;
    const result = await receive(delivery.data, {
      identity: this.identity,
      trust: this.trust,
      subject: delivery.subject,
      mode,
      ...this.options.receive,
    });
    if (!result.ok) {
      await this.refuse(durable, delivery, result.error, result);
      return;
    }
    const id = result.event.id;
    {
      const firstSeq = this.seen.get(id);
      if (firstSeq === delivery.seq) return; // a redelivery of what was already handled
      if (firstSeq !== undefined) {
        await this.refuse(
          durable,
          delivery,
          new StafettError("ERR_REPLAY", "this event was already received", {
            reason: "replay",
            field: "/id",
          }),
          {
            digest: result.digest,
            eventId: id,
            referralId: result.event.referralId,
            eventType: result.event.type,
            sender: result.issuer.id,
          },
        );
        return;
      }
      const about = {
        digest: result.digest,
        eventId: id,
        referralId: result.event.referralId,
        eventType: result.event.type,
        sender: result.issuer.id,
      };
      let records: R[];
      try {
        const verdict = decide(result, delivery);
        if (isRefusal(verdict)) {
          await this.refuse(durable, delivery, verdict.refuse, about);
          return;
        }
        await this.dispatch(verdict.send);
        records = verdict.records;
      } catch (err) {
        // A coded failure while carrying the plan out (e.g. no valid key to seal to) is answered
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
          return;
        }
        await this.refuse(durable, delivery, err, about);
        return;
      }
      const at = await this.journal.append({
        seen: { id, seq: delivery.seq, durable },
        rs: [...records],
      });
      this.seen.set(id, delivery.seq);
      records.forEach((r, index) => this.options.apply(r, { ...at, index }));
      log.debug({ event_id: id, subject: delivery.subject, seq: delivery.seq }, "event handled");
    }
  }

  /** Quarantines the bytes with the reason, and answers the sender when it is known. */
  private async refuse(
    durable: string,
    delivery: Delivery,
    error: StafettError,
    about: {
      digest: string;
      eventId?: string;
      referralId?: string;
      eventType?: string;
      sender?: string;
    },
  ): Promise<void> {
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
        subject: quarantineSubject(this.country, error.code),
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
        referralId: about.referralId ?? derivedId("no-referral", about.digest),
        id: derivedId(this.identity.id, "rejected", about.digest),
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

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.consumptions.map((c) => c.stop()));
    await this.trustWatch.stop();
    await this.bus.close();
    await this.journal.close();
  }
}
