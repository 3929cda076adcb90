/**
 * The hub's own state, rebuilt from its journal: every referral addressed into its region, who
 * holds it, and its deadline. The bytes it received (the personal part in them stays sealed),
 * which it may forward later, stay on disk in its journal: memory holds only where they are.
 * Nothing in clear about the child is kept.
 */
import {
  DeadlineWatch,
  type DestinationJson,
  type Holdings,
  type JournalRef,
  type Urgency,
} from "@stafett/shared";

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
  /** The next hub's (or the municipality's) receipt of the hand-on: this hub's part is done. */
  | { k: "receipted"; referralId: string; by: string; eventId: string; of: string; at: string }
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
  /** Who handed it to this hub: its origin, or the hub that re-routed it here. */
  from: string;
  /** Where its `received` record, with the opened bytes, is in the journal. */
  stored: JournalRef;
  urgency: Urgency;
  deadline: string;
  destination: DestinationJson;
  status: HubStatus;
  holder?: string;
  /** The last hand-on (forward or re-route): to whom, its event id, and whether it was receipted. */
  handOn?: { to: string; eventId: string; receipted: boolean };
  escalated: boolean;
  /** Escalations the coordinator refused so far (each next one has its own event id). */
  escalationsRefused: number;
  /** After a refused escalation: when it is escalated again (instead of at its deadline). */
  escalateAfter?: string;
  /** When its handling ended here (closed, withdrawn, or handed on to a hub that receipted it). */
  endedAt?: string;
  /** Its personal part was erased: the opened bytes are gone from the journal. */
  erased?: true;
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

/**
 * Whether nobody has taken responsibility for the referral yet. A re-routed one counts until the
 * next hub's receipt: a hand-on the next hub refuses (a revoked key, a clock off) or never
 * receives must still escalate here.
 */
export function awaitsResponsibility(ref: HubReferral): boolean {
  return (
    UNACCEPTED.has(ref.status) || (ref.status === "rerouted" && ref.handOn?.receipted !== true)
  );
}

export class HubState implements Holdings<HubRecord> {
  readonly referrals = new Map<string, HubReferral>();
  /** The deadlines of referrals nobody has accepted yet. */
  private deadlines = new DeadlineWatch();

  apply(r: HubRecord, at: JournalRef): void {
    if (r.k === "received") {
      this.referrals.set(r.referralId, {
        referralId: r.referralId,
        openedId: r.openedId,
        origin: r.origin,
        from: r.from,
        stored: at,
        urgency: r.urgency,
        deadline: r.deadline,
        destination: r.destination,
        status: "received",
        escalated: false,
        escalationsRefused: 0,
        history: [{ type: "received", at: r.at, by: r.from, eventId: r.openedId }],
      });
      this.deadlines.watch(r.deadline, r.referralId);
      return;
    }
    const ref = this.referrals.get(r.referralId);
    if (ref === undefined) return;
    switch (r.k) {
      case "forwarded":
        ref.status = "forwarded";
        ref.holder = r.to;
        ref.handOn = { to: r.to, eventId: r.eventId, receipted: false };
        ref.history.push({ type: "forwarded", at: r.at, to: r.to, eventId: r.eventId });
        break;
      case "rerouted":
        ref.status = "rerouted";
        delete ref.holder;
        ref.handOn = { to: r.to, eventId: r.eventId, receipted: false };
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
        ref.endedAt ??= r.at;
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
      case "receipted":
        if (ref.handOn?.eventId === r.of) ref.handOn.receipted = true;
        // Re-routed to another hub, which has it now: this hub's part is done.
        if (ref.status === "rerouted" && ref.handOn?.receipted === true) ref.endedAt ??= r.at;
        ref.history.push({ type: "receipted", at: r.at, by: r.by, eventId: r.eventId });
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
            this.deadlines.watch(r.retryAt, ref.referralId);
          }
        }
        break;
    }
    // Back in an unaccepted status (a decline after a forward, say): its deadline counts again.
    if (r.k !== "updated" && r.k !== "note" && !ref.escalated && awaitsResponsibility(ref))
      this.deadlines.watch(ref.deadline, ref.referralId);
  }

  /**
   * Referrals whose deadline has passed while nobody has accepted them. Costs the number of
   * deadlines that passed since the last call plus those still waiting to be escalated, not
   * the number of referrals held: the hub asks every second.
   */
  overdue(now: Date): HubReferral[] {
    return this.deadlines
      .overdue(now, (id) => {
        const ref = this.referrals.get(id);
        // Escalated, or taken (accepted, re-routed, withdrawn, closed): whatever puts it back in
        // an unaccepted status queues it again (apply).
        // A refused escalation waits until it is sent again.
        return ref === undefined || ref.escalated || !awaitsResponsibility(ref)
          ? undefined
          : (ref.escalateAfter ?? ref.deadline);
      })
      .flatMap((id) => this.referrals.get(id) ?? []);
  }

  referralOf(record: HubRecord): string {
    return record.referralId;
  }

  /** The received record carries the opened bytes (the sealed personal part) and a relay's JWE. */
  strip(record: HubRecord): HubRecord {
    if (record.k !== "received") return record;
    const { sealed: _erased, ...rest } = record;
    return { ...rest, opened: "" };
  }

  *ended(): Iterable<{ referralId: string; at: string }> {
    for (const r of this.referrals.values())
      if (r.endedAt !== undefined) yield { referralId: r.referralId, at: r.endedAt };
  }

  holds(referralId: string): boolean {
    return this.referrals.has(referralId);
  }

  erase(referralId: string): void {
    const ref = this.referrals.get(referralId);
    if (ref !== undefined) ref.erased = true;
  }

  /** Its deadline entry, if any, goes when it passes (nothing pending any more). */
  forget(referralId: string): void {
    this.referrals.delete(referralId);
  }

  reset(): void {
    this.referrals.clear();
    this.deadlines = new DeadlineWatch();
  }

  triage(): HubReferral[] {
    return [...this.referrals.values()].filter((r) => r.status === "triage");
  }
}
