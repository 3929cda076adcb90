/**
 * The hub's own state, rebuilt from its journal: every referral addressed into its region, who
 * holds it, and its deadline. The bytes it received (the personal part in them stays sealed),
 * which it may forward later, stay on disk in its journal: memory holds only where they are.
 * Nothing in clear about the child is kept.
 */
import type { DestinationJson, JournalRef, Urgency } from "@stafett/shared";

export type HubStatus =
  | "received"
  | "forwarded"
  | "triage"
  | "rerouted"
  | "accepted"
  | "declined"
  | "withdrawn"
  | "closed";

export type HubRecord =
  | {
      k: "received";
      referralId: string;
      openedId: string;
      origin: string;
      /** Standard base64 of the opened SignedEvent as it arrived (from the origin or a relay). */
      opened: string;
      /** The personal part sealed to this hub when a relay re-sealed it (else the opened's own). */
      sealed?: string;
      urgency: Urgency;
      deadline: string;
      destination: DestinationJson;
      from: string;
      at: string;
    }
  | { k: "forwarded"; referralId: string; to: string; eventId: string; at: string }
  | { k: "rerouted"; referralId: string; to: string; eventId: string; at: string }
  | { k: "triage"; referralId: string; at: string }
  | { k: "accepted"; referralId: string; by: string; eventId: string; at: string }
  | { k: "declined"; referralId: string; by: string; eventId: string; reason: string; at: string }
  | { k: "updated"; referralId: string; eventId: string; at: string }
  | { k: "withdrawn"; referralId: string; eventId: string; at: string }
  | { k: "closed"; referralId: string; eventId: string; at: string }
  | { k: "escalated"; referralId: string; eventId: string; at: string }
  | {
      /**
       * A refusal (`rejected`) of one of the hub's own events: of its escalation (escalated
       * again from `retryAt`), or of a hand-on (escalated at once).
       */
      k: "refused";
      referralId: string;
      /** The refused event. */
      eventId: string;
      /** Which of the hub's steps it was: "escalated", "forwarded", "rerouted". */
      of: string;
      by: string;
      code: string;
      reason: string;
      retryAt?: string;
      at: string;
    }
  | { k: "note"; referralId: string; type: string; eventId: string; from: string; at: string };

export interface HubReferral {
  referralId: string;
  openedId: string;
  origin: string;
  /** Where its `received` record, with the opened bytes, is in the journal. */
  stored: JournalRef;
  urgency: Urgency;
  deadline: string;
  destination: DestinationJson;
  status: HubStatus;
  holder?: string;
  escalated: boolean;
  /** Escalations the coordinator refused so far (each next one has its own event id). */
  escalationsRefused: number;
  /** After a refused escalation: when it is escalated again (instead of at its deadline). */
  escalateAfter?: string;
  history: {
    type: string;
    at: string;
    by?: string;
    to?: string;
    eventId?: string;
    code?: string;
  }[];
}

/** Statuses in which nobody has taken responsibility: past its deadline, such a referral escalates. */
const UNACCEPTED: ReadonlySet<HubStatus> = new Set(["received", "forwarded", "triage", "declined"]);

export class HubState {
  readonly referrals = new Map<string, HubReferral>();
  /** When each referral entered an unaccepted status: its deadline (ms), earliest first. */
  private readonly deadlines = new DeadlineQueue();
  /** Past their deadline and not yet seen escalated or accepted: checked on every tick. */
  private readonly due = new Set<string>();

