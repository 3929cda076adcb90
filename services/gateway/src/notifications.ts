/**
 * What the gateway tells its municipality's people and case system about (notifier.ts), derived
 * from each record its state applies, after it is applied:
 * - every timeline change of a referral it sent (`referral.changed`), an escalation of one
 *   (`referral.escalated`), and a refusal of one of its messages about it (`referral.rejected`:
 *   at the origin a signed `rejected` is how it learns its message was quarantined);
 * - a referral handed to it (`inbox.new`) and the origin's changes to it (`inbox.changed`);
 * - a deadline watch on each side: a referral it sent that nobody accepted, and an inbox item
 *   it has not answered, alert at the configured share of the time to the deadline.
 */
import {
  deadlineWatch,
  notificationId,
  type Derived,
  type Notification,
  type NotificationType,
} from "@stafett/shared";
import type { GatewayRecord, GatewayState } from "./state.js";

/** Timeline entries after which nobody needs to accept the referral any more. */
const TAKEN = new Set(["accepted", "withdrawn", "closed"]);

export function notificationsOf(org: string, r: GatewayRecord, state: GatewayState): Derived[] {
  const note = (
    type: NotificationType,
    about: string,
    at: string,
    data: Omit<Notification["data"], "org">,
  ): Derived => ({
    notify: { id: notificationId(org, type, about), type, at, data: { org, ...data } },
  });
  switch (r.k) {
    case "published": {
      // Told once the stream has it: a referral whose publish failed (503) has not left.
      const ref = state.sent.get(r.referralId);
      const opened = ref?.timeline[0];
      if (ref === undefined || opened === undefined) return [];
      const path = `/v1/referrals/${r.referralId}`;
      const changed = note("referral.changed", ref.openedId, opened.at, {
        referralId: r.referralId,
        eventId: ref.openedId,
        change: "opened",
        to: ref.hub,
        urgency: ref.urgency,
        deadline: ref.deadline,
        path,
      });
      // An answer can be journaled before this record (written after the publish returned).
      if (TAKEN.has(ref.status)) return [changed];
      return [
        changed,
        deadlineWatch(
          org,
          "sent",
          {
            referralId: r.referralId,
            urgency: ref.urgency,
            deadline: ref.deadline,
            start: opened.at,
          },
          path,
        ),
      ];
    }
    case "timeline": {
      const ref = state.sent.get(r.referralId);
      if (ref === undefined) return [];
      const e = r.entry;
      const path = `/v1/referrals/${r.referralId}`;
      const base = {
        referralId: r.referralId,
        eventId: e.eventId,
        urgency: ref.urgency,
        deadline: ref.deadline,
        by: e.by,
        ...(e.to === undefined ? {} : { to: e.to }),
        path,
      };
      const out: Derived[] = [
        note("referral.changed", e.eventId, e.at, {
          ...base,
          change: e.type,
          ...(e.code === undefined ? {} : { code: e.code }),
          ...(e.reason === undefined ? {} : { reason: e.reason }),
        }),
      ];
      if (e.type === "escalated") out.push(note("referral.escalated", e.eventId, e.at, base));
      if (e.type === "rejected")
        out.push(
          note("referral.rejected", e.eventId, e.at, {
            ...base,
            ...(e.code === undefined ? {} : { code: e.code }),
            ...(e.reason === undefined ? {} : { reason: e.reason }),
          }),
        );
      if (TAKEN.has(e.type)) out.push({ unwatch: `sent:${r.referralId}` });
      return out;
    }
    case "inbox": {
      const path = `/v1/inbox/${r.referralId}`;
      return [
        note("inbox.new", r.forwardedId, r.at, {
          referralId: r.referralId,
          eventId: r.forwardedId,
          urgency: r.urgency,
          deadline: r.deadline,
          by: r.via,
          path,
        }),
        deadlineWatch(
          org,
          "inbox",
          { referralId: r.referralId, urgency: r.urgency, deadline: r.deadline, start: r.at },
          path,
        ),
      ];
    }
    case "inbox-event": {
      const item = state.inbox.get(r.referralId);
      if (item === undefined) return [];
      return [
        note("inbox.changed", r.eventId, r.at, {
          referralId: r.referralId,
          eventId: r.eventId,
          change: r.type,
          urgency: item.urgency,
          deadline: item.deadline,
          by: item.origin,
          path: `/v1/inbox/${r.referralId}`,
        }),
        ...(r.type === "updated" ? [] : [{ unwatch: `inbox:${r.referralId}` }]),
      ];
    }
    case "answered":
      return [{ unwatch: `inbox:${r.referralId}` }];
    case "sent":
      return [];
  }
}
