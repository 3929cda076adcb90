import { describe, expect, it } from "vitest";
import {
  TrustStore,
  type EventJson,
  type EventType,
  type PersonalJson,
  type TrustList,
  type TrustKey,
} from "@stafett/shared";
import { derivedId } from "@stafett/shared";
import {
  bytesOf,
  event,
  forwardedOf,
  NOW,
  org,
  planOf,
  refusalOf,
  sends,
  verified,
} from "../../../test/support/decisions.js";
import {
  decide,
  decideAnswer,
  decideBorderEscalation,
  decideFollowAbroad,
  decideReferAbroad,
  decideRouteTo,
  DEFAULT_OUTBOUND_POLICY,
  type LiaisonContext,
  type LiaisonView,
  type ReferAbroad,
} from "./decide.js";
import { LiaisonState, type LiaisonRecord } from "./state.js";

const ME = "se:liaison";
const MALMO = "se:municipality:1280";
const REF = "33333333-3333-4333-8333-333333333333";
const DEADLINE = "2026-12-02T10:00:00.000Z";
const PARTNER_ENC = "no-liaison-enc-1";

const key = (kid: string, use: "sig" | "enc"): TrustKey =>
  ({
    kid,
    use,
    jwk: {},
    notBefore: "2026-01-01T00:00:00.000Z",
    notAfter: "2027-12-31T00:00:00.000Z",
  }) as unknown as TrustKey;

/** Sweden's list naming Norway as a partner, and Norway's, with the keys the policy looks at. */
const trust = new TrustStore([
  {
    country: "se",
    version: 1,
    partners: [{ country: "no", anchors: [] }],
    organisations: [
      { ...org(ME), keys: [key("se-liaison-enc", "enc")] },
      ...["1280", "1480", "1880"].map((code) => org(`se:municipality:${code}`)),
    ],
    policy: [],
  } as unknown as TrustList,
  {
    country: "no",
    version: 1,
    organisations: [{ ...org("no:liaison"), keys: [key(PARTNER_ENC, "enc")] }],
    policy: [],
  } as unknown as TrustList,
]);

const ctx: LiaisonContext = {
  id: ME,
  derive: (...parts) => derivedId(ME, ...parts),
  country: "se",
  trust,
  policy: DEFAULT_OUTBOUND_POLICY,
};

/** A JWE's shape as far as `recipientKids` reads it: the kids of its recipients. */
function jweTo(...kids: string[]): string {
  return JSON.stringify({ recipients: kids.map((kid) => ({ header: { kid } })), ciphertext: "" });
}

function view(records: LiaisonRecord[] = []): LiaisonView {
  const state = new LiaisonState();
  for (const r of records) state.apply(r);
  return {
    inbound: (id) => state.inbound.get(id),
    crossed: (id) => state.crossed.get(id),
    sent: (id) => state.sent.get(id),
  };
}

function openedAbroad(
  reason = "REASON_CATEGORY_MISSING",
  personal = jweTo(PARTNER_ENC, "se-liaison-enc"),
): EventJson {
  return event("opened", MALMO, "no:liaison", REF, {
    urgency: "URGENCY_HIGH",
    reason: reason as "REASON_CATEGORY_MISSING",
    destination: { country: "no" },
    deadline: DEADLINE,
    personal,
  });
}

/** Malmö's referral REF, which crossed to Norway. */
const CROSSED: LiaisonRecord[] = [
  { k: "out", eventId: "o0", referralId: REF, type: "opened", partner: "no", from: MALMO, at: "" },
];

const out = (e: EventJson, personal?: unknown, partner = "no", records = CROSSED) =>
  decide(
    ctx,
    view(records),
    verified(e, personal === undefined ? {} : { personal }),
    { bytes: bytesOf(e), partnerCountry: partner },
    NOW,
  );

describe("liaison decide: outbound, the policy lets it leave", () => {
  it("a municipality's referral: countersigned to the partner, and the sender told where it went", () => {
    const p = planOf(out(openedAbroad(), { legalBasis: "SoL 5 kap. 1 §" }));
    expect(sends(p)).toEqual(["countersign -> stafett.no.in.se.opened", `forwarded -> ${MALMO}`]);
    expect(p.records).toMatchObject([{ k: "out", partner: "no", type: "opened" }]);
  });

  it.each<EventType>(["accepted", "declined", "received", "rejected", "withdrawn", "closed"])(
    "%s: countersigned to the partner, nobody else told",
    (type) => {
      const e = event(type, MALMO, "no:liaison", REF, {} as never);
      expect(sends(planOf(out(e)))).toEqual([`countersign -> stafett.no.in.se.${type}`]);
    },
  );
});

