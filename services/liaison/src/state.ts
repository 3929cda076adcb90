/**
 * The liaison's own state, rebuilt from its journal: what crossed the border, and what waits for
 * a decision. It holds the signed bytes of each partner's referral (the personal part sealed to
 * it) and of the answers to the referrals it sent abroad itself; nothing about the child in
 * clear. Retention (retention.ts): each referral's handling here ends when it is answered,
 * handed to a hub that receipted it, withdrawn or closed; its bytes are erased after the personal
 * period, the rest forgotten after the metadata period.
 */
import {
  DeadlineWatch,
  parseOrgId,
  type Holdings,
  type ReasonCategory,
  type Urgency,
} from "@stafett/shared";

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
  | { k: "escalated"; referralId: string; eventId: string; at: string }
  /** A partner's update, withdrawal or close of its referral, relayed to the hub it went to (if any). */
  | {
      k: "follow-in";
      referralId: string;
      type: "updated" | "withdrawn" | "closed";
      eventId: string;
      to?: string;
      at: string;
    }
  /** The hub a partner's referral was routed to has it (its receipt): it watches the deadline now. */
  | { k: "taken"; referralId: string; by: string; eventId: string; at: string }
  /** A domestic hub handed a partner's referral on: to a municipality, or to another hub. */
  | { k: "handed-on"; referralId: string; by: string; to: string; eventId: string; at: string }
  /**
   * What came back about a referral this liaison itself sent abroad: a receipt, a refusal, or an
   * answer (a partner hub's `forwarded` with the answer inside, or the partner contact point's).
   */
  | {
      k: "answer-in";
      referralId: string;
      eventId: string;
      type: "received" | "rejected" | "accepted" | "declined";
      /** Who answered: the partner municipality (inside a relay) or contact point. */
      by: string;
      /** Standard base64 of the SignedEvent as it arrived, every signature on it. */
      bytes: string;
      at: string;
    };

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
  /** Who holds it now, as the hubs on its way reported (a municipality, or a hub). */
  heldBy?: string;
  status: "routed" | "pending" | "accepted" | "declined" | "withdrawn" | "closed";
  at: string;
  /** When its handling ended here (answered, taken by the hub it was routed to, withdrawn, closed). */
  endedAt?: string;
  /** Its personal part was erased: `opened` is empty, in memory and in the journal. */
  erased?: true;
}

/** A referral the liaison itself (the contact point) sent to a partner country, and what came back. */
export interface SentAbroad {
  referralId: string;
  partner: string;
  status: "sent" | "accepted" | "declined" | "withdrawn" | "closed";
  answers: { type: string; by: string; eventId: string; bytes: string; at: string }[];
  /** When its handling ended here (the contact point withdrew or closed it). */
  endedAt?: string;
  /** Its answers' bytes were erased (a relay's may carry a personal part). */
  erased?: true;
}

/** Who a referral crossed the border with: the partner countries, and the domestic parties on it. */
export interface Crossing {
  partners: Set<string>;
  domestic: Set<string>;
}

