/** The liaison's own state, rebuilt from its journal: what crossed the border, and what waits for a decision. */
import { DeadlineWatch, type ReasonCategory, type Urgency } from "@stafett/shared";

export type LiaisonRecord =
  | {
      k: "out";
      eventId: string;
      referralId: string;
      type: string;
      partner: string;
      from: string;
      /** For a referral (`opened`): its deadline and urgency, which the liaison watches. */
      deadline?: string;
      urgency?: Urgency;
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
    }
  | { k: "escalated"; referralId: string; eventId: string; at: string };

/**
 * A referral at the border whose deadline the liaison watches: one sent abroad until the partner
 * accepts or declines it, one received from abroad until the contact point answers or routes it.
 */
export interface Watched {
  referralId: string;
  direction: "out" | "in";
  deadline: string;
  urgency?: Urgency;
  /** Who sent it: a domestic party (out) or the partner's liaison (in). */
  origin: string;
  partner: string;
  settled: boolean;
  escalated: boolean;
  /** The partner's decision on a referral sent to it, once it came back. */
  answer?: "accepted" | "declined";
}

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
  /** The referrals at the border whose deadlines are watched. */
  readonly watched = new Map<string, Watched>();
  private readonly deadlines = new DeadlineWatch();

  private watch(w: Watched): void {
    if (this.watched.has(w.referralId)) return;
    this.watched.set(w.referralId, w);
    this.deadlines.watch(w.deadline, w.referralId);
  }

  private settle(referralId: string): void {
    const w = this.watched.get(referralId);
    if (w !== undefined) w.settled = true;
  }

  /** Referrals at the border past their deadline with nobody having taken them, not yet escalated. */
  overdue(now: Date): Watched[] {
    return this.deadlines
      .overdue(now, (id) => {
        const w = this.watched.get(id);
        return w === undefined || w.settled || w.escalated ? undefined : w.deadline;
      })
      .flatMap((id) => this.watched.get(id) ?? []);
  }

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
        if (r.type === "opened" && r.deadline !== undefined)
          this.watch({
            referralId: r.referralId,
            direction: "out",
            deadline: r.deadline,
            ...(r.urgency === undefined ? {} : { urgency: r.urgency }),
            origin: r.from,
            partner: r.partner,
            settled: false,
            escalated: false,
          });
        break;
      }
      case "refused":
        this.refused.push(r);
        break;
      case "inbound":
        this.crossing(r.referralId).partners.add(r.origin.split(":")[0] ?? "");
        if (r.routedTo === undefined)
          this.watch({
            referralId: r.referralId,
            direction: "in",
            deadline: r.deadline,
            urgency: r.urgency,
            origin: r.origin,
            partner: r.origin.split(":")[0] ?? "",
            settled: false,
            escalated: false,
          });
        // Routed to a hub: the hub watches its deadline from now on.
        else this.settle(r.referralId);
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
        this.settle(r.referralId);
        break;
      }
      case "relayed-in": {
        // The partner's answer to a referral sent to it: the partner has decided.
        const w = this.watched.get(r.referralId);
        if (w?.direction === "out" && (r.type === "accepted" || r.type === "declined")) {
          w.answer = r.type;
          this.settle(r.referralId);
        }
        break;
      }
      case "escalated": {
        const w = this.watched.get(r.referralId);
        if (w !== undefined) w.escalated = true;
        break;
      }
    }
  }
}
