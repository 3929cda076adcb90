import { describe, expect, it } from "vitest";
import { toBase64, type DestinationJson, type EventJson } from "@stafett/shared";
import { derivedId } from "@stafett/shared";
import {
  bytesOf,
  event,
  forwardedOf,
  kinds,
  LATER,
  NOW,
  planOf,
  refusalOf,
  sends,
  verified,
} from "../../../test/support/decisions.js";
import {
  decide,
  decideEscalation,
  decideTriageForward,
  decideTriageReroute,
  type HubContext,
  type HubView,
} from "./decide.js";
import { HubState, type HubRecord, type HubStatus } from "./state.js";

const HUB = "se:hub:vast";
const ORIGIN = "se:municipality:0180"; // Stockholm
const HOLDER = "se:municipality:1480"; // Göteborg, in Väst
const OTHER = "se:municipality:1490"; // Borås, in Väst
const REF = "11111111-1111-4111-8111-111111111111";
const DEADLINE = "2026-12-02T10:00:00.000Z";

const ctx: HubContext = {
  id: HUB,
  derive: (...parts) => derivedId(HUB, ...parts),
  country: "se",
  region: "vast",
  serves: (hub) => ["se:hub:vast", "se:hub:stockholm", "se:hub:bergslagen"].includes(hub),
};

function opened(dest: DestinationJson, origin = ORIGIN, referralId = REF): EventJson {
  return event("opened", origin, HUB, referralId, {
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    destination: dest,
    deadline: DEADLINE,
    personal: "jwe-of-the-origin",
  });
}

/** A hub that holds REF in `status`, with `holder`, reached through the records that lead there. */
function holding(status: HubStatus | "none", origin = ORIGIN): { view: HubView; state: HubState } {
  const state = new HubState();
  const o = opened({ country: "se", municipality: "1480" }, origin);
  const at = { offset: 0, length: 0 };
  const apply = (r: HubRecord) => state.apply(r, at);
  if (status !== "none") {
    apply({
      k: "received",
      referralId: REF,
      openedId: o.id,
      origin,
      opened: toBase64(bytesOf(o)),
      urgency: "URGENCY_HIGH",
      deadline: DEADLINE,
      destination: { country: "se", municipality: "1480" },
      from: origin,
      at: NOW.toISOString(),
    });
    const t = NOW.toISOString();
    if (status === "forwarded" || status === "accepted" || status === "closed")
      apply({ k: "forwarded", referralId: REF, to: HOLDER, eventId: "f1", at: t });
    if (status === "accepted" || status === "closed")
      apply({ k: "accepted", referralId: REF, by: HOLDER, eventId: "a1", at: t });
    if (status === "closed") apply({ k: "closed", referralId: REF, eventId: "c1", at: t });
    if (status === "triage") apply({ k: "triage", referralId: REF, at: t });
    if (status === "rerouted")
      apply({ k: "rerouted", referralId: REF, to: "se:hub:stockholm", eventId: "r1", at: t });
    if (status === "declined") {
      apply({ k: "forwarded", referralId: REF, to: HOLDER, eventId: "f1", at: t });
      apply({ k: "declined", referralId: REF, by: HOLDER, eventId: "d1", reason: "x", at: t });
    }
    if (status === "withdrawn") apply({ k: "withdrawn", referralId: REF, eventId: "w1", at: t });
  }
  return {
    state,
    view: {
      referral: (id) => state.referrals.get(id),
      held: () => ({ opened: toBase64(bytesOf(o)) }),
    },
  };
}

const fresh = () => holding("none").view;