describe("liaison decide: outbound, only about referrals that crossed", () => {
  it("a follow-up about a referral that never crossed is refused not_crossed", () => {
    const e = event("withdrawn", MALMO, "no:liaison", REF, { reason: "WITHDRAW_REASON_OTHER" });
    const p = planOf(out(e, undefined, "no", []));
    expect(sends(p)).toEqual([`rejected -> ${MALMO}`]);
    expect(p.records).toMatchObject([{ k: "refused", reason: "not_crossed" }]);
  });

  it("a follow-up by a domestic party not on the referral is refused not_crossed", () => {
    const e = event("closed", "se:municipality:0180", "no:liaison", REF, {
      outcome: "CLOSE_OUTCOME_OTHER",
    });
    expect(planOf(out(e)).records).toMatchObject([{ k: "refused", reason: "not_crossed" }]);
  });

  it("a hub may relay an answer abroad about a partner's referral routed to it", () => {
    const routed: LiaisonRecord[] = [
      {
        k: "inbound",
        referralId: REF,
        openedId: "o1",
        origin: "no:liaison",
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        deadline: "2026-12-02T10:00:00.000Z",
        opened: "",
        routedTo: "se:hub:vast",
        at: "",
      },
    ];
    const inner = event("accepted", "se:municipality:1480", "se:hub:vast", REF, {
      ofEventId: "o1",
    });
    const { v, bytes } = forwardedOf("se:hub:vast", "no:liaison", inner);
    const p = planOf(decide(ctx, view(routed), v, { bytes, partnerCountry: "no" }, NOW));
    expect(sends(p)).toEqual(["countersign -> stafett.no.in.se.forwarded"]);
  });

  it("a referral inside a hub's forwarded is refused relay_not_allowed", () => {
    const inner = event("opened", "se:municipality:1480", "se:hub:vast", REF, {
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_OTHER",
      destination: { country: "se", municipality: "1480" },
      deadline: "2026-12-02T10:00:00.000Z",
      personal: "jwe",
    });
    const { v, bytes } = forwardedOf("se:hub:vast", "no:liaison", inner);
    const crossedByHub: LiaisonRecord[] = [
      { ...CROSSED[0]!, from: "se:hub:vast" } as LiaisonRecord,
    ];
    const p = planOf(decide(ctx, view(crossedByHub), v, { bytes, partnerCountry: "no" }, NOW));
    expect(p.records).toMatchObject([{ k: "refused", reason: "relay_not_allowed" }]);
  });
});

describe("liaison decide: outbound, the policy refuses", () => {
  it.each<[string, () => ReturnType<typeof out>, string]>([
    [
      "a country that is not a partner",
      () => out({ ...openedAbroad(), addressee: "dk:liaison" }, { legalBasis: "x" }, "dk"),
      "unknown_partner",
    ],
    [
      "an addressee outside the subject's country",
      () => out({ ...openedAbroad(), addressee: "fi:liaison" }, { legalBasis: "x" }),
      "addressee_country",
    ],
    [
      "a type that does not leave the country",
      () =>
        out(event("escalated", MALMO, "no:liaison", REF, { deadline: DEADLINE, holder: MALMO })),
      "type_not_allowed",
    ],
    [
      "the reason 'other'",
      () => out(openedAbroad("REASON_CATEGORY_OTHER"), { legalBasis: "x" }),
      "reason_not_allowed",
    ],
    [
      "a personal part not sealed to the partner",
      () => out(openedAbroad(undefined, jweTo("se-liaison-enc")), { legalBasis: "x" }),
      "not_sealed_to_partner",
    ],
    [
      "a personal part the own liaison cannot read",
      () => out(openedAbroad()),
      "not_sealed_to_liaison",
    ],
    ["no legal basis stated", () => out(openedAbroad(), { legalBasis: "  " }), "no_legal_basis"],
  ])("%s: a signed rejected to the issuer, recorded as refused", (_name, run, reason) => {
    const p = planOf(run());
    expect(sends(p)).toEqual([`rejected -> ${MALMO}`]);
    const [o] = p.send;
    expect(o !== undefined && "issue" in o ? o.issue.body : undefined).toMatchObject({
      code: "ERR_OUTBOUND_POLICY",
      reason,
    });
    expect(p.records).toMatchObject([{ k: "refused", reason }]);
  });
});

