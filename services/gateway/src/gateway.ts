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
  derivedId,
  fromBase64,
  hubId,
  hubOfMunicipality,
  isMunicipality,
  liaisonId,
  open,
  Party,
  parseOrgId,
  SCHEMA_IDS,
  StafettError,
  toBase64,
  validate,
  type Decision,
  type Delivery,
  type DestinationJson,
  type JournalRef,
  type Logger,
  type PersonalJson,
  type ReasonCategory,
  type ServiceRuntime,
  type TrustStore,
  type Urgency,
  type VerifiedEvent,
} from "@stafett/shared";
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
}

export interface ReferralRequest {
  referralId?: string;
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
  private party!: Party<GatewayRecord>;
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
    this.now = options.now ?? (() => new Date());
  }

  static async start(options: GatewayOptions, log: Logger): Promise<Gateway> {
    const gw = new Gateway(options);
    gw.party = await Party.forService<GatewayRecord>(
      options,
      log,
      (r, at) => gw.state.apply(r, at),
      options.concurrency === undefined ? {} : { concurrency: options.concurrency },
    );
    await gw.party.consume((v, d) => gw.handle(v, d));
    return gw;
  }

  get id(): string {
    return this.options.identity.id;
  }

  /** The trust lists in force (watched: rotation and revocation apply without a restart). */
  get trust(): TrustStore {
    return this.party.trust;
  }

  private get country(): string {
    return this.party.country;
  }

  private at(): string {
    return this.now().toISOString();
  }

  /** Where a referral goes first, and who can read its personal part. */
  private routeOf(dest: DestinationJson): {
    addressee: string;
    sealTo: string[];
    partnerCountry?: string;
  } {
    if (dest.country !== this.country) {
      // Bound for another country: addressed to the partner's liaison, through our own.
      // Sealed to the partner's liaison and to our own, which reviews what leaves the country.
      const partner = liaisonId(dest.country);
      return {
        addressee: partner,
        sealTo: [partner, liaisonId(this.country)],
        partnerCountry: dest.country,
      };
    }
    if (dest.municipality !== undefined) {
      if (!isMunicipality(dest.municipality)) {
        throw new StafettError(
          "ERR_UNKNOWN_MUNICIPALITY",
          "destination municipality is not a known code",
          { reason: "unknown", field: "/destination/municipality" },
        );
      }
      const target = `${dest.country}:municipality:${dest.municipality}`;
      return { addressee: hubOfMunicipality(target), sealTo: [hubOfMunicipality(target), target] };
    }
    // No municipality known: the destination region's hub (or our own) triages it.
    const hub =
      dest.region !== undefined ? hubId(dest.country, dest.region) : hubOfMunicipality(this.id);
    if (this.party.trust.organisation(hub) === undefined) {
      throw new StafettError("ERR_ADDRESS_INVALID", "no hub serves the destination region", {
        reason: "unknown_region",
        field: "/destination/region",
      });
    }
    return { addressee: hub, sealTo: [hub] };
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
  async openReferral(request: ReferralRequest, idempotencyKey?: string): Promise<OpenedReferral> {
    validate(SCHEMA_IDS.api("referral-request"), request);
    const key = idempotencyKey;
    const referralId =
      (key === undefined ? undefined : this.state.idempotency.get(key)) ??
      request.referralId ??
      (key === undefined ? randomUUID() : derivedId(this.id, "referral", key));
    const opened = await this.party.locks.run(referralId, async () => {
      const existing = this.state.sent.get(referralId);
      if (existing !== undefined && key === undefined) {
        throw new StafettError("ERR_REPLAY", "a referral with this id was already opened", {
          reason: "duplicate_referral",
          field: "/referralId",
        });
      }
      const publishing = this.publishing.get(referralId);
      if (existing?.published === true || publishing !== undefined)
        return { replayed: true, recorded: publishing };
      const now = this.now();
      const deadline =
        existing?.deadline ??
        request.deadline ??
        new Date(now.getTime() + this.deadlines[request.urgency]).toISOString();
      if (Date.parse(deadline) <= now.getTime()) {
        throw new StafettError("ERR_SCHEMA_INVALID", "the deadline has already passed", {
          reason: "past",
          field: "/deadline",
        });
      }
      const route = this.routeOf(request.destination);
      // A retried request with the same key gets the same event id: the stream drops a second copy.
      const eventId =
        existing?.openedId ??
        (key === undefined ? randomUUID() : derivedId(this.id, "opened", key));
      let written: Promise<void> | undefined;
      if (existing === undefined) {
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
      const ref = this.state.sent.get(referralId);
      if (ref === undefined)
        throw new StafettError("ERR_NOT_FOUND", "no referral sent with this id", {
          reason: "unknown_referral",
          field: "referralId",
        });
      if (ref.status === "closed" || ref.status === "withdrawn") {
        throw new StafettError("ERR_NOT_AUTHORISED", `the referral is ${ref.status}`, {
          reason: "ended",
          field: "referralId",
        });
      }
      const sealTo = [
        ref.hub,
        ...(ref.holder !== undefined && ref.holder !== ref.hub ? [ref.holder] : []),
      ];
      const dest = ref.destination;
      const issued = await this.party.send({
        type,
        addressee: ref.hub,
        referralId,
        body,
        ...(personal === undefined ? {} : { personal, sealTo }),
        ...(dest.country === this.country ? {} : { partnerCountry: dest.country }),
      });
      const entry: TimelineEntry = { type, at: this.at(), eventId: issued.id, by: this.id };
      await this.party.record([{ k: "timeline", referralId, entry }]);
      return entry;
    });
  }

  inboxItem(referralId: string): InboxItem | undefined {
    return this.state.inbox.get(referralId);
  }

  /** The personal part of an inbox item, opened now with this municipality's key (never stored in clear). */
  async personalOf(item: InboxItem): Promise<unknown> {
    const bytes = this.storedBytes(item.stored);
    const updated = item.updated === undefined ? undefined : this.storedBytes(item.updated);
    const sealed = sealedIn(updated ?? bytes) ?? sealedIn(bytes);
    if (sealed === undefined)
      throw new StafettError("ERR_NOT_RECIPIENT", "no personal part for this reader", {
        reason: "not_recipient",
        field: "personal",
      });
    return open(sealed, this.options.identity.encryption, item.referralId);
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
      const item = this.state.inbox.get(referralId);
      if (item === undefined)
        throw new StafettError("ERR_NOT_FOUND", "no referral in the inbox with this id", {
          reason: "unknown_referral",
          field: "referralId",
        });
      if (item.status !== "pending")
        throw new StafettError("ERR_NOT_AUTHORISED", `the referral is already ${item.status}`, {
          reason: "not_pending",
          field: "referralId",
        });
      const issued = await this.party.send({
        type: decision,
        addressee: item.via,
        referralId,
        id: derivedId(this.id, decision, item.forwardedId),
        body:
          decision === "accepted"
            ? { ofEventId: item.openedId }
            : { ofEventId: item.openedId, ...declined },
      });
      await this.party.record([
        { k: "answered", referralId, decision, eventId: issued.id, at: this.at() },
      ]);
      return item;
    });
  }

  private entry(
    v: VerifiedEvent,
    type: TimelineEntry["type"],
    extra: Partial<TimelineEntry> = {},
  ): GatewayRecord {
    return {
      k: "timeline",
      referralId: v.event.referralId,
      entry: { type, at: this.at(), eventId: v.event.id, by: v.issuer.id, ...extra },
    };
  }

  private async handle(v: VerifiedEvent, d: Delivery): Promise<Decision<GatewayRecord>> {
    const e = v.event;
    const mine = this.state.sent.get(e.referralId);
    switch (e.type) {
      case "received":
        return mine === undefined ? [] : [this.entry(v, "received")];
      case "rejected":
        return mine === undefined
          ? []
          : [
              this.entry(v, "rejected", {
                code: e.rejected?.code ?? "",
                reason: e.rejected?.reason ?? "",
              }),
            ];
      case "escalated":
        return mine === undefined ? [] : [this.entry(v, "escalated")];
      case "forwarded":
        return this.onForwarded(v, d, mine);
      default:
        return [];
    }
  }

  private async onForwarded(
    v: VerifiedEvent,
    d: Delivery,
    mine: SentReferral | undefined,
  ): Promise<GatewayRecord[]> {
    const inner = v.original;
    const e = v.event;
    if (inner === undefined) return [];
    const innerType = inner.event.type;
    if (innerType === "opened" && inner.issuer.id === this.id) {
      // The hub tells us where our referral went.
      // Handed to a municipality of the notifying hub's own region: forwarded; else re-routed
      // to the hub that serves the destination.
      const dest = e.forwarded?.destination;
      if (mine === undefined || dest === undefined) return [];
      if (dest.country !== this.country)
        return [this.entry(v, "forwarded", { to: liaisonId(dest.country) })];
      const target =
        dest.municipality !== undefined && isMunicipality(dest.municipality)
          ? `${dest.country}:municipality:${dest.municipality}`
          : undefined;
      const servingHub =
        target !== undefined
          ? hubOfMunicipality(target)
          : dest.region !== undefined
            ? hubId(dest.country, dest.region)
            : v.issuer.id;
      if (target !== undefined && servingHub === v.issuer.id)
        return [this.entry(v, "forwarded", { to: target })];
      return [this.entry(v, "rerouted", { to: servingHub })];
    }
    if (innerType === "opened") {
      const o = inner.event.opened;
      if (o === undefined || this.state.inbox.has(e.referralId)) return [];
      return [
        {
          k: "inbox",
          referralId: e.referralId,
          forwardedId: e.id,
          openedId: inner.event.id,
          origin: inner.issuer.id,
          via: v.issuer.id,
          urgency: o.urgency,
          reason: o.reason,
          deadline: e.forwarded?.deadline ?? o.deadline,
          bytes: toBase64(d.data),
          at: this.at(),
        },
      ];
    }
    if ((innerType === "received" || innerType === "rejected") && mine !== undefined) {
      // A partner country's receipt or refusal, relayed by our liaison.
      const r = inner.event.rejected;
      return [
        {
          k: "timeline",
          referralId: e.referralId,
          entry: {
            type: innerType,
            at: this.at(),
            eventId: inner.event.id,
            by: inner.issuer.id,
            ...(r === undefined ? {} : { code: r.code, reason: r.reason }),
          },
        },
      ];
    }
    if ((innerType === "accepted" || innerType === "declined") && mine !== undefined) {
      const records: GatewayRecord[] = [
        {
          k: "timeline",
          referralId: e.referralId,
          entry: {
            type: innerType,
            at: this.at(),
            eventId: inner.event.id,
            by: inner.issuer.id,
            ...(innerType === "declined" ? { reason: inner.event.declined?.reason ?? "" } : {}),
          },
        },
      ];
      if (innerType === "accepted") {
        // Responsibility has moved: the sender's side of the referral ends (docs/contract.md, lifecycle).
        const closed = await this.party.send({
          type: "closed",
          addressee: mine.hub,
          referralId: e.referralId,
          id: derivedId(this.id, "closed", inner.event.id),
          body: { outcome: "CLOSE_OUTCOME_ACCEPTED", holder: inner.issuer.id },
          ...(mine.destination.country === this.country
            ? {}
            : { partnerCountry: mine.destination.country }),
        });
        records.push({
          k: "timeline",
          referralId: e.referralId,
          entry: { type: "closed", at: this.at(), eventId: closed.id, by: this.id },
        });
      }
      return records;
    }
    if (
      (innerType === "updated" || innerType === "withdrawn" || innerType === "closed") &&
      this.state.inbox.has(e.referralId)
    ) {
      return [
        {
          k: "inbox-event",
          referralId: e.referralId,
          type: innerType,
          eventId: inner.event.id,
          ...(innerType === "updated" ? { bytes: toBase64(d.data) } : {}),
          at: this.at(),
        },
      ];
    }
    return [];
  }

  async stop(): Promise<void> {
    await this.party.stop();
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
