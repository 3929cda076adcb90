/**
 * The municipality gateway: the municipal case system's way onto Stafett. It opens referrals
 * (validated, sealed to their recipients, signed with the municipality's key), keeps their
 * timelines from the receipts and answers that come back, and holds the referrals handed to
 * this municipality until an officer accepts or declines them.
 */
import { randomUUID } from "node:crypto";
import {
  decodeEvent,
  decodeSignedEvent,
  fromBase64,
  isRefusal,
  jsonDigest,
  Notifier,
  Party,
  parseOrgId,
  SCHEMA_IDS,
  StafettError,
  systemNow,
  validate,
  type DestinationJson,
  type JournalRef,
  type Logger,
  type PersonalJson,
  type ReasonCategory,
  type ServiceRuntime,
  type TrustStore,
  type Urgency,
  type Verdict,
  type ClockCheckOptions,
  type PartyReadiness,
  type Erasure,
  openPersonal,
} from "@stafett/shared";
import {
  deadlineOf,
  decide,
  decideAnswer,
  decideFollow,
  routeOpened,
  type GatewayContext,
  type GatewayView,
} from "./decide.js";
import { notificationsOf } from "./notifications.js";
import {
  GatewayState,
  type GatewayRecord,
  type InboxItem,
  type SentReferral,
  type TimelineEntry,
} from "./state.js";

/** Default deadlines: immediate 1 h; high 12 h, the SIRENE answer time of Regulation (EU) 2018/1862 art. 8(3); normal 72 h. */
export const DEFAULT_DEADLINES: Readonly<Record<Urgency, number>> = {
  URGENCY_IMMEDIATE: 3_600_000,
  URGENCY_HIGH: 12 * 3_600_000,
  URGENCY_NORMAL: 72 * 3_600_000,
};

export interface GatewayOptions extends ServiceRuntime {
  deadlines?: Partial<Record<Urgency, number>>;
  /** How long a request waits for the bus before it answers 503 (nothing accepted). */
  publishDeadlineMs?: number;
  /**
   * New referrals are refused (503) once the stream is this full (fraction of its max_msgs or
   * max_bytes): the rest is kept for the receipts, forwards and answers that drain it.
   */
  intakeHighWater?: number;
  concurrency?: number;
  now?: () => Date;
  /** The comparison of the clock with the broker's (see Party); for tests. */
  clock?: ClockCheckOptions | false;
}

export interface ReferralRequest {
  urgency: Urgency;
  reason: ReasonCategory;
  destination: DestinationJson;
  deadline?: string;
  personal: PersonalJson;
}

export interface OpenedReferral {
  referralId: string;
  eventId: string;
  deadline: string;
  addressee: string;
  /** True when an Idempotency-Key was seen before: nothing new was sent. */
  replayed: boolean;
}

export class Gateway {
  readonly state = new GatewayState();
  /** What its people and case system are told (webhooks, GET /v1/events, e-mail alerts). */
  notifier!: Notifier;
  /** The party runtime it runs on (its operations watch it; nothing else uses it from outside). */
  party!: Party<GatewayRecord>;
  private readonly deadlines: Record<Urgency, number>;
  private readonly now: () => Date;

  private constructor(private readonly options: GatewayOptions) {
    if (parseOrgId(options.identity.id).role !== "municipality") {
      throw new StafettError(
        "ERR_CONFIG_INVALID",
        "a gateway's STAFETT_ORG must be a municipality id",
        { reason: "role" },
      );
    }
    this.deadlines = { ...DEFAULT_DEADLINES, ...options.deadlines };
    this.now = options.now ?? systemNow;
  }

  static async start(options: GatewayOptions, log: Logger): Promise<Gateway> {
    const gw = new Gateway(options);
    gw.notifier = Notifier.open(options.stateDir, options.identity.id, options.notify, log, {
      now: gw.now,
    });
    try {
      gw.party = await Party.forService<GatewayRecord>(
        options,
        log,
        (r, at) => {
          gw.state.apply(r, at);
          gw.notifier.observe(notificationsOf(gw.id, r, gw.state));
        },
        {
          now: gw.now,
          ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
          ...(options.clock === undefined ? {} : { clock: options.clock }),
          holdings: gw.state,
          ...(options.sweepMs === undefined ? {} : { sweepMs: options.sweepMs }),
        },
      );
    } catch (err) {
      await gw.notifier.stop();
      throw err;
    }
    gw.notifier.replayed();
    await gw.party.consume((v, d) => decide(gw.context(), gw.view, v, d.data, gw.now()));
    return gw;
  }

  get id(): string {
    return this.options.identity.id;
  }

  /** The trust lists in force (watched: rotation and revocation apply without a restart). */
  get trust(): TrustStore {
    return this.party.trust;
  }

  /** Whether the gateway can do its work now, and if not, why (journal, clock, bus). */
  readiness(): PartyReadiness {
    return this.party.readiness();
  }

  private get country(): string {
    return this.party.country;
  }

  /** Who the gateway is, for its decisions. */
  private context(): GatewayContext {
    return {
      id: this.id,
      derive: this.party.derive,
      country: this.country,
      serves: (hub) => this.party.trust.organisation(hub) !== undefined,
    };
  }