describe("hub decide: a referral arrives (opened, or forwarded by another hub)", () => {
  it.each<[string, DestinationJson, string[], string[]]>([
    [
      "a municipality of its own region: receipt, the origin's notice, forwarded to it",
      { country: "se", municipality: "1480" },
      [`received -> ${ORIGIN}`, `forwarded -> ${ORIGIN}`, `forwarded -> ${HOLDER}`],
      ["received", "forwarded"],
    ],
    [
      "a municipality of another region: re-routed to that region's hub",
      { country: "se", municipality: "0380" },
      [`received -> ${ORIGIN}`, `forwarded -> ${ORIGIN}`, "forwarded -> se:hub:mitt"],
      ["received", "rerouted"],
    ],
    [
      "another region only, whose hub exists: re-routed to it",
      { country: "se", region: "bergslagen" },
      [`received -> ${ORIGIN}`, `forwarded -> ${ORIGIN}`, "forwarded -> se:hub:bergslagen"],
      ["received", "rerouted"],
    ],
    [
      "its own region only: held for triage",
      { country: "se", region: "vast" },
      [`received -> ${ORIGIN}`],
      ["received", "triage"],
    ],
    [
      "a region no hub serves: held for triage",
      { country: "se", region: "atlantis" },
      [`received -> ${ORIGIN}`],
      ["received", "triage"],
    ],
    [
      "an unknown municipality code: held for triage",
      { country: "se", municipality: "9999" },
      [`received -> ${ORIGIN}`],
      ["received", "triage"],
    ],
    [
      "another country: held for triage (only gateways send abroad)",
      { country: "no" },
      [`received -> ${ORIGIN}`],
      ["received", "triage"],
    ],
  ])("opened for %s", (_name, dest, sent, records) => {
    const o = opened(dest);
    const p = planOf(decide(ctx, fresh(), verified(o, { personal: { x: 1 } }), bytesOf(o), NOW));
    expect(sends(p)).toEqual(sent);
    expect(kinds(p)).toEqual(records);
  });

  it("seals the hand-on to the next hub and the municipality, from the personal part it opened", () => {
    const o = opened({ country: "se", municipality: "0380" });
    const p = planOf(decide(ctx, fresh(), verified(o, { personal: { x: 1 } }), bytesOf(o), NOW));
    const last = p.send.at(-1);
    expect(last !== undefined && "issue" in last ? last.reseal : undefined).toEqual({
      to: ["se:hub:mitt", "se:municipality:0380"],
      current: "jwe-of-the-origin",
      plaintext: { x: 1 },
    });
  });

  it("a referral re-routed by another hub: the receipt goes to that hub, the origin stays", () => {
    const o = opened({ country: "se", municipality: "1480" });
    const { v, bytes } = forwardedOf("se:hub:stockholm", HUB, o, {
      destination: { country: "se", municipality: "1480" },
      personal: "jwe-of-the-relay",
    });
    const p = planOf(decide(ctx, fresh(), v, bytes, NOW));
    expect(sends(p)).toEqual([
      "received -> se:hub:stockholm",
      `forwarded -> ${ORIGIN}`,
      `forwarded -> ${HOLDER}`,
    ]);
    expect(p.records[0]).toMatchObject({
      k: "received",
      origin: ORIGIN,
      from: "se:hub:stockholm",
      sealed: "jwe-of-the-relay",
    });
  });

  it("a partner's referral routed in by the liaison: the liaison told where it went, never the foreign origin", () => {
    const o = opened({ country: "se", municipality: "1480" }, "no:liaison");
    const { v, bytes } = forwardedOf("se:liaison", HUB, o, {}, { personal: { x: 1 } });
    const p = planOf(decide(ctx, fresh(), v, bytes, NOW));
    expect(sends(p)).toEqual([
      "received -> se:liaison",
      "forwarded -> se:liaison",
      `forwarded -> ${HOLDER}`,
    ]);
    // The receipt to the own liaison goes on its subject for the partner (stafett.se.out.no.*).
    const receipt = p.send[0];
    expect(receipt !== undefined && "issue" in receipt ? receipt.issue : undefined).toMatchObject({
      type: "received",
      partnerCountry: "no",
    });
    const notice = p.send[1];
    expect(notice !== undefined && "issue" in notice ? notice.issue : undefined).toMatchObject({
      partnerCountry: "no",
      body: { destination: { country: "se", municipality: "1480", region: "vast" } },
    });
  });

  it("a partner's referral for another region: re-routed, and the liaison told which hub has it", () => {
    const o = opened({ country: "se", municipality: "1880" }, "no:liaison");
    const { v, bytes } = forwardedOf("se:liaison", HUB, o, {}, { personal: { x: 1 } });
    const p = planOf(decide(ctx, fresh(), v, bytes, NOW));
    expect(sends(p)).toEqual([
      "received -> se:liaison",
      "forwarded -> se:liaison",
      "forwarded -> se:hub:bergslagen",
    ]);
    expect(p.records).toMatchObject([{ k: "received" }, { k: "rerouted" }]);
  });

  it("a partner's referral declined with a suggestion: the decline relayed to the partner, the liaison told, then re-routed", () => {
    const { view } = holding("forwarded", "no:liaison");
    const d = event("declined", HOLDER, HUB, REF, {
      ofEventId: "o",
      reason: "DECLINE_REASON_WRONG_MUNICIPALITY",
      suggested: { country: "se", municipality: "1880" },
    });
    const p = planOf(decide(ctx, view, verified(d), bytesOf(d), NOW));
    expect(sends(p)).toEqual([
      "forwarded -> no:liaison",
      "forwarded -> se:liaison",
      "forwarded -> se:hub:bergslagen",
    ]);
  });

  it.each<[HubStatus, ReturnType<typeof refusalOf>]>([
    ["received", { code: "ERR_REPLAY", reason: "duplicate_referral" }],
    ["forwarded", { code: "ERR_REPLAY", reason: "duplicate_referral" }],
    ["triage", { code: "ERR_REPLAY", reason: "duplicate_referral" }],
    ["accepted", { code: "ERR_REPLAY", reason: "duplicate_referral" }],
    ["closed", { code: "ERR_REPLAY", reason: "duplicate_referral" }],
    ["rerouted", "plan"],
  ])("an opened for a referral already held as %s: %j", (status, expected) => {
    const o = opened({ country: "se", municipality: "1480" });
    const v = decide(ctx, holding(status).view, verified(o), bytesOf(o), NOW);
    expect(refusalOf(v)).toEqual(expected);
  });

  it("a forwarded whose relayed opened has no referral body is refused ERR_SCHEMA_INVALID", () => {
    const o = { ...opened({ country: "se" }) };
    delete o.opened;
    const { v, bytes } = forwardedOf("se:hub:stockholm", HUB, o);
    expect(refusalOf(decide(ctx, fresh(), v, bytes, NOW))).toEqual({
      code: "ERR_SCHEMA_INVALID",
      reason: "type",
    });
  });
});

