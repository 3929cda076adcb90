/** The liaison's own state, rebuilt from its journal: what crossed the border, and what waits for a decision. */
import type { ReasonCategory, Urgency } from "@stafett/shared";

export type LiaisonRecord =
  | {
      k: "out";
      eventId: string;
      referralId: string;
      type: string;
      partner: string;
      from: string;
      at: string;
    }
  | {
      k: "refused";
      eventId: string;
      referralId: string;
      partner: string;
      from: string;
      reason: string;
      at: string;
    }
  | { k: "relayed-in"; eventId: string; referralId: string; type: string; to: string; at: string }
  | {
      k: "inbound";
      referralId: string;
      openedId: string;
      origin: string;
      urgency: Urgency;
      reason: ReasonCategory;
      deadline: string;
      /** Standard base64 of the opened SignedEvent as it arrived (personal part sealed). */
      opened: string;
      /** Where it went: a hub, the coordinator, or nowhere yet (waits for the contact point). */
      routedTo?: string;
      at: string;
    }
  | {
      k: "answered";
      referralId: string;
      decision: "accepted" | "declined";
      eventId: string;
      at: string;
    };

export interface InboundReferral {
  referralId: string;
  openedId: string;
  origin: string;
  urgency: Urgency;
  reason: ReasonCategory;
  deadline: string;
  opened: string;
  routedTo?: string;
  status: "routed" | "pending" | "accepted" | "declined";
  at: string;
}

/** Who a referral crossed the border with: the partner countries, and the domestic parties on it. */
export interface Crossing {
  partners: Set<string>;
  domestic: Set<string>;
}

export class LiaisonState {
  readonly out: LiaisonRecord[] = [];
  readonly refused: LiaisonRecord[] = [];
  readonly inbound = new Map<string, InboundReferral>();
  /** Every referral that crossed the border here, either way. */
  readonly crossed = new Map<string, Crossing>();

  private crossing(referralId: string): Crossing {
    let c = this.crossed.get(referralId);
    if (c === undefined) {
      c = { partners: new Set(), domestic: new Set() };
      this.crossed.set(referralId, c);
    }
    return c;
  }

  apply(r: LiaisonRecord): void {
    switch (r.k) {
      case "out": {
        this.out.push(r);
        const c = this.crossing(r.referralId);
        c.partners.add(r.partner);
        c.domestic.add(r.from);
        break;
      }
      case "refused":
        this.refused.push(r);
        break;
      case "inbound":
        this.crossing(r.referralId).partners.add(r.origin.split(":")[0] ?? "");
        if (r.routedTo !== undefined) this.crossing(r.referralId).domestic.add(r.routedTo);
        this.inbound.set(r.referralId, {
          referralId: r.referralId,
          openedId: r.openedId,
          origin: r.origin,
          urgency: r.urgency,
          reason: r.reason,
          deadline: r.deadline,
          opened: r.opened,
          ...(r.routedTo === undefined ? {} : { routedTo: r.routedTo }),
          status: r.routedTo === undefined ? "pending" : "routed",
          at: r.at,
        });
        break;
      case "answered": {
        const item = this.inbound.get(r.referralId);
        if (item !== undefined) item.status = r.decision;
        break;
      }
      case "relayed-in":
        break;
    }
  }
}
