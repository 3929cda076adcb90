import { describe, expect, it } from "vitest";
import type { Derived } from "@stafett/shared";
import { notificationsOf } from "./notifications.js";
import { GatewayState, type GatewayRecord } from "./state.js";

const ORG = "se:municipality:0180";
const NOWHERE = { offset: 0, length: 0 };
const REFERRAL = "9f1c2a4e-0b7d-4c1e-9a53-2f8e6d4b1c70";
const DEADLINE = "2026-11-29T10:00:00.000Z";

/** Applies each record, then derives from it, as the gateway does; returns what each led to. */
function derive(records: GatewayRecord[]): string[][] {
  const state = new GatewayState();
  return records.map((r) => {
    state.apply(r, NOWHERE);
    return notificationsOf(ORG, r, state).map(describeDerived);
  });
}

function describeDerived(d: Derived): string {
  if ("notify" in d)
    return [d.notify.type, d.notify.data.change, d.notify.data.code, d.notify.data.path]
      .filter((x) => x !== undefined)
      .join(" ");
  if ("watch" in d) return `watch ${d.watch.key} ${d.watch.start}..${d.watch.deadline}`;
  return `unwatch ${d.unwatch}`;
}

const sent: GatewayRecord = {
  k: "sent",
  referralId: REFERRAL,
  openedId: "0d3c8b9e-5f2a-4e61-8c47-1a9b7e2d3f50",
  hub: "se:hub:vast",
  destination: { country: "se", municipality: "1480" },
  urgency: "URGENCY_IMMEDIATE",
  reason: "REASON_CATEGORY_MISSING",
  deadline: DEADLINE,
  at: "2026-11-28T22:00:00.000Z",
};
const entry = (type: string, n: number, extra: Record<string, string> = {}): GatewayRecord =>
  ({
    k: "timeline",
    referralId: REFERRAL,
    entry: {
      type,
      at: `2026-11-28T22:00:0${n}.000Z`,
      eventId: `e${n}`,
      by: "se:hub:vast",
      ...extra,
    },
  }) as GatewayRecord;
const PATH = `/v1/referrals/${REFERRAL}`;

describe("what the gateway tells of a referral it sent", () => {
  it("every timeline change; an escalation and a refusal also on their own; the watch until taken", () => {
    expect(
      derive([
        sent,
        { k: "published", referralId: REFERRAL },
        entry("received", 1),
        entry("rejected", 2, { code: "ERR_STALE", reason: "too_old" }),
        entry("escalated", 3),
        entry("accepted", 4, { by: "se:municipality:1480" }),
      ]),
    ).toEqual([
      [],
      [
        `referral.changed opened ${PATH}`,
        `watch sent:${REFERRAL} 2026-11-28T22:00:00.000Z..${DEADLINE}`,
      ],
      [`referral.changed received ${PATH}`],
      [`referral.changed rejected ERR_STALE ${PATH}`, `referral.rejected ERR_STALE ${PATH}`],
      [`referral.changed escalated ${PATH}`, `referral.escalated ${PATH}`],
      [`referral.changed accepted ${PATH}`, `unwatch sent:${REFERRAL}`],
    ]);
  });

  it("nothing before the publish is confirmed, and no watch when an answer came first", () => {
    expect(
      derive([sent, entry("accepted", 1), { k: "published", referralId: REFERRAL }])[2],
    ).toEqual([`referral.changed opened ${PATH}`]);
  });
});

describe("what the gateway tells of its inbox", () => {
  const inbox: GatewayRecord = {
    k: "inbox",
    referralId: REFERRAL,
    forwardedId: "f1",
    openedId: "o1",
    origin: "se:municipality:1280",
    via: "se:hub:vast",
    urgency: "URGENCY_IMMEDIATE",
    reason: "REASON_CATEGORY_MISSING",
    deadline: DEADLINE,
    bytes: "",
    at: "2026-11-28T22:00:01.000Z",
  };
  const IN = `/v1/inbox/${REFERRAL}`;

  it("a new item and its watch; the origin's changes; an answer ends the watch", () => {
    expect(
      derive([
        inbox,
        { k: "inbox-event", referralId: REFERRAL, type: "updated", eventId: "u1", at: "x" },
        { k: "answered", referralId: REFERRAL, decision: "accepted", eventId: "a1", at: "y" },
      ]),
    ).toEqual([
      [`inbox.new ${IN}`, `watch inbox:${REFERRAL} 2026-11-28T22:00:01.000Z..${DEADLINE}`],
      [`inbox.changed updated ${IN}`],
      [`unwatch inbox:${REFERRAL}`],
    ]);
  });

  it("a withdrawal ends the watch", () => {
    expect(
      derive([
        inbox,
        { k: "inbox-event", referralId: REFERRAL, type: "withdrawn", eventId: "w1", at: "x" },
      ])[1],
    ).toEqual([`inbox.changed withdrawn ${IN}`, `unwatch inbox:${REFERRAL}`]);
  });
});
