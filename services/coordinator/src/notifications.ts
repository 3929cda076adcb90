/**
 * What the national coordinator is told about (notifier.ts): every escalation it receives
 * (`referral.escalated`), derived from the record its state applies.
 */
import { notificationId, type Derived, type Urgency } from "@stafett/shared";
import type { Escalation } from "./decide.js";

const URGENCIES: readonly Urgency[] = ["URGENCY_IMMEDIATE", "URGENCY_HIGH", "URGENCY_NORMAL"];

export function notificationsOf(org: string, r: { escalation: Escalation }): Derived[] {
  const e = r.escalation;
  const urgency = URGENCIES.find((u) => u === e.urgency);
  return [
    {
      notify: {
        id: notificationId(org, "referral.escalated", e.eventId),
        type: "referral.escalated",
        at: e.at,
        data: {
          org,
          referralId: e.referralId,
          eventId: e.eventId,
          ...(urgency === undefined ? {} : { urgency }),
          deadline: e.deadline,
          by: e.from,
          to: e.holder,
          path: "/v1/escalations",
        },
      },
    },
  ];
}
