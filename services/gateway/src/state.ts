/**
 * The gateway's own state, rebuilt from its journal: the referrals this municipality sent (with
 * their timelines) and the ones handed to it (its inbox). The signed bytes of an inbox item stay
 * as they arrived, on disk in the journal (memory holds where they are); the personal part in
 * them stays sealed at rest and is opened on request.
 */
import type { DestinationJson, JournalRef, ReasonCategory, Urgency } from "@stafett/shared";

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
  timeline: TimelineEntry[];
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

export class GatewayState {
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
        break;
      }
      case "answered": {
        const item = this.inbox.get(r.referralId);
        if (item !== undefined) item.status = r.decision;
        break;
      }
    }
  }
}
