import { describe, expect, it } from "vitest";
import type { Derived } from "@stafett/shared";
import { notificationsOf } from "./notifications.js";
import { HubState, type HubRecord } from "./state.js";

const ORG = "se:hub:vast";
const NOWHERE = { offset: 0, length: 0 };
const REF = "44444444-4444-4444-8444-444444444444";
const DEADLINE = "2026-11-29T10:00:00.000Z";

function derive(records: HubRecord[]): string[][] {
  const state = new HubState();
  return records.map((r) => {
    state.apply(r, NOWHERE);
    return notificationsOf(ORG, r, state).map((d: Derived) =>
      "notify" in d
        ? `${d.notify.type}${d.notify.data.change === undefined ? "" : ` ${d.notify.data.change}`}`
        : "watch" in d
          ? `watch ${d.watch.key}`
          : `unwatch ${d.unwatch}`,
    );
  });
}

const received: HubRecord = {
  k: "received",
  referralId: REF,
  openedId: "o1",
  origin: "se:municipality:0180",
  opened: "",
  urgency: "URGENCY_IMMEDIATE",
  deadline: DEADLINE,
  destination: { country: "se", region: "vast" },
  from: "se:municipality:0180",
  at: "2026-11-28T22:00:00.000Z",
};

describe("what the hub tells", () => {
  it("a watch while nobody holds a referral, triage as new work, its escalation, refusals", () => {
    expect(
      derive([
        received,
        { k: "triage", referralId: REF, at: "t1" },
        {
          k: "note",
          referralId: REF,
          type: "rejected",
          eventId: "r1",
          from: "se:municipality:1480",
          at: "t2",
        },
        { k: "escalated", referralId: REF, eventId: "e1", at: "t3" },
      ]),
    ).toEqual([
      [`watch hub:${REF}`],
      ["inbox.new triage"],
      ["referral.rejected"],
      ["referral.escalated", `unwatch hub:${REF}`],
    ]);
  });

  it("a forwarded referral is still watched; an accepted one is not", () => {
    expect(
      derive([
        received,
        { k: "forwarded", referralId: REF, to: "se:municipality:1480", eventId: "f1", at: "t1" },
        { k: "accepted", referralId: REF, by: "se:municipality:1480", eventId: "a1", at: "t2" },
      ]),
    ).toEqual([[`watch hub:${REF}`], [], [`unwatch hub:${REF}`]]);
  });
});
