/**
 * What the national contact point is told about (notifier.ts): a partner country's referral
 * that waits for its decision (`inbox.new`), derived from the record its state applies. A
 * partner link's state (`link.down`, `link.up`) comes from the store and forward instead
 * (liaison.ts).
 */
import { notificationId, type Derived } from "@stafett/shared";
import type { LiaisonRecord } from "./state.js";

export function notificationsOf(org: string, r: LiaisonRecord): Derived[] {
  if (r.k !== "inbound" || r.routedTo !== undefined) return [];
  return [
    {
      notify: {
        id: notificationId(org, "inbox.new", r.openedId),
        type: "inbox.new",
        at: r.at,
        data: {
          org,
          referralId: r.referralId,
          eventId: r.openedId,
          urgency: r.urgency,
          deadline: r.deadline,
          by: r.origin,
          path: "/v1/inbound",
        },
      },
    },
  ];
}