describe("liaison decide: inbound", () => {
  const inbound = (e: EventJson, records: LiaisonRecord[] = [], personal?: unknown) =>
    decide(
      ctx,
      view(records),
      verified(e, personal === undefined ? {} : { personal }),
      { bytes: bytesOf(e) },
      NOW,
    );
  const partnerOpened = (dest: { country: string; municipality?: string }) =>
    event("opened", "no:liaison", ME, REF, {
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      destination: dest,
      deadline: DEADLINE,
      personal: jweTo("se-liaison-enc"),
    });

  const sentOut: LiaisonRecord[] = [
    {
      k: "out",
      eventId: "o1",
      referralId: REF,
      type: "opened",
      partner: "no",
      from: MALMO,
      at: "",
    },
  ];

  it("a partner's answer about a referral sent to it: relayed to its sender", () => {
    const p = planOf(
      inbound(event("accepted", "no:liaison", MALMO, REF, { ofEventId: "o1" }), sentOut),
    );
    expect(sends(p)).toEqual([`forwarded -> ${MALMO}`]);
    expect(p.records).toMatchObject([{ k: "relayed-in", to: MALMO, type: "accepted" }]);
  });

  it.each<[string, EventJson, LiaisonRecord[]]>([
    [
      "about a domestic referral that never crossed",
      event("accepted", "no:liaison", MALMO, REF, { ofEventId: "o1" }),
      [],
    ],
    [
      "about a referral sent to another partner",
      event("accepted", "no:liaison", MALMO, REF, { ofEventId: "o1" }),
      [{ ...sentOut[0]!, partner: "dk" } as LiaisonRecord],
    ],
    [
      "to a domestic party that is not on the referral",
      event("declined", "no:liaison", "se:municipality:0180", REF, {
        ofEventId: "o1",
        reason: "DECLINE_REASON_OTHER",
      }),
      sentOut,
    ],
  ])("a partner's event %s: refused ERR_NOT_AUTHORISED not_crossed", (_name, e, records) => {
    expect(refusalOf(inbound(e, records))).toEqual({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_crossed",
    });
  });

  it("a partner's event for another country: refused ERR_NOT_ADDRESSEE", () => {
    expect(
      refusalOf(inbound(event("accepted", "no:liaison", "fi:liaison", REF, { ofEventId: "o1" }))),
    ).toEqual({
      code: "ERR_NOT_ADDRESSEE",
      reason: "mismatch",
    });
  });

  it("a partner's referral for a known municipality: receipt, then to its hub, sealed anew", () => {
    const p = planOf(inbound(partnerOpened({ country: "se", municipality: "1480" }), [], { x: 1 }));
    expect(sends(p)).toEqual(["received -> no:liaison", "forwarded -> se:hub:vast"]);
    expect(p.records).toMatchObject([{ k: "inbound", routedTo: "se:hub:vast" }]);
    const o = p.send[1];
    expect(o !== undefined && "issue" in o ? o.reseal : undefined).toMatchObject({
      to: ["se:hub:vast", "se:municipality:1480"],
      fresh: true,
      plaintext: { x: 1 },
    });
  });

  it("a partner's referral with no municipality: receipt, then it waits for the contact point", () => {
    const p = planOf(inbound(partnerOpened({ country: "se" })));
    expect(sends(p)).toEqual(["received -> no:liaison"]);
    expect(p.records).toEqual([expect.objectContaining({ k: "inbound" })]);
    expect(p.records[0]).not.toHaveProperty("routedTo");
  });

  it("a partner's referral that already arrived: refused ERR_REPLAY", () => {
    const first = planOf(inbound(partnerOpened({ country: "se" }))).records;
    expect(refusalOf(inbound(partnerOpened({ country: "se" }), first))).toEqual({
      code: "ERR_REPLAY",
      reason: "duplicate_referral",
    });
  });

  it("a partner's referral bound for another country: refused ERR_NOT_ADDRESSEE destination_country", () => {
    expect(refusalOf(inbound(partnerOpened({ country: "dk", municipality: "0101" })))).toEqual({
      code: "ERR_NOT_ADDRESSEE",
      reason: "destination_country",
    });
  });

  it("a partner's referral naming a municipality that is not on the trust list: receipt, then it waits for the contact point", () => {
    const p = planOf(inbound(partnerOpened({ country: "se", municipality: "0180" })));
    expect(sends(p)).toEqual(["received -> no:liaison"]);
    expect(p.records[0]).not.toHaveProperty("routedTo");
  });

  it("a partner's referral under the id of a referral that crossed the other way: refused ERR_REPLAY", () => {
    expect(refusalOf(inbound(partnerOpened({ country: "se" }), sentOut))).toEqual({
      code: "ERR_REPLAY",
      reason: "duplicate_referral",
    });
  });
});