describe("hub decide: answers from the holder (accepted, declined)", () => {
  const accepted = (from: string) =>
    event("accepted", from, HUB, REF, { ofEventId: "o1" }, `accepted-${from}`);
  const declined = (from: string, suggested?: DestinationJson) =>
    event("declined", from, HUB, REF, {
      ofEventId: "o1",
      reason: "DECLINE_REASON_NOT_RESIDENT",
      ...(suggested === undefined ? {} : { suggested }),
    });

  it("accepted from the holder: relayed to the origin, recorded", () => {
    const e = accepted(HOLDER);
    const p = planOf(decide(ctx, holding("forwarded").view, verified(e), bytesOf(e), NOW));
    expect(sends(p)).toEqual([`forwarded -> ${ORIGIN}`]);
    expect(kinds(p)).toEqual(["accepted"]);
  });

  it("declined with a suggestion: relayed to the origin, then routed to the suggestion", () => {
    const e = declined(HOLDER, { country: "se", municipality: "1880" });
    const p = planOf(decide(ctx, holding("forwarded").view, verified(e), bytesOf(e), NOW));
    expect(sends(p)).toEqual([
      `forwarded -> ${ORIGIN}`,
      `forwarded -> ${ORIGIN}`,
      "forwarded -> se:hub:bergslagen",
    ]);
    expect(kinds(p)).toEqual(["declined", "rerouted"]);
  });

  it("declined without a suggestion: relayed to the origin, held for triage", () => {
    const e = declined(HOLDER);
    const p = planOf(decide(ctx, holding("forwarded").view, verified(e), bytesOf(e), NOW));
    expect(sends(p)).toEqual([`forwarded -> ${ORIGIN}`]);
    expect(kinds(p)).toEqual(["declined", "triage"]);
  });

  it.each<[string, HubStatus | "none", string]>([
    ["another municipality", "forwarded", OTHER],
    ["the origin", "forwarded", ORIGIN],
    ["the holder, once it has accepted", "accepted", HOLDER],
    ["the holder, of a closed referral", "closed", HOLDER],
    ["the former holder, after it declined", "declined", HOLDER],
    ["anyone, about a referral the hub never held", "none", HOLDER],
    ["anyone, about a referral in triage", "triage", HOLDER],
  ])("from %s: refused ERR_NOT_AUTHORISED not_holder", (_who, status, from) => {
    for (const e of [accepted(from), declined(from)]) {
      expect(refusalOf(decide(ctx, holding(status).view, verified(e), bytesOf(e), NOW))).toEqual({
        code: "ERR_NOT_AUTHORISED",
        reason: "not_holder",
      });
    }
  });
});

