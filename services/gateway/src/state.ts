/**
 * The gateway's own state, rebuilt from its journal: the referrals this municipality sent (with
 * their timelines) and the ones handed to it (its inbox). The signed bytes of an inbox item stay
 * as they arrived, on disk in the journal (memory holds where they are); the personal part in
 * them stays sealed at rest and is opened on request.
 */
import type {
  DestinationJson,
  Holdings,
  JournalRef,
  ReasonCategory,
  Urgency,
} from "@stafett/shared";

export type TimelineType =
  | "opened"
  | "received"
  | "forwarded"
  | "rerouted"
  | "accepted"
  | "declined"
  | "escalated"
  | "rejected"
  | "updated"
  | "withdrawn"
  | "closed";

export interface TimelineEntry {
  type: TimelineType;
  at: string;
  eventId: string;
  /** Who did it (the issuer of the event). */
  by: string;
  /** Where the referral went, for forwarded and rerouted. */
  to?: string;
  code?: string;
  reason?: string;
}

export type GatewayRecord =
  | {
      k: "sent";
      referralId: string;
      openedId: string;
      hub: string;
      destination: DestinationJson;
      urgency: Urgency;
      reason: ReasonCategory;
      deadline: string;
      at: string;
      idempotencyKey?: string;
      /** The digest of the request that opened it: a reused Idempotency-Key must carry the same. */
      requestDigest?: string;
    }
  | { k: "published"; referralId: string }
  | { k: "timeline"; referralId: string; entry: TimelineEntry }
  | {
      k: "inbox";
      referralId: string;
      forwardedId: string;
      openedId: string;
      origin: string;
      via: string;
      urgency: Urgency;
      reason: ReasonCategory;
      deadline: string;
      /** Standard base64 of the forwarded SignedEvent as it arrived (personal part sealed). */
      bytes: string;
      at: string;
    }
  | {
      k: "inbox-event";
      referralId: string;
      type: "updated" | "withdrawn" | "closed";
      eventId: string;
      bytes?: string;
      at: string;
    }
  | {
      k: "answered";
      referralId: string;
      decision: "accepted" | "declined";
      eventId: string;
      at: string;
    };

export type ReferralStatus =
  | "opened"
  | "received"
  | "forwarded"
  | "accepted"
  | "declined"
  | "escalated"
  | "rejected"
  | "withdrawn"
  | "closed";

export interface SentReferral {
  referralId: string;
  openedId: string;
  hub: string;
  destination: DestinationJson;
  urgency: Urgency;
  reason: ReasonCategory;
  deadline: string;
  status: ReferralStatus;
  holder?: string;
  /** False until the stream confirmed the opened event (written ahead of the publish). */
  published: boolean;
  requestDigest?: string;
  idempotencyKey?: string;
  timeline: TimelineEntry[];
  /** When its handling ended here (closed or withdrawn): retention counts from then. */
  endedAt?: string;
}

export type InboxStatus = "pending" | "accepted" | "declined" | "withdrawn" | "closed";

export interface InboxItem {
  referralId: string;
  forwardedId: string;
  openedId: string;
  origin: string;
  via: string;
  urgency: Urgency;
  reason: ReasonCategory;
  deadline: string;
  /** Where its `inbox` record, with the forwarded bytes, is in the journal. */
  stored: JournalRef;
  /** Where the latest update's record (a newer sealed personal part) is, when there is one. */
  updated?: JournalRef;
  status: InboxStatus;
  receivedAt: string;
  /** When its handling ended here (closed, withdrawn, or declined and so handed on). */
  endedAt?: string;
  /** Its personal part was erased: the item answers 410 Gone. */
  erased?: true;
}

const STATUS_OF: Partial<Record<TimelineType, ReferralStatus>> = {
  received: "received",
  forwarded: "forwarded",
  accepted: "accepted",
  declined: "declined",
  escalated: "escalated",
  rejected: "rejected",
  withdrawn: "withdrawn",
  closed: "closed",
};

/** A sent referral's handling ends when it is closed or withdrawn. */
const SENT_ENDS: ReadonlySet<TimelineType> = new Set(["closed", "withdrawn"]);

export class GatewayState implements Holdings<GatewayRecord> {
  readonly sent = new Map<string, SentReferral>();
  readonly inbox = new Map<string, InboxItem>();
  readonly idempotency = new Map<string, string>();