describe("liaison decide: a partner's follow-ups and answers addressed to the liaison itself", () => {
  const fromNo = (e: EventJson, records: LiaisonRecord[], personal?: unknown) =>
    decide(
      ctx,
      view(records),
      verified(e, personal === undefined ? {} : { personal }),
      { bytes: bytesOf(e) },
      NOW,
    );
  const theirs = (routedTo?: string, origin = "no:liaison"): LiaisonRecord[] => [
    {
      k: "inbound",
      referralId: REF,
      openedId: "o1",
      origin,
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      deadline: DEADLINE,
      opened: "",
      ...(routedTo === undefined ? {} : { routedTo }),
      at: "",
    },
  ];
  /** A referral the contact point itself sent to Norway. */
  const mine: LiaisonRecord[] = [
    {
      k: "out",
      eventId: "m1",
      referralId: REF,
      type: "opened",
      partner: "no",
      from: ME,
      deadline: DEADLINE,
      urgency: "URGENCY_HIGH",
      at: "",
    },
  ];
  const withdrawn = (from = "no:liaison") =>
    event("withdrawn", from, ME, REF, { reason: "WITHDRAW_REASON_CHILD_FOUND" });

  it("its withdrawal of a referral routed to a hub: relayed to that hub, recorded", () => {
    const p = planOf(fromNo(withdrawn(), theirs("se:hub:vast")));
    expect(sends(p)).toEqual(["forwarded -> se:hub:vast"]);
    expect(p.records).toMatchObject([{ k: "follow-in", type: "withdrawn", to: "se:hub:vast" }]);
  });

  it("its withdrawal of a referral waiting for the contact point: recorded, and its deadline no longer watched", () => {
    const p = planOf(fromNo(withdrawn(), theirs()));
    expect(sends(p)).toEqual([]);
    const state = new LiaisonState();
    for (const r of [...theirs(), ...p.records]) state.apply(r);
    expect(state.inbound.get(REF)?.status).toBe("withdrawn");
    expect(state.overdue(new Date("2026-12-03T00:00:00.000Z"))).toEqual([]);
  });

  it("its update of a routed referral: relayed to the hub, the personal part sealed anew to it", () => {
    const u = event("updated", "no:liaison", ME, REF, { personal: jweTo("se-liaison-enc") });
    const p = planOf(fromNo(u, theirs("se:hub:vast"), { x: 2 }));
    expect(sends(p)).toEqual(["forwarded -> se:hub:vast"]);
    const [o] = p.send;
    expect(o !== undefined && "issue" in o ? o.reseal : undefined).toMatchObject({
      to: ["se:hub:vast"],
      fresh: true,
      plaintext: { x: 2 },
    });
  });

  it.each<[string, EventJson, LiaisonRecord[], ReturnType<typeof refusalOf>]>([
    [
      "a withdrawal by a party of the partner country that is not the origin",
      withdrawn(),
      theirs("se:hub:vast", "no:municipality:0301"),
      { code: "ERR_NOT_AUTHORISED", reason: "not_origin" },
    ],
    [
      "a withdrawal of a referral that never crossed",
      withdrawn(),
      [],
      { code: "ERR_NOT_AUTHORISED", reason: "not_crossed" },
    ],
    [
      "a withdrawal of a referral Sweden sent to the partner",
      withdrawn(),
      CROSSED,
      { code: "ERR_NOT_AUTHORISED", reason: "not_crossed" },
    ],
    [
      "its acceptance of its own referral (it does not hold it)",
      event("accepted", "no:liaison", ME, REF, { ofEventId: "o1" }),
      theirs("se:hub:vast"),
      { code: "ERR_NOT_AUTHORISED", reason: "not_holder" },
    ],
    [
      "a decline of a referral that never crossed",
      event("declined", "no:liaison", ME, REF, {
        ofEventId: "o1",
        reason: "DECLINE_REASON_OTHER",
      }),
      [],
      { code: "ERR_NOT_AUTHORISED", reason: "not_crossed" },
    ],
    [
      "an acceptance of a referral a municipality (not the contact point) sent",
      event("accepted", "no:liaison", ME, REF, { ofEventId: "o1" }),
      CROSSED,
      { code: "ERR_NOT_AUTHORISED", reason: "not_crossed" },
    ],
    [
      "an escalation",
      event("escalated", "no:liaison", ME, REF, { deadline: DEADLINE, holder: ME }),
      theirs("se:hub:vast"),
      { code: "ERR_NOT_AUTHORISED", reason: "not_crossed" },
    ],
  ])("%s: %j", (_name, e, records, expected) => {
    expect(refusalOf(fromNo(e, records))).toEqual(expected);
  });

  it("a receipt or refusal about its own referral held here: nothing", () => {
    const r = event("received", "no:liaison", ME, REF, { ofEventId: "x", digest: "d" });
    expect(planOf(fromNo(r, theirs("se:hub:vast")))).toEqual({ send: [], records: [] });
  });

  it.each<["received" | "accepted" | "declined", Record<string, unknown>]>([
    ["received", { ofEventId: "m1", digest: "d" }],
    ["accepted", { ofEventId: "m1" }],
    ["declined", { ofEventId: "m1", reason: "DECLINE_REASON_OTHER" }],
  ])(
    "the partner contact point's %s of a referral the liaison sent: recorded with its bytes",
    (type, body) => {
      const p = planOf(fromNo(event(type, "no:liaison", ME, REF, body as never), mine));
      expect(p.send).toEqual([]);
      expect(p.records).toMatchObject([{ k: "answer-in", type, by: "no:liaison" }]);
    },
  );

  it("a partner hub's relay of its municipality's acceptance: recorded as that municipality's, and the deadline settled", () => {
    const inner = event("accepted", "no:municipality:0301", "no:hub:ost", REF, {
      ofEventId: "m1",
    });
    const { v, bytes } = forwardedOf("no:hub:ost", ME, inner);
    const p = planOf(decide(ctx, view(mine), v, { bytes }, NOW));
    expect(p.records).toMatchObject([
      { k: "answer-in", type: "accepted", by: "no:municipality:0301" },
    ]);
    const state = new LiaisonState();
    for (const r of [...mine, ...p.records]) state.apply(r);
    expect(state.sent.get(REF)?.status).toBe("accepted");
    expect(state.overdue(new Date("2026-12-03T00:00:00.000Z"))).toEqual([]);
  });

  it("a relayed answer from a third country's municipality: refused not_crossed", () => {
    const inner = event("accepted", "dk:municipality:0101", "no:hub:ost", REF, {
      ofEventId: "m1",
    });
    const { v, bytes } = forwardedOf("no:hub:ost", ME, inner);
    expect(refusalOf(decide(ctx, view(mine), v, { bytes }, NOW))).toEqual({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_crossed",
    });
  });
});