describe("hub decide: the origin's follow-ups (updated, withdrawn, closed)", () => {
  const followUps = (from: string): EventJson[] => [
    event("updated", from, HUB, REF, { urgency: "URGENCY_IMMEDIATE" }),
    event("withdrawn", from, HUB, REF, { reason: "WITHDRAW_REASON_CHILD_FOUND" }),
    event("closed", from, HUB, REF, { outcome: "CLOSE_OUTCOME_ACCEPTED" }),
  ];

  it.each<[HubStatus, string[]]>([
    ["forwarded", [`forwarded -> ${HOLDER}`]],
    ["accepted", [`forwarded -> ${HOLDER}`]],
    ["triage", []],
    ["received", []],
  ])("from the origin while %s: relayed to the holder when there is one", (status, sent) => {
    for (const e of followUps(ORIGIN)) {
      const p = planOf(decide(ctx, holding(status).view, verified(e), bytesOf(e), NOW));
      expect(sends(p)).toEqual(sent);
      expect(kinds(p)).toEqual([e.type]);
    }
  });

  it("an update's personal part is sealed again for the holder when it is not already", () => {
    const e = event("updated", ORIGIN, HUB, REF, { personal: "jwe-update" });
    const p = planOf(
      decide(ctx, holding("forwarded").view, verified(e, { personal: { y: 2 } }), bytesOf(e), NOW),
    );
    const [o] = p.send;
    expect(o !== undefined && "issue" in o ? o.reseal : undefined).toEqual({
      to: [HOLDER],
      current: "jwe-update",
      plaintext: { y: 2 },
    });
  });

  it.each<[string, HubStatus | "none", string]>([
    ["the holder", "forwarded", HOLDER],
    ["another municipality", "forwarded", OTHER],
    ["anyone, about a referral the hub never held", "none", ORIGIN],
  ])("from %s: refused ERR_NOT_AUTHORISED not_origin", (_who, status, from) => {
    for (const e of followUps(from)) {
      expect(refusalOf(decide(ctx, holding(status).view, verified(e), bytesOf(e), NOW))).toEqual({
        code: "ERR_NOT_AUTHORISED",
        reason: "not_origin",
      });
    }
  });
});

describe("hub decide: events that only leave a note", () => {
  it.each<EventJson>([
    event("received", ORIGIN, HUB, REF, { ofEventId: "x", digest: "d" }),
    event("rejected", ORIGIN, HUB, REF, { code: "ERR_SCHEMA_INVALID", reason: "type" }),
    event("escalated", "se:hub:stockholm", HUB, REF, { deadline: DEADLINE, holder: HUB }),
  ])("$type: a note on the referral, nothing sent", (e) => {
    const p = planOf(decide(ctx, holding("forwarded").view, verified(e), bytesOf(e), NOW));
    expect(p.send).toEqual([]);
    expect(p.records).toMatchObject([{ k: "note", type: e.type, from: e.source }]);
  });

  it("a forwarded relaying anything but a referral: a note naming what it relayed", () => {
    const inner = event("accepted", HOLDER, HUB, REF, { ofEventId: "o1" });
    const { v, bytes } = forwardedOf("se:liaison", HUB, inner);
    const p = planOf(decide(ctx, holding("forwarded").view, v, bytes, NOW));
    expect(p.send).toEqual([]);
    expect(p.records).toMatchObject([{ k: "note", type: "forwarded:accepted" }]);
  });
});