  /** What the gateway holds, for its decisions. */
  private readonly view: GatewayView = {
    sent: (referralId) => this.state.sent.get(referralId),
    inbox: (referralId) => this.state.inbox.get(referralId),
  };

  /** Carries out a command's verdict; a refusal is thrown to the caller. */
  private async carryOut(verdict: Verdict<GatewayRecord>): Promise<void> {
    if (isRefusal(verdict)) throw verdict.refuse;
    await this.party.carryOut(verdict);
  }

  /** Referrals whose `published` record is being written, by id. */
  private readonly publishing = new Map<string, Promise<void>>();

  private intake = { checkedAt: 0, open: true };
  /** The stream-info request under way, shared by the requests that arrive meanwhile. */
  private intakeCheck: Promise<void> | undefined;

  /** Refuses new referrals while the stream is above its high-water mark (checked at most twice a second). */
  private async checkIntake(): Promise<void> {
    if (Date.now() - this.intake.checkedAt > 500) {
      this.intakeCheck ??= (async () => {
        const now = Date.now();
        const info = await (await this.party.bus.manager()).streams.info(this.party.stream);
        const high = this.options.intakeHighWater ?? 0.8;
        const { max_msgs: maxMsgs, max_bytes: maxBytes } = info.config;
        const full =
          (maxMsgs > 0 && info.state.messages >= Math.floor(maxMsgs * high)) ||
          (maxBytes > 0 && info.state.bytes >= maxBytes * high);
        this.intake = { checkedAt: now, open: !full };
      })().finally(() => {
        this.intakeCheck = undefined;
      });
      await this.intakeCheck;
    }
    if (!this.intake.open) {
      throw new StafettError(
        "ERR_UNAVAILABLE",
        "the bus is too full to take new referrals; retry later",
        { reason: "high_water" },
      );
    }
  }

  /**
   * Opens a referral. The record is written before the event is published (write-ahead), under
   * the referral's lock, so that a receipt can never arrive for a referral this gateway does not
   * know, even when a publish timed out after the stream had stored it. A retry with the same
   * Idempotency-Key finds the record and publishes again under the same event id (the stream
   * drops a second copy) until one publish is confirmed.
   */
  /**
   * `beforeSending(referralId)` runs once the referral's id is drawn and before anything is
   * written or sent (the HTTP layer records the action in the access audit there: if that
   * fails, nothing was sent).
   */
  async openReferral(
    request: ReferralRequest,
    idempotencyKey?: string,
    beforeSending?: (referralId: string) => Promise<void>,
  ): Promise<OpenedReferral> {
    // Requests with one key are taken one at a time: the first draws the id, the others find it.
    if (idempotencyKey === undefined)
      return this.openReferralOnce(request, undefined, beforeSending);
    return this.party.locks.run(`idempotency-key:${idempotencyKey}`, () =>
      this.openReferralOnce(request, idempotencyKey, beforeSending),
    );
  }

  private async openReferralOnce(
    request: ReferralRequest,
    idempotencyKey: string | undefined,
    beforeSending: ((referralId: string) => Promise<void>) | undefined,
  ): Promise<OpenedReferral> {
    validate(SCHEMA_IDS.api("referral-request"), request);
    const key = idempotencyKey;
    const requestDigest = jsonDigest(request);
    // Unpredictable to anyone but this gateway, and never the client's choice: another
    // organisation cannot open a referral under an id this one will use.
    const referralId =
      (key === undefined ? undefined : this.state.idempotency.get(key)) ?? randomUUID();
    await beforeSending?.(referralId);
    const opened = await this.party.locks.run(referralId, async () => {
      const existing = this.state.sent.get(referralId);
      if (existing !== undefined && key === undefined) {
        throw new StafettError("ERR_REPLAY", "a referral with this id was already opened", {
          reason: "duplicate_referral",
          field: "/referralId",
        });
      }
      if (existing?.requestDigest !== undefined && existing.requestDigest !== requestDigest) {
        throw new StafettError(
          "ERR_IDEMPOTENCY_MISMATCH",
          "this Idempotency-Key was used for a different referral",
          { reason: "different_body", field: "Idempotency-Key" },
        );
      }
      const publishing = this.publishing.get(referralId);
      if (existing?.published === true || publishing !== undefined)
        return { replayed: true, recorded: publishing };
      const now = this.now();
      const deadline =
        existing?.deadline ?? deadlineOf(request.deadline, request.urgency, this.deadlines, now);
      if (deadline instanceof StafettError) throw deadline;
      const route = routeOpened(this.context(), request.destination);
      if (route instanceof StafettError) throw route;
      // A retried request with the same key gets the same event id: the stream drops a second copy.
      const eventId = existing?.openedId ?? randomUUID();
      let written: Promise<void> | undefined;
      if (existing === undefined) {
        this.party.checkOwnKey(now);
        await this.checkIntake();
        written = this.party.record([
          {
            k: "sent",
            referralId,
            openedId: eventId,
            hub: route.addressee,
            destination: request.destination,
            urgency: request.urgency,
            reason: request.reason,
            deadline,
            at: now.toISOString(),
            ...(key === undefined ? {} : { idempotencyKey: key }),
            requestDigest,
          },
        ]);
      }
      // A failed write is thrown below; until then it must not count as unhandled.
      written?.catch(() => undefined);
      // Sealed and signed while the record is written; published only once it is on disk.
      const issued = await this.party
        .issue({
          type: "opened",
          addressee: route.addressee,
          referralId,
          id: eventId,
          time: now,
          body: {
            urgency: request.urgency,
            reason: request.reason,
            destination: request.destination,
            deadline,
          },
          personal: request.personal,
          sealTo: route.sealTo,
          ...(route.partnerCountry === undefined ? {} : { partnerCountry: route.partnerCountry }),
        })
        .catch(async (err: unknown) => {
          await written?.catch(() => undefined);
          throw err;
        });
      await written;
      await this.party.publish(issued, { deadlineMs: this.options.publishDeadlineMs ?? 3_000 });
      // Written to disk after the lock is released: the hub's receipt, which needs the lock, does
      // not wait for this write. A retry meanwhile waits for it and is answered as a replay.
      const recorded = this.party
        .record([{ k: "published", referralId }])
        .finally(() => this.publishing.delete(referralId));
      recorded.catch(() => undefined);
      this.publishing.set(referralId, recorded);
      return { replayed: false, recorded };
    });
    await opened.recorded;
    // This call published it: for the caller it is new, even if an earlier attempt had recorded it.
    return this.describe(referralId, opened.replayed);
  }