describe("liaison decide: a hub tells where a partner's referral went", () => {
  const routed: LiaisonRecord[] = [
    {
      k: "inbound",
      referralId: REF,
      openedId: "o1",
      origin: "no:liaison",
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      deadline: DEADLINE,
      opened: "",
      routedTo: "se:hub:vast",
      at: "",
    },
  ];
  const theOpened = event(
    "opened",
    "no:liaison",
    ME,
    REF,
    {
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      destination: { country: "se", municipality: "1480" },
      deadline: DEADLINE,
      personal: jweTo("se-liaison-enc"),
    },
    "o1",
  );
  const notice = (from: string, municipality: string, opened = theOpened) =>
    forwardedOf(from, ME, opened, { destination: { country: "se", municipality } });
  const run = (n: ReturnType<typeof notice>, records = routed) =>
    decide(ctx, view(records), n.v, { bytes: n.bytes, partnerCountry: "no" }, NOW);

  it("the hub it was routed to forwarded it to a municipality of its region: recorded as held there", () => {
    const p = planOf(run(notice("se:hub:vast", "1480")));
    expect(p.send).toEqual([]);
    expect(p.records).toMatchObject([
      { k: "handed-on", by: "se:hub:vast", to: "se:municipality:1480" },
    ]);
  });

  it("re-routed to another region's hub: that hub joins the path, and may relay the answer abroad", () => {
    const p = planOf(run(notice("se:hub:vast", "1880")));
    expect(p.records).toMatchObject([{ k: "handed-on", to: "se:hub:bergslagen" }]);
    const inner = event("accepted", "se:municipality:1880", "se:hub:bergslagen", REF, {
      ofEventId: "o1",
    });
    const relay = forwardedOf("se:hub:bergslagen", "no:liaison", inner);
    const answer = (records: LiaisonRecord[]) =>
      planOf(
        decide(ctx, view(records), relay.v, { bytes: relay.bytes, partnerCountry: "no" }, NOW),
      );
    expect(sends(answer([...routed, ...p.records]))).toEqual([
      "countersign -> stafett.no.in.se.forwarded",
    ]);
    // Without the notice the same relay is refused: the hub was not on the path.
    expect(answer(routed).records).toMatchObject([{ k: "refused", reason: "not_crossed" }]);
  });

  it("the receipt of the hub it was routed to: taken, and its deadline left to that hub; a receipt from a hub not on the path: refused not_on_path", () => {
    const r = event("received", "se:hub:vast", ME, REF, { ofEventId: "route-1", digest: "d" });
    const at = (records: LiaisonRecord[], e = r) =>
      decide(ctx, view(records), verified(e), { bytes: bytesOf(e), partnerCountry: "no" }, NOW);
    const p = planOf(at(routed));
    expect(p.send).toEqual([]);
    expect(p.records).toMatchObject([{ k: "taken", by: "se:hub:vast" }]);
    const state = new LiaisonState();
    for (const rec of routed) state.apply(rec);
    const late = new Date("2026-12-03T00:00:00.000Z");
    // Routed but not yet taken: still the liaison's to watch (the hub may have refused it).
    expect(state.overdue(late).map((w) => w.referralId)).toEqual([REF]);
    for (const rec of p.records) state.apply(rec);
    expect(state.overdue(late)).toEqual([]);
    expect(refusalOf(at(routed, { ...r, source: "se:hub:syd" }))).toEqual({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_on_path",
    });
  });

  it.each<[string, () => ReturnType<typeof notice>, LiaisonRecord[]]>([
    ["from a hub not on the path", () => notice("se:hub:syd", "1280"), routed],
    ["about a referral that did not come in from abroad", () => notice("se:hub:vast", "1480"), []],
    [
      "relaying another opened than the partner's",
      () => notice("se:hub:vast", "1480", { ...theOpened, id: "o2" }),
      routed,
    ],
  ])("%s: refused not_on_path", (_name, n, records) => {
    expect(refusalOf(run(n(), records))).toEqual({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_on_path",
    });
  });
});