describe("hub decideEscalation: a deadline passed with nobody having accepted", () => {
  it("escalates to the national coordinator and tells a domestic origin", () => {
    const ref = holding("forwarded").state.referrals.get(REF)!;
    const p = decideEscalation(ctx, ref, LATER)!;
    expect(sends(p)).toEqual(["escalated -> se:coordinator", `escalated -> ${ORIGIN}`]);
    expect(kinds(p)).toEqual(["escalated"]);
    const [first] = p.send;
    expect(first !== undefined && "issue" in first ? first.issue.body : undefined).toEqual({
      deadline: DEADLINE,
      urgency: "URGENCY_HIGH",
      holder: HOLDER,
      destination: { country: "se", municipality: "1480" },
    });
  });

  it("names the hub itself as holder of a referral in triage", () => {
    const ref = holding("triage").state.referrals.get(REF)!;
    const [first] = decideEscalation(ctx, ref, LATER)!.send;
    expect(first !== undefined && "issue" in first ? first.issue.body?.holder : undefined).toBe(
      HUB,
    );
  });

  it("tells a foreign origin nothing (its own contact point does)", () => {
    const ref = holding("received", "no:liaison").state.referrals.get(REF)!;
    expect(sends(decideEscalation(ctx, ref, LATER)!)).toEqual(["escalated -> se:coordinator"]);
  });

  it("does nothing for a referral already escalated", () => {
    const { state } = holding("forwarded");
    state.apply(
      { k: "escalated", referralId: REF, eventId: "e1", at: NOW.toISOString() },
      {
        offset: 0,
        length: 0,
      },
    );
    expect(decideEscalation(ctx, state.referrals.get(REF)!, LATER)).toBeUndefined();
  });

  it("gives the same event ids when decided again (a crash before the journal write)", () => {
    const ref = holding("forwarded").state.referrals.get(REF)!;
    const ids = (p: ReturnType<typeof decideEscalation>) =>
      p!.send.map((o) => ("issue" in o ? o.issue.id : ""));
    expect(ids(decideEscalation(ctx, ref, LATER))).toEqual(
      ids(decideEscalation(ctx, ref, new Date(LATER.getTime() + 60_000))),
    );
  });
});

describe("hub decide: a refusal of the hub's own events", () => {
  const rejected = (ofEventId: string, code = "ERR_STALE", from = HOLDER) =>
    event("rejected", from, HUB, REF, { ofEventId, code, reason: "future", digest: "d" });

  it("of its hand-on as a replay (the holder has it already): only a note", () => {
    const e = rejected("f1", "ERR_REPLAY");
    const p = planOf(decide(ctx, holding("forwarded").view, verified(e), bytesOf(e), NOW));
    expect(p.send).toEqual([]);
    expect(kinds(p)).toEqual(["note"]);
  });

  it("of its escalation: escalated again later, under new ids, waiting longer each time", () => {
    const { state, view } = holding("forwarded");
    const at = { offset: 0, length: 0 };
    const first = decideEscalation(ctx, state.referrals.get(REF)!, LATER)!;
    first.records.forEach((r) => state.apply(r, at));
    const escId = first.send.map((o) => ("issue" in o ? o.issue.id : ""))[0] ?? "";
    const e = rejected(escId, "ERR_STALE", "se:coordinator");
    const p = planOf(decide(ctx, view, verified(e), bytesOf(e), LATER));
    expect(p.send).toEqual([]);
    expect(p.records).toMatchObject([
      { k: "refused", of: "escalated", retryAt: new Date(LATER.getTime() + 60_000).toISOString() },
    ]);
    p.records.forEach((r) => state.apply(r, at));
    const ref = state.referrals.get(REF)!;
    expect(ref.escalated).toBe(false);
    // Not due again before its retry time; due after it.
    expect(state.overdue(new Date(LATER.getTime() + 59_000))).toEqual([]);
    expect(state.overdue(new Date(LATER.getTime() + 60_000)).map((r) => r.referralId)).toEqual([
      REF,
    ]);
    const again = decideEscalation(ctx, ref, new Date(LATER.getTime() + 60_000))!;
    const againId = again.send.map((o) => ("issue" in o ? o.issue.id : ""))[0];
    expect(againId).not.toBe(escId);
    // The origin was told the first time.
    expect(sends(again)).toEqual(["escalated -> se:coordinator"]);
    again.records.forEach((r) => state.apply(r, at));
    const e2 = rejected(againId ?? "", "ERR_STALE", "se:coordinator");
    const p2 = planOf(decide(ctx, view, verified(e2), bytesOf(e2), LATER));
    expect(p2.records).toMatchObject([
      { k: "refused", retryAt: new Date(LATER.getTime() + 120_000).toISOString() },
    ]);
  });

  it("of something else, or of an unknown event: a note", () => {
    const e = rejected("not-ours");
    expect(
      kinds(planOf(decide(ctx, holding("forwarded").view, verified(e), bytesOf(e), NOW))),
    ).toEqual(["note"]);
  });
});