  apply(r: GatewayRecord, at: JournalRef): void {
    switch (r.k) {
      case "sent":
        this.sent.set(r.referralId, {
          referralId: r.referralId,
          openedId: r.openedId,
          hub: r.hub,
          destination: r.destination,
          urgency: r.urgency,
          reason: r.reason,
          deadline: r.deadline,
          status: "opened",
          published: false,
          ...(r.requestDigest === undefined ? {} : { requestDigest: r.requestDigest }),
          ...(r.idempotencyKey === undefined ? {} : { idempotencyKey: r.idempotencyKey }),
          timeline: [{ type: "opened", at: r.at, eventId: r.openedId, by: "self", to: r.hub }],
        });
        if (r.idempotencyKey !== undefined) this.idempotency.set(r.idempotencyKey, r.referralId);
        break;
      case "published": {
        const ref = this.sent.get(r.referralId);
        if (ref !== undefined) ref.published = true;
        break;
      }
      case "timeline": {
        const ref = this.sent.get(r.referralId);
        if (ref === undefined) break;
        ref.timeline.push(r.entry);
        const status = STATUS_OF[r.entry.type];
        // A closed or accepted referral stays so; later receipts do not reopen it. A receipt
        // that comes after the hub's next step (its publish was retried) does not undo it.
        if (
          status !== undefined &&
          !(ref.status === "closed" || (ref.status === "accepted" && status !== "closed")) &&
          !(status === "received" && ref.status !== "opened")
        )
          ref.status = status;
        if (r.entry.type === "forwarded" && r.entry.to !== undefined) ref.holder = r.entry.to;
        if (r.entry.type === "accepted") ref.holder = r.entry.by;
        if (SENT_ENDS.has(r.entry.type)) ref.endedAt ??= r.entry.at;
        break;
      }
      case "inbox":
        this.inbox.set(r.referralId, {
          referralId: r.referralId,
          forwardedId: r.forwardedId,
          openedId: r.openedId,
          origin: r.origin,
          via: r.via,
          urgency: r.urgency,
          reason: r.reason,
          deadline: r.deadline,
          stored: at,
          status: "pending",
          receivedAt: r.at,
        });
        break;
      case "inbox-event": {
        const item = this.inbox.get(r.referralId);
        if (item === undefined) break;
        if (r.type === "updated" && r.bytes !== undefined) item.updated = at;
        if (r.type === "withdrawn" && item.status === "pending") item.status = "withdrawn";
        if (r.type === "closed" && item.status === "pending") item.status = "closed";
        if (r.type === "closed" || r.type === "withdrawn") item.endedAt ??= r.at;
        break;
      }
      case "answered": {
        const item = this.inbox.get(r.referralId);
        if (item === undefined) break;
        item.status = r.decision;
        // Declined: handed back to the hub, which re-routes it; this municipality is done.
        if (r.decision === "declined") item.endedAt ??= r.at;
        break;
      }
    }
  }

  referralOf(record: GatewayRecord): string {
    return record.referralId;
  }

  /** Inbox records carry the signed bytes with the sealed personal part; nothing else does. */
  strip(record: GatewayRecord): GatewayRecord {
    if (record.k === "inbox") return { ...record, bytes: "" };
    if (record.k === "inbox-event" && record.bytes !== undefined) {
      const { bytes: _erased, ...rest } = record;
      return rest;
    }
    return record;
  }

  *ended(): Iterable<{ referralId: string; at: string }> {
    for (const r of this.sent.values())
      if (r.endedAt !== undefined) yield { referralId: r.referralId, at: r.endedAt };
    for (const i of this.inbox.values())
      if (i.endedAt !== undefined) yield { referralId: i.referralId, at: i.endedAt };
  }

  holds(referralId: string): boolean {
    return this.sent.has(referralId) || this.inbox.has(referralId);
  }

  erase(referralId: string): void {
    const item = this.inbox.get(referralId);
    if (item === undefined) return;
    item.erased = true;
    delete item.updated;
  }

  forget(referralId: string): void {
    const sent = this.sent.get(referralId);
    if (sent?.idempotencyKey !== undefined) this.idempotency.delete(sent.idempotencyKey);
    this.sent.delete(referralId);
    this.inbox.delete(referralId);
  }

  reset(): void {
    this.sent.clear();
    this.inbox.clear();
    this.idempotency.clear();
  }
}
