/** What the liaison's state does for retention (Holdings): when handling ends, what is stripped, erased, forgotten. */
import { describe, expect, it } from "vitest";
import { LiaisonState, type LiaisonRecord } from "./state.js";

const AT = "2026-01-01T00:00:00.000Z";
const LATER = "2026-01-02T00:00:00.000Z";

function inbound(referralId: string, routedTo?: string): LiaisonRecord {
  return {
    k: "inbound",
    referralId,
    openedId: `${referralId}-opened`,
    origin: "no:liaison",
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_UNACCOMPANIED_MINOR",
    deadline: "2026-01-03T00:00:00.000Z",
    opened: "c2VhbGVk",
    ...(routedTo === undefined ? {} : { routedTo }),
    at: AT,
  };
}

function out(referralId: string, type: string, from: string, at = AT): LiaisonRecord {
  return { k: "out", eventId: `${referralId}-${type}`, referralId, type, partner: "no", from, at };
}

const ended = (s: LiaisonState) => new Map([...s.ended()].map((e) => [e.referralId, e.at]));

describe("LiaisonState as Holdings", () => {
  it("ends a partner's referral when answered, taken by its hub, withdrawn or closed; not while pending or routed", () => {
    const s = new LiaisonState();
    for (const id of ["a", "b", "c", "d"]) s.apply(inbound(id));
    s.apply(inbound("e", "se:hub:vast"));
    s.apply({ k: "answered", referralId: "a", decision: "accepted", eventId: "x", at: LATER });
    s.apply({ k: "follow-in", referralId: "b", type: "withdrawn", eventId: "y", at: LATER });
    s.apply({ k: "follow-in", referralId: "c", type: "updated", eventId: "z", at: LATER });
    s.apply({ k: "taken", referralId: "e", by: "se:hub:vast", eventId: "t", at: LATER });
    expect(ended(s)).toEqual(
      new Map([
        ["a", LATER],
        ["b", LATER],
        ["e", LATER],
      ]),
    );
  });

  it("ends a referral sent abroad when it is withdrawn or closed, whoever sent it", () => {
    const s = new LiaisonState();
    s.apply(out("own", "opened", "se:liaison"));
    s.apply(out("dom", "opened", "se:municipality:1480"));
    s.apply(out("open", "opened", "se:municipality:1480"));
    s.apply(out("own", "closed", "se:liaison", LATER));
    s.apply(out("dom", "withdrawn", "se:municipality:1480", LATER));
    expect(ended(s)).toEqual(
      new Map([
        ["own", LATER],
        ["dom", LATER],
      ]),
    );
    expect(s.sent.get("own")?.endedAt).toBe(LATER);
    for (const id of ["own", "dom", "open"]) expect(s.holds(id)).toBe(true);
    expect(s.holds("none")).toBe(false);
  });

  it("strips the signed bytes of a partner's referral and of an answer, and nothing else", () => {
    const s = new LiaisonState();
    expect(s.strip(inbound("a"))).toMatchObject({ k: "inbound", opened: "" });
    const answer: LiaisonRecord = {
      k: "answer-in",
      referralId: "own",
      eventId: "e",
      type: "accepted",
      by: "no:municipality:0301",
      bytes: "Ynl0ZXM=",
      at: AT,
    };
    expect(s.strip(answer)).toEqual({ ...answer, bytes: "" });
    const taken: LiaisonRecord = { k: "taken", referralId: "a", by: "h", eventId: "t", at: AT };
    expect(s.strip(taken)).toBe(taken);
  });

  it("erases the bytes from memory, keeps the metadata; forgets all of it; resets", () => {
    const s = new LiaisonState();
    s.apply(inbound("a"));
    s.apply(out("own", "opened", "se:liaison"));
    s.apply({
      k: "answer-in",
      referralId: "own",
      eventId: "e",
      type: "received",
      by: "no:liaison",
      bytes: "Ynl0ZXM=",
      at: AT,
    });
    s.erase("a");
    s.erase("own");
    expect(s.inbound.get("a")).toMatchObject({ opened: "", erased: true, status: "pending" });
    expect(s.sent.get("own")?.answers.map((a) => a.bytes)).toEqual([""]);
    s.forget("own");
    expect(s.holds("own")).toBe(false);
    expect(s.out).toEqual([]);
    expect(s.holds("a")).toBe(true);
    s.reset();
    expect(s.holds("a")).toBe(false);
    expect([...s.ended()]).toEqual([]);
  });
});