describe("liaison: the contact point refers a child abroad", () => {
  const personal = { legalBasis: "Lag (1990:52) 1 §" } as unknown as PersonalJson;
  const cmd = (over: Partial<ReferAbroad> = {}): ReferAbroad => ({
    referralId: REF,
    partner: "no",
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    deadline: DEADLINE,
    personal,
    ...over,
  });

  it("an opened to the partner's liaison, sealed to it and to the own liaison; its deadline watched", () => {
    const p = planOf(decideReferAbroad(ctx, view(), cmd(), NOW));
    expect(sends(p)).toEqual(["opened -> no:liaison"]);
    const [o] = p.send;
    expect(o !== undefined && "issue" in o ? o.issue : undefined).toMatchObject({
      sealTo: ["no:liaison", ME],
      body: { destination: { country: "no" }, deadline: DEADLINE },
    });
    expect(p.records).toMatchObject([{ k: "out", from: ME, partner: "no", type: "opened" }]);
    const state = new LiaisonState();
    for (const r of p.records) state.apply(r);
    expect(state.sent.get(REF)?.status).toBe("sent");
    const [w] = state.overdue(new Date("2026-12-03T00:00:00.000Z"));
    // Its own referral: escalated to the coordinator only (there is no domestic sender to tell).
    expect(sends(decideBorderEscalation(ctx, w!, NOW)!)).toEqual(["escalated -> se:coordinator"]);
  });

  it.each<[string, Partial<ReferAbroad>, LiaisonRecord[], ReturnType<typeof refusalOf>]>([
    [
      "a country that is not a partner",
      { partner: "dk" },
      [],
      { code: "ERR_OUTBOUND_POLICY", reason: "unknown_partner" },
    ],
    [
      "its own country",
      { partner: "se" },
      [],
      { code: "ERR_OUTBOUND_POLICY", reason: "unknown_partner" },
    ],
    [
      "the reason 'other'",
      { reason: "REASON_CATEGORY_OTHER" },
      [],
      { code: "ERR_OUTBOUND_POLICY", reason: "reason_not_allowed" },
    ],
    [
      "no legal basis",
      { personal: { legalBasis: " " } as unknown as PersonalJson },
      [],
      { code: "ERR_OUTBOUND_POLICY", reason: "no_legal_basis" },
    ],
    [
      "a deadline already passed",
      { deadline: NOW.toISOString() },
      [],
      { code: "ERR_SCHEMA_INVALID", reason: "past" },
    ],
    [
      "an id that crossed already",
      {},
      CROSSED,
      { code: "ERR_REPLAY", reason: "duplicate_referral" },
    ],
  ])("refused: %s", (_name, over, records, expected) => {
    expect(refusalOf(decideReferAbroad(ctx, view(records), cmd(over), NOW))).toEqual(expected);
  });

  it("withdraws its own referral: withdrawn to the partner's liaison, once", () => {
    const sent = planOf(decideReferAbroad(ctx, view(), cmd(), NOW)).records;
    const w = { type: "withdrawn", reason: "WITHDRAW_REASON_CHILD_FOUND" } as const;
    const p = planOf(decideFollowAbroad(ctx, view(sent), REF, w, "w1", NOW));
    expect(sends(p)).toEqual(["withdrawn -> no:liaison"]);
    expect(
      refusalOf(decideFollowAbroad(ctx, view([...sent, ...p.records]), REF, w, "w2", NOW)),
    ).toEqual({
      code: "ERR_NOT_AUTHORISED",
      reason: "ended",
    });
    // Not a referral the contact point sent (a municipality's, or none).
    expect(refusalOf(decideFollowAbroad(ctx, view(CROSSED), REF, w, "w3", NOW))).toEqual({
      code: "ERR_NOT_FOUND",
      reason: "unknown_referral",
    });
  });
});

