/**
 * What the hub tells the regional coordinator's officers and systems about (notifier.ts),
 * derived from each record its state applies, after it is applied: a referral waiting for an
 * officer in triage (`inbox.new`), an escalation it made (`referral.escalated`), a refusal of
 * one of its messages (`referral.rejected`), and a deadline watch on every referral that nobody
 * has taken responsibility for yet.
 */
import {
  deadlineWatch,
  notificationId,
  type Derived,
  type Notification,
  type NotificationType,
} from "@stafett/shared";
import { awaitsResponsibility, type HubRecord, type HubState } from "./state.js";

export function notificationsOf(org: string, r: HubRecord, state: HubState): Derived[] {
  const ref = state.referrals.get(r.referralId);
  if (ref === undefined) return [];
  const path = `/v1/referrals/${r.referralId}`;
  const note = (
    type: NotificationType,
    about: string,
    data: Omit<Notification["data"], "org" | "referralId" | "urgency" | "deadline" | "path">,
  ): Derived => ({
    notify: {
      id: notificationId(org, type, about),
      type,
      at: r.at,
      data: {
        org,
        referralId: r.referralId,
        urgency: ref.urgency,
        deadline: ref.deadline,
        ...data,
        path,
      },
    },
  });
  const out: Derived[] = [];
  switch (r.k) {
    case "received":
      out.push(
        deadlineWatch(
          org,
          "hub",
          {
            referralId: r.referralId,
            urgency: r.urgency,
            deadline: r.deadline,
            start: r.at,
          },
          path,
        ),
      );
      break;
    case "triage":
      out.push(note("inbox.new", `triage:${r.referralId}:${r.at}`, { change: "triage" }));
      break;
    case "escalated":
      out.push(
        note("referral.escalated", r.eventId, {
          eventId: r.eventId,
          ...(ref.holder === undefined ? {} : { to: ref.holder }),
        }),
      );
      break;
    case "note":
      if (r.type === "rejected")
        out.push(note("referral.rejected", r.eventId, { eventId: r.eventId, by: r.from }));
      break;
    default:
      break;
  }
  if (ref.escalated || !awaitsResponsibility(ref)) out.push({ unwatch: `hub:${r.referralId}` });
  return out;
}