describe("hub decideTriageForward: an officer forwards a referral held for triage", () => {
  it("forwards it to a municipality of the region, telling the origin", () => {
    const p = planOf(decideTriageForward(ctx, holding("triage").view, REF, "1490", NOW));
    expect(sends(p)).toEqual([`forwarded -> ${ORIGIN}`, `forwarded -> ${OTHER}`]);
    expect(kinds(p)).toEqual(["forwarded"]);
  });

  it.each<[string, HubStatus | "none", string, ReturnType<typeof refusalOf>]>([
    ["not in triage", "forwarded", "1490", { code: "ERR_NOT_AUTHORISED", reason: "not_in_triage" }],
    ["never held", "none", "1490", { code: "ERR_NOT_AUTHORISED", reason: "not_in_triage" }],
    [
      "to an unknown code",
      "triage",
      "9999",
      { code: "ERR_UNKNOWN_MUNICIPALITY", reason: "unknown" },
    ],
  ])("refuses a referral %s", (_name, status, code, expected) => {
    expect(refusalOf(decideTriageForward(ctx, holding(status).view, REF, code, NOW))).toEqual(
      expected,
    );
  });
});

describe("hub decideTriageReroute: an officer hands a referral in triage to another region", () => {
  it("re-routes it to that region's hub", () => {
    const p = planOf(decideTriageReroute(ctx, holding("triage").view, REF, "stockholm", NOW));
    expect(sends(p)).toContain("forwarded -> se:hub:stockholm");
    expect(kinds(p)).toEqual(["rerouted"]);
  });

  it.each<[string, HubStatus | "none", string, ReturnType<typeof refusalOf>]>([
    [
      "not in triage",
      "forwarded",
      "stockholm",
      { code: "ERR_NOT_AUTHORISED", reason: "not_in_triage" },
    ],
    ["never held", "none", "stockholm", { code: "ERR_NOT_AUTHORISED", reason: "not_in_triage" }],
    ["to its own region", "triage", "vast", { code: "ERR_ADDRESS_INVALID", reason: "own_region" }],
    [
      "to a region no hub serves",
      "triage",
      "nord",
      { code: "ERR_ADDRESS_INVALID", reason: "unknown_region" },
    ],
  ])("refuses a referral %s", (_name, status, region, expected) => {
    expect(refusalOf(decideTriageReroute(ctx, holding(status).view, REF, region, NOW))).toEqual(
      expected,
    );
  });
});

describe("hub decide: nobody takes a referral over, and no refusal strands it", () => {
  it("an opened under the id of a referral it re-routed, from another origin, is refused", () => {
    const o = opened({ country: "se", municipality: "1480" }, HOLDER);
    expect(refusalOf(decide(ctx, holding("rerouted").view, verified(o), bytesOf(o), NOW))).toEqual({
      code: "ERR_REPLAY",
      reason: "duplicate_referral",
    });
  });

  it("the same referral coming back after a re-route is taken again, its origin kept", () => {
    const o = opened({ country: "se", municipality: "1480" });
    const { v, bytes } = forwardedOf("se:hub:stockholm", HUB, o, {}, { personal: { x: 1 } });
    const p = planOf(decide(ctx, holding("rerouted").view, v, bytes, NOW));
    expect(p.records[0]).toMatchObject({ k: "received", origin: ORIGIN });
  });

  it("the next hub's receipt of a re-route ends the hub's part; until then its deadline counts", () => {
    const { state, view } = holding("rerouted");
    const ref = state.referrals.get(REF)!;
    expect(state.overdue(LATER).map((r) => r.referralId)).toEqual([REF]);
    const receipt = event("received", "se:hub:stockholm", HUB, REF, {
      ofEventId: ref.handOn!.eventId,
      digest: "d",
    });
    const p = planOf(decide(ctx, view, verified(receipt), bytesOf(receipt), NOW));
    expect(p.records).toMatchObject([{ k: "receipted", by: "se:hub:stockholm" }]);
    for (const r of p.records) state.apply(r, { offset: 0, length: 0 });
    expect(state.overdue(new Date(LATER.getTime() + 1_000))).toEqual([]);
  });

  it("a receipt from anyone else, or of another event, leaves only a note", () => {
    const { view } = holding("rerouted");
    for (const [from, of] of [
      ["se:hub:nord", "r1"],
      ["se:hub:stockholm", "something-else"],
    ] as const) {
      const e = event("received", from, HUB, REF, { ofEventId: of, digest: "d" });
      expect(kinds(planOf(decide(ctx, view, verified(e), bytesOf(e), NOW)))).toEqual(["note"]);
    }
  });

  it("a refused hand-on (a revoked key, say) escalates at once, to the coordinator and the origin", () => {
    const { state, view } = holding("rerouted");
    const ref = state.referrals.get(REF)!;
    const e = event("rejected", "se:hub:stockholm", HUB, REF, {
      ofEventId: ref.handOn!.eventId,
      code: "ERR_KEY_REVOKED",
      reason: "revoked",
    });
    const p = planOf(decide(ctx, view, verified(e), bytesOf(e), NOW));
    expect(sends(p)).toEqual(["escalated -> se:coordinator", `escalated -> ${ORIGIN}`]);
    expect(kinds(p)).toEqual(["note", "escalated"]);
  });

  it("a refused forward to a municipality escalates at once too", () => {
    const { state, view } = holding("forwarded");
    const ref = state.referrals.get(REF)!;
    const e = event("rejected", HOLDER, HUB, REF, {
      ofEventId: ref.handOn!.eventId,
      code: "ERR_KEY_REVOKED",
      reason: "revoked",
    });
    expect(kinds(planOf(decide(ctx, view, verified(e), bytesOf(e), NOW)))).toEqual([
      "note",
      "escalated",
    ]);
  });
});