describe("liaison: the contact point's commands", () => {
  const waiting = (): LiaisonRecord[] => [
    {
      k: "inbound",
      referralId: REF,
      openedId: "o1",
      origin: "no:liaison",
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      deadline: DEADLINE,
      opened: Buffer.from(
        bytesOf(
          event("opened", "no:liaison", ME, REF, {
            urgency: "URGENCY_HIGH",
            reason: "REASON_CATEGORY_MISSING",
            destination: { country: "se" },
            deadline: DEADLINE,
            personal: jweTo("se-liaison-enc"),
          }),
        ),
      ).toString("base64"),
      at: NOW.toISOString(),
    },
  ];

  it.each(["accepted", "declined"] as const)(
    "%s on behalf of the country: answered to the partner",
    (decision) => {
      const p = planOf(decideAnswer(ctx, view(waiting()), REF, decision, undefined, NOW));
      expect(sends(p)).toEqual([`${decision} -> no:liaison`]);
      expect(p.records).toMatchObject([{ k: "answered", decision }]);
    },
  );

  it("routes a waiting referral to a municipality through its hub", () => {
    const p = planOf(decideRouteTo(ctx, view(waiting()), REF, "1880", NOW));
    expect(sends(p)).toEqual(["forwarded -> se:hub:bergslagen"]);
    // The hub is told the municipality the contact point chose, not the partner's bare country.
    const [o] = p.send;
    expect(o !== undefined && "issue" in o ? o.issue.body : undefined).toMatchObject({
      destination: { country: "se", municipality: "1880" },
    });
    expect(p.records).toMatchObject([{ k: "inbound", routedTo: "se:hub:bergslagen" }]);
  });

  it.each<[string, LiaisonRecord[], string, ReturnType<typeof refusalOf>]>([
    ["nothing waits", [], "1880", { code: "ERR_NOT_AUTHORISED", reason: "not_pending" }],
    [
      "it was answered already",
      [
        ...waiting(),
        { k: "answered", referralId: REF, decision: "accepted", eventId: "a", at: "" },
      ],
      "1880",
      { code: "ERR_NOT_AUTHORISED", reason: "not_pending" },
    ],
    [
      "the code is unknown",
      waiting(),
      "9999",
      { code: "ERR_UNKNOWN_MUNICIPALITY", reason: "unknown" },
    ],
    [
      "the municipality is not on the trust list",
      waiting(),
      "0180",
      { code: "ERR_UNKNOWN_MUNICIPALITY", reason: "unknown" },
    ],
  ])("refuses when %s", (_name, records, code, expected) => {
    expect(refusalOf(decideRouteTo(ctx, view(records), REF, code, NOW))).toEqual(expected);
    if (code !== "9999" && code !== "0180")
      expect(refusalOf(decideAnswer(ctx, view(records), REF, "accepted", undefined, NOW))).toEqual(
        expected,
      );
  });
});