  apply(r: HubRecord, at: JournalRef): void {
    if (r.k === "received") {
      this.referrals.set(r.referralId, {
        referralId: r.referralId,
        openedId: r.openedId,
        origin: r.origin,
        stored: at,
        urgency: r.urgency,
        deadline: r.deadline,
        destination: r.destination,
        status: "received",
        escalated: false,
        escalationsRefused: 0,
        history: [{ type: "received", at: r.at, by: r.from, eventId: r.openedId }],
      });
      this.deadlines.push(Date.parse(r.deadline), r.referralId);
      return;
    }
    const ref = this.referrals.get(r.referralId);
    if (ref === undefined) return;
    switch (r.k) {
      case "forwarded":
        ref.status = "forwarded";
        ref.holder = r.to;
        ref.history.push({ type: "forwarded", at: r.at, to: r.to, eventId: r.eventId });
        break;
      case "rerouted":
        ref.status = "rerouted";
        delete ref.holder;
        ref.history.push({ type: "rerouted", at: r.at, to: r.to, eventId: r.eventId });
        break;
      case "triage":
        ref.status = "triage";
        delete ref.holder;
        ref.history.push({ type: "triage", at: r.at });
        break;
      case "accepted":
        ref.status = "accepted";
        ref.holder = r.by;
        ref.history.push({ type: "accepted", at: r.at, by: r.by, eventId: r.eventId });
        break;
      case "declined":
        ref.status = "declined";
        delete ref.holder;
        ref.history.push({ type: "declined", at: r.at, by: r.by, eventId: r.eventId });
        break;
      case "withdrawn":
      case "closed":
        ref.status = r.k;
        ref.history.push({ type: r.k, at: r.at, eventId: r.eventId });
        break;
      case "updated":
        ref.history.push({ type: "updated", at: r.at, eventId: r.eventId });
        break;
      case "escalated":
        ref.escalated = true;
        ref.history.push({ type: "escalated", at: r.at, eventId: r.eventId });
        break;
      case "note":
        ref.history.push({ type: r.type, at: r.at, by: r.from, eventId: r.eventId });
        break;
      case "refused":
        ref.history.push({
          type: "refused",
          at: r.at,
          by: r.by,
          eventId: r.eventId,
          code: r.code,
        });
        if (r.of === "escalated" && ref.escalated) {
          ref.escalated = false;
          ref.escalationsRefused += 1;
          if (r.retryAt !== undefined) {
            ref.escalateAfter = r.retryAt;
            this.deadlines.push(Date.parse(r.retryAt), ref.referralId);
          }
        }
        break;
    }
    // Back in an unaccepted status (a decline after a forward, say): its deadline counts again.
    if (r.k !== "updated" && r.k !== "note" && !ref.escalated && UNACCEPTED.has(ref.status))
      this.deadlines.push(Date.parse(ref.deadline), ref.referralId);
  }

  /**
   * Referrals whose deadline has passed while nobody has accepted them. Costs the number of
   * deadlines that passed since the last call plus those still waiting to be escalated, not
   * the number of referrals held: the hub asks every second.
   */
  overdue(now: Date): HubReferral[] {
    for (const id of this.deadlines.popUntil(now.getTime())) this.due.add(id);
    const out: HubReferral[] = [];
    const t = now.getTime();
    for (const id of this.due) {
      const ref = this.referrals.get(id);
      // Escalated, or taken (accepted, re-routed, withdrawn, closed): whatever puts it back in
      // an unaccepted status queues it again (apply).
      if (ref === undefined || ref.escalated || !UNACCEPTED.has(ref.status)) this.due.delete(id);
      // Received again with a later deadline, the clock stepped back, or a refused escalation
      // waiting to be sent again: it stays due, for later.
      else if (Date.parse(ref.escalateAfter ?? ref.deadline) <= t) out.push(ref);
    }
    return out;
  }

  triage(): HubReferral[] {
    return [...this.referrals.values()].filter((r) => r.status === "triage");
  }
}

/** A binary min-heap of (time, referral id). */
class DeadlineQueue {
  private readonly times: number[] = [];
  private readonly ids: string[] = [];

  push(time: number, id: string): void {
    // An unreadable deadline never passes (schemas make every deadline a date-time).
    if (Number.isNaN(time)) return;
    const { times, ids } = this;
    let i = times.length;
    times.push(time);
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent]! <= time) break;
      times[i] = times[parent]!;
      ids[i] = ids[parent]!;
      i = parent;
    }
    times[i] = time;
    ids[i] = id;
  }

  /** Removes and returns the ids whose time is at or before `t`, earliest first. */
  popUntil(t: number): string[] {
    const out: string[] = [];
    while (this.times.length > 0 && this.times[0]! <= t) out.push(this.pop());
    return out;
  }

  private pop(): string {
    const { times, ids } = this;
    const top = ids[0]!;
    const lastTime = times.pop()!;
    const lastId = ids.pop()!;
    const n = times.length;
    if (n === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && times[right]! < times[left]! ? right : left;
      if (times[child]! >= lastTime) break;
      times[i] = times[child]!;
      ids[i] = ids[child]!;
      i = child;
    }
    times[i] = lastTime;
    ids[i] = lastId;
    return top;
  }
}
