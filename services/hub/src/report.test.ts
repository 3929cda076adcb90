import { describe, expect, it } from "vitest";
import type { ReportedJson, Urgency } from "@stafett/shared";
import { hubReceived } from "../../../test/support/decisions.js";
import { regionReport, reportDue } from "./report.js";
import { HubState, type HubRecord } from "./state.js";

const NOWHERE = { offset: 0, length: 0 };
const T0 = Date.parse("2026-11-29T12:00:00.000Z");
const iso = (ms: number): string => new Date(ms).toISOString();
const MINUTE = 60_000;

const received = (referralId: string, urgency: Urgency, deadlineMs: number): HubRecord =>
  hubReceived(referralId, iso(deadlineMs), iso(T0 - MINUTE), urgency);

/** A region with a referral in each state a hub can hold one in. */
function region(): HubState {
  const state = new HubState();
  const apply = (r: HubRecord) => state.apply(r, NOWHERE);
  const at = iso(T0 - MINUTE);
  // Held for triage, past its deadline and escalated.
  apply(received("ref-triage", "URGENCY_IMMEDIATE", T0 - 10 * MINUTE));
  apply({ k: "triage", referralId: "ref-triage", at });
  apply({ k: "escalated", referralId: "ref-triage", eventId: "e1", at });
  // Forwarded, awaiting Göteborg's answer: the nearest deadline still ahead.
  apply(received("ref-forwarded", "URGENCY_HIGH", T0 + 5 * MINUTE));
  apply({
    k: "forwarded",
    referralId: "ref-forwarded",
    to: "se:municipality:1480",
    eventId: "f1",
    at,
  });
  // Declined: back with the hub, to be routed again; past its deadline, not escalated yet.
  apply(received("ref-declined", "URGENCY_NORMAL", T0 - MINUTE));
  apply({
    k: "forwarded",
    referralId: "ref-declined",
    to: "se:municipality:1480",
    eventId: "f2",
    at,
  });
  apply({
    k: "declined",
    referralId: "ref-declined",
    by: "se:municipality:1480",
    eventId: "d1",
    reason: "DECLINE_REASON_WRONG_MUNICIPALITY",
    at,
  });
  // Re-routed to another hub, not yet receipted.
  apply(received("ref-rerouted", "URGENCY_NORMAL", T0 + 60 * MINUTE));
  apply({ k: "rerouted", referralId: "ref-rerouted", to: "se:hub:syd", eventId: "r1", at });
  // Not open: accepted; withdrawn; re-routed and receipted by the next hub.
  apply(received("ref-accepted", "URGENCY_IMMEDIATE", T0 - 20 * MINUTE));
  apply({
    k: "forwarded",
    referralId: "ref-accepted",
    to: "se:municipality:1480",
    eventId: "f3",
    at,
  });
  apply({
    k: "accepted",
    referralId: "ref-accepted",
    by: "se:municipality:1480",
    eventId: "a1",
    at,
  });
  apply(received("ref-withdrawn", "URGENCY_HIGH", T0 - 20 * MINUTE));
  apply({ k: "withdrawn", referralId: "ref-withdrawn", eventId: "w1", at });
  apply(received("ref-handed", "URGENCY_HIGH", T0 - 20 * MINUTE));
  apply({ k: "rerouted", referralId: "ref-handed", to: "se:hub:syd", eventId: "r2", at });
  apply({
    k: "receipted",
    referralId: "ref-handed",
    by: "se:hub:syd",
    eventId: "rc",
    of: "r2",
    at,
  });
  return state;
}

describe("regionReport: the region's open referrals in aggregate", () => {
  it("counts the open ones by where they stand and by urgency, overdue, escalated, nearest deadline", () => {
    expect(regionReport("vast", region().referrals.values(), new Date(T0))).toEqual({
      region: "vast",
      triage: 2,
      forwarded: 1,
      rerouted: 1,
      immediate: 1,
      high: 1,
      normal: 2,
      overdue: 2,
      escalated: 1,
      nearestDeadline: iso(T0 - 10 * MINUTE),
    });
  });

  it("drops a referral once its municipality accepts it", () => {
    const state = region();
    state.apply(
      {
        k: "accepted",
        referralId: "ref-forwarded",
        by: "se:municipality:1480",
        eventId: "a2",
        at: iso(T0),
      },
      NOWHERE,
    );
    const report = regionReport("vast", state.referrals.values(), new Date(T0));
    expect(report).toMatchObject({ triage: 2, rerouted: 1, normal: 2 });
    expect([report.forwarded, report.high]).toEqual([undefined, undefined]);
  });

  it("counts a deadline as overdue from the moment it passes", () => {
    const state = region();
    const justBefore = regionReport(
      "vast",
      state.referrals.values(),
      new Date(T0 + 5 * MINUTE - 1),
    );
    const at = regionReport("vast", state.referrals.values(), new Date(T0 + 5 * MINUTE));
    expect([justBefore.overdue, at.overdue]).toEqual([2, 3]);
  });

  it("an empty region is the region alone: zero counts are absent, no deadline", () => {
    expect(regionReport("nord", new HubState().referrals.values(), new Date(T0))).toEqual({
      region: "nord",
    });
  });

  it("carries nothing of a referral: no id, no municipality, no origin", () => {
    const text = JSON.stringify(regionReport("vast", region().referrals.values(), new Date(T0)));
    for (const leak of ["ref-", "opened-", "1480", "0180", "se:", "f1", "e1"])
      expect(text.includes(leak), leak).toBe(false);
  });
});

describe("reportDue: a change at most once per gap, a heartbeat every minute", () => {
  const A: ReportedJson = { region: "vast", triage: 1 };
  const B: ReportedJson = { region: "vast", triage: 2 };
  const timing = { everyMs: 60_000, gapMs: 2_000 };
  const cases: [string, Parameters<typeof reportDue>[0], ReportedJson, number, boolean][] = [
    ["the first report, at once", undefined, A, 0, true],
    ["a change within the gap waits", { report: A, at: 0 }, B, 1_999, false],
    ["a change after the gap goes", { report: A, at: 0 }, B, 2_000, true],
    ["no change within the minute waits", { report: A, at: 0 }, A, 59_999, false],
    ["no change after a minute: the heartbeat", { report: A, at: 0 }, A, 60_000, true],
    ["a count gone to zero is a change", { report: B, at: 0 }, { region: "vast" }, 2_000, true],
  ];
  it.each(cases)("%s", (_, last, current, now, due) => {
    expect(reportDue(last, current, now, timing)).toBe(due);
  });
});
