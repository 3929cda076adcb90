/**
 * The national coordinator's rules, as a pure decision: an `escalated` event becomes an entry in
 * its inbox of escalations; nothing else it receives changes anything. Its officers then handle
 * each escalation: acknowledge it, assign it to a named officer, resolve it with a note
 * (`decideHandling`), each step journaled, so it survives a restart. coordinator.ts carries the
 * verdicts out; `evolve` applies a journal record.
 */
import {
  plan,
  refusal,
  StafettError,
  type Plan,
  type Verdict,
  type VerifiedEvent,
} from "@stafett/shared";

export interface Escalation {
  referralId: string;
  eventId: string;
  from: string;
  holder: string;
  deadline: string;
  urgency?: string;
  destination?: { country: string; region?: string; municipality?: string };
  at: string;
  /** Who took it up, and when. */
  acknowledged?: { by: string; name?: string; at: string };
  /** The officer it is assigned to (a name as the coordinator's officers know each other). */
  assignee?: string;
  /** How it ended: who closed it, when, and their note. */
  resolved?: { by: string; name?: string; at: string; note: string };
}

/** An officer's step with an escalation. */
export type Handling =
  | { step: "acknowledged" }
  | { step: "assigned"; officer: string }
  | { step: "resolved"; note: string };

/** The officer taking the step (the token's `sub` and `name`). */
export interface Officer {
  subject: string;
  name?: string;
}

export type CoordinatorRecord =
  | { k: "escalation"; escalation: Escalation }
  | ({ k: "handled"; eventId: string; by: string; name?: string; at: string } & Handling);

export function decide(v: VerifiedEvent, now: Date): Plan<CoordinatorRecord> {
  const esc = v.event.escalated;
  if (v.event.type !== "escalated" || esc === undefined) return plan();
  return plan([
    {
      k: "escalation",
      escalation: {
        referralId: v.event.referralId,
        eventId: v.event.id,
        from: v.issuer.id,
        holder: esc.holder,
        deadline: esc.deadline,
        ...(esc.urgency === undefined ? {} : { urgency: esc.urgency }),
        ...(esc.destination === undefined ? {} : { destination: esc.destination }),
        at: now.toISOString(),
      },
    },
  ]);
}

/**
 * An officer's step with escalation `eventId`: acknowledged first, then assigned (again, to hand
 * it on) until it is resolved; nothing after that. A step out of order is refused with
 * ERR_NOT_AUTHORISED and a reason naming the rule.
 */
export function decideHandling(
  escalation: Escalation | undefined,
  eventId: string,
  handling: Handling,
  by: Officer,
  now: Date,
): Verdict<CoordinatorRecord> {
  const refuse = (reason: string, message: string) =>
    refusal(new StafettError("ERR_NOT_AUTHORISED", message, { reason, field: "eventId" }));
  if (escalation === undefined)
    return refusal(
      new StafettError("ERR_NOT_FOUND", "no such escalation", {
        reason: "unknown",
        field: "eventId",
      }),
    );
  if (escalation.resolved !== undefined) return refuse("resolved", "the escalation is resolved");
  if (handling.step === "acknowledged" && escalation.acknowledged !== undefined)
    return refuse("acknowledged", "the escalation is already acknowledged");
  if (handling.step !== "acknowledged" && escalation.acknowledged === undefined)
    return refuse("not_acknowledged", "acknowledge the escalation first");
  return plan([
    {
      k: "handled",
      eventId,
      by: by.subject,
      ...(by.name === undefined ? {} : { name: by.name }),
      at: now.toISOString(),
      ...handling,
    },
  ]);
}

/** The escalations after one journal record (on replay and after each append). */
export function evolve(escalations: Map<string, Escalation>, r: CoordinatorRecord): void {
  // Journals written before handling existed hold escalations without `k`.
  if ("escalation" in r) {
    escalations.set(r.escalation.eventId, r.escalation);
    return;
  }
  const e = escalations.get(r.eventId);
  if (e === undefined) return;
  const who = { by: r.by, ...(r.name === undefined ? {} : { name: r.name }), at: r.at };
  if (r.step === "acknowledged") escalations.set(r.eventId, { ...e, acknowledged: who });
  else if (r.step === "assigned") escalations.set(r.eventId, { ...e, assignee: r.officer });
  else escalations.set(r.eventId, { ...e, resolved: { ...who, note: r.note } });
}