  private describe(referralId: string, replayed: boolean): OpenedReferral {
    const ref = this.state.sent.get(referralId);
    if (ref === undefined) throw new Error("referral vanished from state");
    return {
      referralId,
      eventId: ref.openedId,
      deadline: ref.deadline,
      addressee: ref.hub,
      replayed,
    };
  }

  referral(referralId: string): SentReferral | undefined {
    return this.state.sent.get(referralId);
  }

  /** The sender's own follow-ups: updated, withdrawn, closed; each goes to the referral's first addressee. */
  async follow(
    referralId: string,
    type: "updated" | "withdrawn" | "closed",
    body: Record<string, unknown>,
    personal?: PersonalJson,
  ): Promise<TimelineEntry> {
    return this.party.locks.run(referralId, async () => {
      const eventId = randomUUID();
      await this.carryOut(
        decideFollow(
          this.context(),
          this.view,
          {
            referralId,
            type,
            body,
            eventId,
            ...(personal === undefined ? {} : { personal }),
          },
          this.now(),
        ),
      );
      const entry = this.state.sent.get(referralId)?.timeline.find((t) => t.eventId === eventId);
      if (entry === undefined) throw new Error("follow-up vanished from the timeline");
      return entry;
    });
  }

  /** Erases a referral's personal part from this gateway's store, on request (see Party.erase). */
  erase(referralId: string): Promise<Erasure> {
    return this.party.erase(referralId, "request");
  }

  inboxItem(referralId: string): InboxItem | undefined {
    return this.state.inbox.get(referralId);
  }

  /** The personal part of an inbox item, opened now with this municipality's key (never stored in clear). */
  async personalOf(item: InboxItem): Promise<unknown> {
    if (item.erased === true)
      throw new StafettError("ERR_GONE", "the personal part of this referral was erased", {
        reason: "erased",
      });
    const bytes = this.storedBytes(item.stored);
    const updated = item.updated === undefined ? undefined : this.storedBytes(item.updated);
    const sealed = sealedIn(updated ?? bytes) ?? sealedIn(bytes);
    return openPersonal(this.options.identity, sealed, item.referralId);
  }

  /** The signed bytes (standard base64) of an inbox or update record, read from the journal. */
  private storedBytes(at: JournalRef): string {
    const r = this.party.stored(at);
    if ((r.k === "inbox" || r.k === "inbox-event") && r.bytes !== undefined) return r.bytes;
    throw new Error(`journal record at ${at.offset} holds no inbox bytes`);
  }

  async answer(
    referralId: string,
    decision: "accepted" | "declined",
    declined?: { reason: string; suggested?: DestinationJson },
  ): Promise<InboxItem> {
    return this.party.locks.run(referralId, async () => {
      await this.carryOut(
        decideAnswer(this.context(), this.view, referralId, decision, declined, this.now()),
      );
      const item = this.state.inbox.get(referralId);
      if (item === undefined) throw new Error("inbox item vanished from state");
      return item;
    });
  }

  async stop(): Promise<void> {
    await this.party.stop();
    await this.notifier.stop();
  }
}

/** The sealed personal part carried by a forwarded event (its own, else its original's). */
function sealedIn(b64: string): string | undefined {
  const e = decodeEvent(decodeSignedEvent(fromBase64(b64)).event);
  if (e.forwarded?.personal !== undefined) return e.forwarded.personal;
  if (e.forwarded === undefined) return e.opened?.personal ?? e.updated?.personal;
  const inner = decodeEvent(decodeSignedEvent(fromBase64(e.forwarded.original)).event);
  return inner.opened?.personal ?? inner.updated?.personal;
}