export class LiaisonState implements Holdings<LiaisonRecord> {
  out: LiaisonRecord[] = [];
  refused: LiaisonRecord[] = [];
  readonly inbound = new Map<string, InboundReferral>();
  /** Every referral that crossed the border here, either way. */
  readonly crossed = new Map<string, Crossing>();
  /** The referrals at the border whose deadlines are watched. */
  readonly watched = new Map<string, Watched>();
  /** The referrals the contact point itself sent abroad. */
  readonly sent = new Map<string, SentAbroad>();
  /**
   * When the handling of a referral that only crossed the border here ended (a domestic party's
   * referral abroad, withdrawn or closed): the liaison keeps its metadata, no personal part.
   */
  private readonly crossingEnded = new Map<string, string>();
  private deadlines = new DeadlineWatch();

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
        if (r.type === "opened" && parseOrgId(r.from).role === "liaison")
          this.sent.set(r.referralId, {
            referralId: r.referralId,
            partner: r.partner,
            status: "sent",
            answers: [],
          });
        const own = this.sent.get(r.referralId);
        if (own !== undefined && (r.type === "withdrawn" || r.type === "closed")) {
          own.status = r.type;
          own.endedAt ??= r.at;
          this.settle(r.referralId);
        }
        if (r.type === "withdrawn" || r.type === "closed")
          this.crossingEnded.set(r.referralId, this.crossingEnded.get(r.referralId) ?? r.at);
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
        // Watched until the hub it is routed to has it (its receipt), or the contact point acts:
        // a hub that refuses the hand-in leaves it with nobody else watching.
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
        if (item !== undefined) {
          item.status = r.decision;
          item.endedAt ??= r.at;
        }
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
      case "follow-in": {
        const item = this.inbound.get(r.referralId);
        if (item !== undefined && r.type !== "updated") {
          item.status = r.type;
          item.endedAt ??= r.at;
        }
        if (r.type !== "updated") this.settle(r.referralId);
        break;
      }
      case "taken": {
        // The hub it was routed to has it: the liaison's part is done.
        const item = this.inbound.get(r.referralId);
        if (item !== undefined) item.endedAt ??= r.at;
        this.settle(r.referralId);
        break;
      }
      case "handed-on": {
        this.settle(r.referralId);
        const item = this.inbound.get(r.referralId);
        if (item !== undefined) item.heldBy = r.to;
        // A hub it was handed to is on its path: it may relay the answer abroad.
        if (parseOrgId(r.to).role === "hub") this.crossing(r.referralId).domestic.add(r.to);
        break;
      }
      case "answer-in": {
        const own = this.sent.get(r.referralId);
        if (own === undefined) break;
        own.answers.push({ type: r.type, by: r.by, eventId: r.eventId, bytes: r.bytes, at: r.at });
        if (r.type === "accepted" || r.type === "declined") {
          own.status = r.type;
          this.settle(r.referralId);
        }
        break;
      }
    }
  }

  referralOf(record: LiaisonRecord): string {
    return record.referralId;
  }

  /**
   * A partner's referral carries the signed bytes with the personal part sealed to the liaison;
   * an answer to a referral sent abroad, the signed bytes as they came (a relay's may carry a
   * personal part). Nothing else holds bytes.
   */
  strip(record: LiaisonRecord): LiaisonRecord {
    if (record.k === "inbound") return { ...record, opened: "" };
    if (record.k === "answer-in") return { ...record, bytes: "" };
    return record;
  }

  *ended(): Iterable<{ referralId: string; at: string }> {
    const ends = new Map(this.crossingEnded);
    for (const i of this.inbound.values())
      if (i.endedAt !== undefined) ends.set(i.referralId, i.endedAt);
    for (const s of this.sent.values())
      if (s.endedAt !== undefined) ends.set(s.referralId, s.endedAt);
    for (const [referralId, at] of ends) yield { referralId, at };
  }

  holds(referralId: string): boolean {
    return (
      this.inbound.has(referralId) ||
      this.sent.has(referralId) ||
      this.crossed.has(referralId) ||
      this.watched.has(referralId)
    );
  }

  /** The bytes go from memory too: what the journal keeps is stripped by the compaction. */
  erase(referralId: string): void {
    const item = this.inbound.get(referralId);
    if (item !== undefined) {
      item.opened = "";
      item.erased = true;
    }
    const own = this.sent.get(referralId);
    if (own !== undefined) {
      for (const a of own.answers) a.bytes = "";
      own.erased = true;
    }
  }

  /** Its deadline entry, if any, goes when it passes (nothing is watched any more). */
  forget(referralId: string): void {
    this.inbound.delete(referralId);
    this.sent.delete(referralId);
    this.crossed.delete(referralId);
    this.watched.delete(referralId);
    this.crossingEnded.delete(referralId);
    this.out = this.out.filter((r) => r.referralId !== referralId);
    this.refused = this.refused.filter((r) => r.referralId !== referralId);
  }

  reset(): void {
    this.out = [];
    this.refused = [];
    this.inbound.clear();
    this.crossed.clear();
    this.watched.clear();
    this.sent.clear();
    this.crossingEnded.clear();
    this.deadlines = new DeadlineWatch();
  }
}
