import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { hubReceived } from "../../../test/support/decisions.js";
import { HubState, type HubRecord, type HubReferral } from "./state.js";

/** Records' place in a journal; these tests never read them back. */
const NOWHERE = { offset: 0, length: 0 };
const T0 = Date.parse("2026-11-29T00:00:00.000Z");
const iso = (ms: number): string => new Date(ms).toISOString();

const received = (referralId: string, deadlineMs: number): HubRecord =>
  hubReceived(referralId, iso(deadlineMs), iso(T0));

/** What `overdue` answered before it had an index: every referral, scanned. */
function scanned(state: HubState, now: number): string[] {
  return [...state.referrals.values()]
    .filter(
      (r) =>
        !r.escalated &&
        (["received", "forwarded", "triage", "declined"].includes(r.status) ||
          (r.status === "rerouted" && r.handOn?.receipted !== true)) &&
        Date.parse(r.deadline) <= now,
    )
    .map((r) => r.referralId)
    .sort();
}

const ids = (refs: HubReferral[]): string[] => refs.map((r) => r.referralId).sort();

describe("HubState.overdue", () => {
  it("names a referral once its deadline passes, until it is escalated", () => {
    const state = new HubState();
    state.apply(received("a", T0 + 1_000), NOWHERE);
    state.apply(received("b", T0 + 5_000), NOWHERE);
    expect(ids(state.overdue(new Date(T0)))).toEqual([]);
    expect(ids(state.overdue(new Date(T0 + 1_000)))).toEqual(["a"]);
    // Not escalated yet (the publish failed, say): named again on the next tick.
    expect(ids(state.overdue(new Date(T0 + 2_000)))).toEqual(["a"]);
    state.apply({ k: "escalated", referralId: "a", eventId: "e1", at: iso(T0) }, NOWHERE);
    expect(ids(state.overdue(new Date(T0 + 6_000)))).toEqual(["b"]);
  });

  it("still names a referral whose deadline passed when the clock steps back and on again", () => {
    const state = new HubState();
    state.apply(received("a", T0 + 1_000), NOWHERE);
    expect(ids(state.overdue(new Date(T0 + 1_000)))).toEqual(["a"]);
    // An NTP correction, say, while the escalation had not gone out.
    expect(ids(state.overdue(new Date(T0)))).toEqual([]);
    expect(ids(state.overdue(new Date(T0 + 2_000)))).toEqual(["a"]);
  });

  it("forgets an accepted referral, and counts its deadline again when it is declined after all", () => {
    const state = new HubState();
    state.apply(received("a", T0 + 1_000), NOWHERE);
    state.apply(
      { k: "accepted", referralId: "a", by: "se:municipality:1480", eventId: "e1", at: iso(T0) },
      NOWHERE,
    );
    expect(ids(state.overdue(new Date(T0 + 2_000)))).toEqual([]);
    state.apply(
      {
        k: "declined",
        referralId: "a",
        by: "se:municipality:1480",
        eventId: "e2",
        reason: "DECLINE_REASON_NOT_COMPETENT",
        at: iso(T0),
      },
      NOWHERE,
    );
    expect(ids(state.overdue(new Date(T0 + 3_000)))).toEqual(["a"]);
  });

  it("answers what a scan of every referral answers, for any history", () => {
    const step = fc.oneof(
      fc.record({
        op: fc.constant("received" as const),
        id: fc.integer({ min: 0, max: 7 }),
        deadline: fc.integer({ min: 0, max: 20 }),
      }),
      fc.record({
        op: fc.constantFrom(
          "forwarded",
          "rerouted",
          "triage",
          "accepted",
          "declined",
          "withdrawn",
          "closed",
          "updated",
          "escalated",
        ),
        id: fc.integer({ min: 0, max: 7 }),
      }),
      // Time mostly moves on, and sometimes steps back (an NTP correction).
      fc.record({ op: fc.constant("tick" as const), advance: fc.integer({ min: -3, max: 6 }) }),
    );
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const state = new HubState();
        let now = T0;
        for (const s of steps) {
          if (s.op === "tick") {
            now += s.advance * 1_000;
            expect(ids(state.overdue(new Date(now)))).toEqual(scanned(state, now));
            continue;
          }
          const referralId = `r${s.id}`;
          const at = iso(now);
          const by = "se:municipality:1480";
          let record: HubRecord;
          switch (s.op) {
            case "received":
              record = received(referralId, T0 + s.deadline * 1_000);
              break;
            case "forwarded":
            case "rerouted":
              record = { k: s.op, referralId, to: by, eventId: "e", at };
              break;
            case "triage":
              record = { k: "triage", referralId, at };
              break;
            case "accepted":
              record = { k: "accepted", referralId, by, eventId: "e", at };
              break;
            case "declined":
              record = { k: "declined", referralId, by, eventId: "e", reason: "x", at };
              break;
            default:
              record = { k: s.op, referralId, eventId: "e", at };
          }
          state.apply(record, NOWHERE);
        }
        expect(ids(state.overdue(new Date(now)))).toEqual(scanned(state, now));
      }),
      { numRuns: 500 },
    );
  });
});
