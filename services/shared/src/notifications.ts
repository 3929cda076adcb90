/**
 * What a party tells people about (docs/contract.md, principle 11: urgent work reaches the person
 * on duty). Each service derives notifications from the records its state applies (its
 * `notifications.ts`); the notifier (notifier.ts) stores each once, under a stable id, and
 * delivers it to the organisation's webhooks, its live event stream and, for alerts, by e-mail.
 *
 * A notification carries no personal data: ids, types, urgency, deadline, codes, organisation
 * ids, and the path of the item in the service's own API, from which an authorised reader
 * fetches the rest. A test collects every string of the synthetic children's data and searches
 * every webhook body, stream event and e-mail for them (test/e2e/notifications.test.ts).
 */
import { derivedId } from "./ids.js";
import type { Urgency } from "./types.js";

/**
 * The kinds of notification, as a webhook endpoint subscribes to them (`events`):
 * - `inbox.new`: a referral was handed to this organisation to act on (a municipality's inbox,
 *   a hub's triage, the liaison's inbound referrals waiting for the contact point);
 * - `inbox.changed`: the origin updated, withdrew or closed a referral in the inbox;
 * - `referral.changed`: a timeline change of a referral this organisation sent;
 * - `referral.escalated`: a referral missed its deadline (at the coordinator, the origin, the hub);
 * - `referral.rejected`: one of this organisation's own messages was refused (and quarantined)
 *   by its reader, who answered with a signed `rejected`;
 * - `referral.deadline`: a referral reached a share (75 % by default) of the time to its
 *   deadline and nobody has accepted it;
 * - `link.down`, `link.up`: a partner country's link has been down longer than the threshold,
 *   and is back (the liaison).
 */
export const NOTIFICATION_TYPES = [
  "inbox.new",
  "inbox.changed",
  "referral.changed",
  "referral.escalated",
  "referral.rejected",
  "referral.deadline",
  "link.down",
  "link.up",
] as const;

export type NotificationType = (typeof NOTIFICATION_TYPES)[number];

export const isNotificationType = (t: string): t is NotificationType =>
  (NOTIFICATION_TYPES as readonly string[]).includes(t);

/** What a notification says, beyond its type: only ids, codes, times and organisation ids. */
export interface NotificationData {
  /** The organisation told (this party). */
  org: string;
  referralId?: string;
  /** The event the notification is about (a timeline entry's, an escalation's). */
  eventId?: string;
  urgency?: Urgency;
  deadline?: string;
  /** For `referral.changed` and `inbox.changed`: the timeline entry's type. */
  change?: string;
  /** Who did it (an organisation id). */
  by?: string;
  /** Where the referral went (an organisation id). */
  to?: string;
  /** For `referral.rejected`: the refusal's code and reason (never a value). */
  code?: string;
  reason?: string;
  /** For `referral.deadline`: whose side ("sent", "inbox", "hub"). */
  scope?: string;
  /** For `link.*`: the partner country, and since when the link is down. */
  partner?: string;
  since?: string;
  /** The item in this service's API (a path; the URL is the service's public URL plus it). */
  path: string;
}

/** One notification as stored, delivered and streamed. `id` is stable: receivers drop repeats. */
export interface Notification {
  id: string;
  type: NotificationType;
  /** When what it tells of happened (the record's time), RFC 3339. */
  at: string;
  data: NotificationData;
}

/** The body a webhook receives and an SSE `data:` line carries (Standard Webhooks' shape). */
export interface NotificationPayload {
  type: NotificationType;
  timestamp: string;
  data: Omit<NotificationData, "path"> & { id: string; url: string };
}

/** The payload of `n`, its item's URL made from the service's public base URL. */
export function payloadOf(n: Notification, baseUrl: string): NotificationPayload {
  const { path, ...data } = n.data;
  return {
    type: n.type,
    timestamp: n.at,
    data: { id: n.id, ...data, url: `${baseUrl.replace(/\/+$/, "")}${path}` },
  };
}

/** A notification's id: a name-based UUID of the organisation, its type and what it is about. */
export function notificationId(org: string, type: NotificationType, ...about: string[]): string {
  return derivedId(org, "notification", type, ...about);
}

/**
 * Whether a notification is an alert for the people on duty (by e-mail): a new immediate
 * referral, a referral near its deadline that nobody accepted, an escalation, a message of one's
 * own refused, a partner link down longer than the threshold.
 */
export function isAlert(n: Notification): boolean {
  switch (n.type) {
    case "inbox.new":
      return n.data.urgency === "URGENCY_IMMEDIATE";
    case "referral.deadline":
    case "referral.escalated":
    case "referral.rejected":
    case "link.down":
      return true;
    default:
      return false;
  }
}

/**
 * A referral to watch: when `share` of the time from `start` to `deadline` has passed and the
 * watch was not ended, `notification` is stored (once: its id is fixed).
 */
export interface DeadlineNotice {
  key: string;
  start: string;
  deadline: string;
  notification: Notification;
}

/** What a service derives from one applied record. */
export type Derived =
  | { notify: Notification }
  | { watch: DeadlineNotice }
  /** The referral was taken (accepted, withdrawn, closed): its watch ends. */
  | { unwatch: string };

/** The `referral.deadline` notification a watch stores, and the watch. */
export function deadlineWatch(
  org: string,
  scope: "sent" | "inbox" | "hub",
  ref: { referralId: string; urgency?: Urgency; deadline: string; start: string },
  path: string,
): Derived {
  return {
    watch: {
      key: `${scope}:${ref.referralId}`,
      start: ref.start,
      deadline: ref.deadline,
      notification: {
        id: notificationId(org, "referral.deadline", scope, ref.referralId, ref.deadline),
        type: "referral.deadline",
        // Set when the watch fires.
        at: ref.start,
        data: {
          org,
          referralId: ref.referralId,
          ...(ref.urgency === undefined ? {} : { urgency: ref.urgency }),
          deadline: ref.deadline,
          scope,
          path,
        },
      },
    },
  };
}