describe("liaison: deadlines at the border", () => {
  const T = "2026-12-01T12:00:00.000Z";
  const after = new Date("2026-12-01T12:00:01.000Z");
  const outOpened: LiaisonRecord = {
    k: "out",
    eventId: "o1",
    referralId: REF,
    type: "opened",
    partner: "no",
    from: MALMO,
    deadline: T,
    urgency: "URGENCY_IMMEDIATE",
    at: "",
  };
  const inPending: LiaisonRecord = {
    k: "inbound",
    referralId: REF,
    openedId: "o1",
    origin: "no:liaison",
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    deadline: T,
    opened: "",
    at: "",
  };
  const stateOf = (records: LiaisonRecord[]) => {
    const state = new LiaisonState();
    for (const r of records) state.apply(r);
    return state;
  };

  it("a referral sent abroad that the partner has not answered: escalated to the coordinator, and its sender told", () => {
    const [w] = stateOf([outOpened]).overdue(after);
    const p = decideBorderEscalation(ctx, w!, after)!;
    expect(sends(p)).toEqual(["escalated -> se:coordinator", `escalated -> ${MALMO}`]);
    expect(p.records).toMatchObject([{ k: "escalated", referralId: REF }]);
    const [o] = p.send;
    expect(o !== undefined && "issue" in o ? o.issue.body : undefined).toMatchObject({
      holder: "no:liaison",
      deadline: T,
    });
  });

  it("a partner's referral the contact point has not acted on: escalated to the coordinator", () => {
    const [w] = stateOf([inPending]).overdue(after);
    const p = decideBorderEscalation(ctx, w!, after)!;
    expect(sends(p)).toEqual(["escalated -> se:coordinator"]);
    const [o] = p.send;
    expect(o !== undefined && "issue" in o ? o.issue.body : undefined).toMatchObject({
      holder: ME,
    });
  });

  it.each<[string, LiaisonRecord[]]>([
    [
      "the partner accepted",
      [
        outOpened,
        { k: "relayed-in", eventId: "r", referralId: REF, type: "accepted", to: MALMO, at: "" },
      ],
    ],
    [
      "the partner declined",
      [
        outOpened,
        { k: "relayed-in", eventId: "r", referralId: REF, type: "declined", to: MALMO, at: "" },
      ],
    ],
    [
      "the contact point answered",
      [inPending, { k: "answered", referralId: REF, decision: "accepted", eventId: "a", at: "" }],
    ],
    [
      "the contact point routed it to a hub, and the hub receipted it",
      [
        inPending,
        { ...inPending, routedTo: "se:hub:vast" } as LiaisonRecord,
        { k: "taken", referralId: REF, by: "se:hub:vast", eventId: "t", at: "" },
      ],
    ],
    [
      "it was escalated already",
      [outOpened, { k: "escalated", referralId: REF, eventId: "e", at: "" }],
    ],
  ])("nothing once %s", (_name, records) => {
    expect(stateOf(records).overdue(after)).toEqual([]);
  });

  it("a receipt from the partner does not settle it: only an answer does", () => {
    const records: LiaisonRecord[] = [
      outOpened,
      { k: "relayed-in", eventId: "r", referralId: REF, type: "received", to: MALMO, at: "" },
    ];
    expect(
      stateOf(records)
        .overdue(after)
        .map((w) => w.referralId),
    ).toEqual([REF]);
  });

  it("nothing before the deadline", () => {
    expect(stateOf([outOpened]).overdue(new Date("2026-12-01T11:59:59.000Z"))).toEqual([]);
  });
});