describe("hub decide: the origin's follow-ups reach the referral wherever it went", () => {
  const withdrawn = event("withdrawn", ORIGIN, HUB, REF, { reason: "WITHDRAW_REASON_CHILD_FOUND" });

  it("once it re-routed the referral, the hub relays a follow-up to the hub it handed it to", () => {
    const p = planOf(
      decide(ctx, holding("rerouted").view, verified(withdrawn), bytesOf(withdrawn), NOW),
    );
    expect(sends(p)).toEqual(["forwarded -> se:hub:stockholm"]);
  });

  it("the next hub takes it from the hub that re-routed the referral there, and relays it to its holder", () => {
    // Seen from the Väst hub: it took the referral from the Stockholm hub, and forwarded it.
    const { state } = holding("forwarded");
    const ref = state.referrals.get(REF)!;
    const view: HubView = {
      referral: (id) => (id === REF ? { ...ref, from: "se:hub:stockholm" } : undefined),
      held: holding("forwarded").view.held,
    };
    const { v, bytes } = forwardedOf("se:hub:stockholm", HUB, withdrawn);
    const p = planOf(decide(ctx, view, v, bytes, NOW));
    expect(kinds(p)).toEqual(["withdrawn"]);
    expect(sends(p)).toEqual([`forwarded -> ${HOLDER}`]);
    // From any other hub it is only a note.
    const { v: v2, bytes: b2 } = forwardedOf("se:hub:nord", HUB, withdrawn);
    expect(kinds(planOf(decide(ctx, view, v2, b2, NOW)))).toEqual(["note"]);
  });
});

describe("hub decide: a referral handed again to one that had it", () => {
  it("a second hand-on to the same municipality has an id of its own", () => {
    // Forwarded to Göteborg, declined by it (suggesting Borås), declined by Borås suggesting
    // Göteborg again: the second forward to Göteborg must not be the first one's id.
    const idOf = (p: ReturnType<typeof planOf>) => {
      const o = p.send.at(-1);
      return o !== undefined && "issue" in o ? o.issue.id : "";
    };
    const o = opened({ country: "se", municipality: "1480" });
    const first = planOf(
      decide(ctx, fresh(), verified(o, { personal: { x: 1 } }), bytesOf(o), NOW),
    );
    const { state, view } = holding("forwarded");
    state.apply(
      { k: "declined", referralId: REF, by: HOLDER, eventId: "d1", reason: "x", at: "" },
      { offset: 0, length: 0 },
    );
    state.apply(
      { k: "forwarded", referralId: REF, to: OTHER, eventId: "f2", at: "" },
      { offset: 0, length: 0 },
    );
    const back = event("declined", OTHER, HUB, REF, {
      ofEventId: "o1",
      reason: "DECLINE_REASON_NOT_RESIDENT",
      suggested: { country: "se", municipality: "1480" },
    });
    const second = planOf(decide(ctx, view, verified(back), bytesOf(back), NOW));
    expect(sends(second).at(-1)).toBe(`forwarded -> ${HOLDER}`);
    expect(idOf(second)).not.toBe(idOf(first));
  });
});
