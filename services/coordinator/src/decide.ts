/**
 * The national coordinator's rules, as a pure decision: an `escalated` event becomes an entry in
 * its inbox of escalations; nothing else it receives changes anything. coordinator.ts carries
 * the verdict out.
 */
import { plan, type Plan, type VerifiedEvent } from "@stafett/shared";

export interface Escalation {
  referralId: string;
  eventId: string;
  from: string;
  holder: string;
  deadline: string;
  urgency?: string;
  destination?: { country: string; region?: string; municipality?: string };
  at: string;
}

export type CoordinatorRecord = { k: "escalation"; escalation: Escalation };

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
