import { describe, expect, it } from "vitest";
import { StafettError, type DestinationJson, type EventJson } from "@stafett/shared";
import { derivedId } from "@stafett/shared";
import {
  bytesOf,
  event,
  forwardedOf,
  kinds,
  NOW,
  planOf,
  refusalOf,
  sends,
  verified,
} from "../../../test/support/decisions.js";
import {
  deadlineOf,
  decide,
  decideAnswer,
  decideFollow,
  routeOpened,
  type GatewayContext,
  type GatewayView,
} from "./decide.js";
import { DEFAULT_DEADLINES } from "./gateway.js";
import { GatewayState, type GatewayRecord, type ReferralStatus } from "./state.js";

const ME = "se:municipality:0180"; // Stockholm
const MY_HUB = "se:hub:stockholm";
const DEST = "se:municipality:1480"; // Göteborg
const DEST_HUB = "se:hub:vast";
const REF = "22222222-2222-4222-8222-222222222222";
const DEADLINE = "2026-12-02T10:00:00.000Z";
const AT = { offset: 0, length: 0 };

const ctx: GatewayContext = {
  id: ME,
  derive: (...parts) => derivedId(ME, ...parts),
  country: "se",
  serves: (hub) => [MY_HUB, DEST_HUB, "se:hub:bergslagen"].includes(hub),
};

/** A gateway that sent REF (to Göteborg, through the Väst hub) and saw it reach `status`. */
function sentAs(
  status: ReferralStatus | "none",
  destination: DestinationJson = { country: "se", municipality: "1480" },
) {
  const state = new GatewayState();
  const apply = (r: GatewayRecord) => state.apply(r, AT);
  const t = NOW.toISOString();
  if (status !== "none") {
    apply({
      k: "sent",
      referralId: REF,
      openedId: "o1",
      hub: destination.country === "se" ? DEST_HUB : `${destination.country}:liaison`,
      destination,
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      deadline: DEADLINE,
      at: t,
    });
    if (status !== "opened")
      apply({
        k: "timeline",
        referralId: REF,
        entry: {
          type: status,
          at: t,
          eventId: "x",
          by: DEST,
          ...(status === "forwarded" ? { to: DEST } : {}),
        },
      });
  }
  return view(state);
}

/** A gateway with REF in its inbox, handed over by the Väst hub, in `status`. */
function inboxAs(status: "pending" | "accepted" | "declined" | "withdrawn" | "none") {
  const state = new GatewayState();
  const apply = (r: GatewayRecord) => state.apply(r, AT);
  const t = NOW.toISOString();
  if (status !== "none") {
    apply({
      k: "inbox",
      referralId: REF,
      forwardedId: "f1",
      openedId: "o1",
      origin: "se:municipality:1280",
      via: MY_HUB,
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      deadline: DEADLINE,
      bytes: "",
      at: t,
    });
    if (status === "accepted" || status === "declined")
      apply({ k: "answered", referralId: REF, decision: status, eventId: "a1", at: t });
    if (status === "withdrawn")
      apply({ k: "inbox-event", referralId: REF, type: "withdrawn", eventId: "w1", at: t });
  }
  return view(state);
}

function view(state: GatewayState): GatewayView {
  return { sent: (id) => state.sent.get(id), inbox: (id) => state.inbox.get(id) };
}

function opened(
  from: string,
  dest: DestinationJson = { country: "se", municipality: "1480" },
): EventJson {
  return event(
    "opened",
    from,
    DEST_HUB,
    REF,
    {
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      destination: dest,
      deadline: DEADLINE,
      personal: "jwe",
    },
    "o1",
  );
}

describe("gateway routeOpened: where a new referral goes first", () => {
  it.each<[string, DestinationJson, unknown]>([
    [
      "a municipality: its region's hub, sealed to hub and municipality",
      { country: "se", municipality: "1480" },
      { addressee: DEST_HUB, sealTo: [DEST_HUB, DEST] },
    ],
    [
      "a region: its hub alone",
      { country: "se", region: "bergslagen" },
      { addressee: "se:hub:bergslagen", sealTo: ["se:hub:bergslagen"] },
    ],
    [
      "nothing but the country: the own region's hub",
      { country: "se" },
      { addressee: MY_HUB, sealTo: [MY_HUB] },
    ],
    [
      "another country: the partner's liaison, sealed to it and the own liaison",
      { country: "no" },
      { addressee: "no:liaison", sealTo: ["no:liaison", "se:liaison"], partnerCountry: "no" },
    ],
  ])("%s", (_name, dest, expected) => {
    expect(routeOpened(ctx, dest)).toEqual(expected);
  });

  it.each<[string, DestinationJson, string, string]>([
    [
      "an unknown municipality code",
      { country: "se", municipality: "9999" },
      "ERR_UNKNOWN_MUNICIPALITY",
      "unknown",
    ],
    [
      "a region no hub serves",
      { country: "se", region: "atlantis" },
      "ERR_ADDRESS_INVALID",
      "unknown_region",
    ],
  ])("refuses %s", (_name, dest, code, reason) => {
    const r = routeOpened(ctx, dest);
    expect(r).toBeInstanceOf(StafettError);
    expect(r).toMatchObject({ code, reason });
  });

  it("refuses a referral with no place named when the own hub is not in the trust list", () => {
    expect(routeOpened({ ...ctx, serves: () => false }, { country: "se" })).toMatchObject({
      code: "ERR_ADDRESS_INVALID",
      reason: "unknown_region",
    });
  });
});

describe("gateway deadlineOf", () => {
  it("takes the urgency's default when none is asked for", () => {
    expect(deadlineOf(undefined, "URGENCY_IMMEDIATE", DEFAULT_DEADLINES, NOW)).toBe(
      new Date(NOW.getTime() + 3_600_000).toISOString(),
    );
  });
  it("refuses a deadline that has passed", () => {
    expect(deadlineOf(NOW.toISOString(), "URGENCY_HIGH", DEFAULT_DEADLINES, NOW)).toMatchObject({
      code: "ERR_SCHEMA_INVALID",
      reason: "past",
    });
  });
});

describe("gateway decide: what comes back about a referral it sent", () => {
  it.each<[string, EventJson, string]>([
    [
      "received",
      event("received", DEST_HUB, ME, REF, { ofEventId: "o1", digest: "d" }),
      "received",
    ],
    [
      "rejected",
      event("rejected", DEST_HUB, ME, REF, { code: "ERR_KEY_REVOKED", reason: "revoked" }),
      "rejected",
    ],
    [
      "escalated",
      event("escalated", DEST_HUB, ME, REF, { deadline: DEADLINE, holder: DEST }),
      "escalated",
    ],
  ])("%s: a timeline entry", (_name, e, type) => {
    const p = planOf(decide(ctx, sentAs("opened"), verified(e), bytesOf(e), NOW));
    expect(p.send).toEqual([]);
    expect(p.records).toMatchObject([{ k: "timeline", entry: { type, by: DEST_HUB } }]);
  });

  it.each<EventJson>([
    event("received", DEST_HUB, ME, REF, { ofEventId: "o1", digest: "d" }),
    event("rejected", DEST_HUB, ME, REF, { code: "ERR_KEY_REVOKED", reason: "revoked" }),
    event("escalated", DEST_HUB, ME, REF, { deadline: DEADLINE, holder: DEST }),
  ])("$type about a referral it never sent: nothing", (e) => {
    expect(planOf(decide(ctx, sentAs("none"), verified(e), bytesOf(e), NOW))).toEqual({
      send: [],
      records: [],
    });
  });

  it.each<[string, DestinationJson, string, string]>([
    [
      "to a municipality of the notifying hub's region: forwarded to it",
      { country: "se", municipality: "1480", region: "vast" },
      "forwarded",
      DEST,
    ],
    [
      "to a municipality of another region: re-routed to that hub",
      { country: "se", municipality: "1880" },
      "rerouted",
      "se:hub:bergslagen",
    ],
    [
      "to a region: re-routed to its hub",
      { country: "se", region: "bergslagen" },
      "rerouted",
      "se:hub:bergslagen",
    ],
    ["abroad: forwarded to the partner's liaison", { country: "no" }, "forwarded", "no:liaison"],
  ])("its hub's notice of where it went %s", (_name, destination, type, to) => {
    const { v, bytes } = forwardedOf(DEST_HUB, ME, opened(ME), { destination });
    const p = planOf(decide(ctx, sentAs("received"), v, bytes, NOW));
    expect(p.records).toMatchObject([{ k: "timeline", entry: { type, to } }]);
  });

  it("an acceptance relayed by the hub: the timeline says accepted, and the sender closes its side", () => {
    const inner = event("accepted", DEST, DEST_HUB, REF, { ofEventId: "o1" });
    const { v, bytes } = forwardedOf(DEST_HUB, ME, inner);
    const p = planOf(decide(ctx, sentAs("forwarded"), v, bytes, NOW));
    expect(sends(p)).toEqual([`closed -> ${DEST_HUB}`]);
    expect(p.records).toMatchObject([
      { entry: { type: "accepted", by: DEST } },
      { entry: { type: "closed", by: ME } },
    ]);
  });

  it("a partner's acceptance of a referral sent abroad is closed through the own liaison", () => {
    const inner = event("accepted", "no:liaison", "se:municipality:0180", REF, { ofEventId: "o1" });
    const { v, bytes } = forwardedOf("se:liaison", ME, inner);
    const p = planOf(decide(ctx, sentAs("forwarded", { country: "no" }), v, bytes, NOW));
    expect(sends(p)).toEqual(["closed -> no:liaison"]);
    const [o] = p.send;
    expect(o !== undefined && "issue" in o ? o.issue.partnerCountry : undefined).toBe("no");
  });

  it.each<[string, string, DestinationJson, EventJson, string]>([
    [
      "a decline by the municipality, relayed by its hub",
      DEST_HUB,
      { country: "se", municipality: "1480" },
      event("declined", DEST, DEST_HUB, REF, {
        ofEventId: "o1",
        reason: "DECLINE_REASON_NOT_RESIDENT",
      }),
      "declined",
    ],
    [
      "a partner's receipt, relayed by the own liaison",
      "se:liaison",
      { country: "no" },
      event("received", "no:liaison", ME, REF, { ofEventId: "o1", digest: "d" }),
      "received",
    ],
    [
      "a partner's refusal, relayed by the own liaison",
      "se:liaison",
      { country: "no" },
      event("rejected", "no:liaison", ME, REF, { code: "ERR_SCHEMA_INVALID", reason: "type" }),
      "rejected",
    ],
  ])("%s: a timeline entry, nothing sent", (_name, relayer, dest, inner, type) => {
    const { v, bytes } = forwardedOf(relayer, ME, inner);
    const p = planOf(decide(ctx, sentAs("forwarded", dest), v, bytes, NOW));
    expect(p.send).toEqual([]);
    expect(p.records).toMatchObject([{ entry: { type, by: inner.source } }]);
  });
});

describe("gateway decide: only parties on the referral's path move it", () => {
  const NOT_ON_PATH = { code: "ERR_NOT_AUTHORISED", reason: "not_on_path" };
  it.each<[string, string, DestinationJson, EventJson]>([
    [
      "a partner's acceptance of a domestic referral, relayed by the own liaison",
      "se:liaison",
      { country: "se", municipality: "1480" },
      event("accepted", "no:liaison", ME, REF, { ofEventId: "o1" }),
    ],
    [
      "an acceptance by a municipality the relaying hub does not serve",
      DEST_HUB,
      { country: "se", municipality: "1480" },
      event("accepted", "se:municipality:0380", DEST_HUB, REF, { ofEventId: "o1" }),
    ],
    [
      "an acceptance relayed by a hub that never held the referral",
      "se:hub:mitt",
      { country: "se", municipality: "1480" },
      event("accepted", "se:municipality:0380", "se:hub:mitt", REF, { ofEventId: "o1" }),
    ],
    [
      "an acceptance of a referral sent abroad, from a third country",
      "se:liaison",
      { country: "no" },
      event("accepted", "fi:liaison", ME, REF, { ofEventId: "o1" }),
    ],
    [
      "an acceptance of a referral sent abroad, relayed by a hub",
      DEST_HUB,
      { country: "no" },
      event("accepted", "no:liaison", ME, REF, { ofEventId: "o1" }),
    ],
  ])("refuses %s", (_name, relayer, dest, inner) => {
    const { v, bytes } = forwardedOf(relayer, ME, inner);
    expect(refusalOf(decide(ctx, sentAs("forwarded", dest), v, bytes, NOW))).toEqual(NOT_ON_PATH);
  });

  it.each<[string, EventJson]>([
    [
      "a receipt from a hub that is not its first addressee",
      event("received", "se:hub:mitt", ME, REF, { ofEventId: "o1", digest: "d" }),
    ],
    [
      "a refusal with free text from another municipality",
      event("rejected", "se:municipality:1490", ME, REF, {
        code: "ERR_OUTBOUND_POLICY",
        reason: "Child found safe, case closed",
      }),
    ],
    [
      "an escalation from a hub off its path",
      event("escalated", "se:hub:nord", ME, REF, { deadline: DEADLINE, holder: DEST }),
    ],
  ])("refuses %s", (_name, e) => {
    expect(refusalOf(decide(ctx, sentAs("forwarded"), verified(e), bytesOf(e), NOW))).toEqual(
      NOT_ON_PATH,
    );
  });

  it("refuses a notice from a hub off the referral's path", () => {
    const { v, bytes } = forwardedOf("se:hub:nord", ME, opened(ME), {
      destination: { country: "se", region: "nord" },
    });
    expect(refusalOf(decide(ctx, sentAs("received"), v, bytes, NOW))).toEqual(NOT_ON_PATH);
  });

  it("takes an escalation from a hub the referral was re-routed to", () => {
    const { v: notice, bytes: nb } = forwardedOf(DEST_HUB, ME, opened(ME), {
      destination: { country: "se", municipality: "1880" },
    });
    const state = new GatewayState();
    state.apply(
      {
        k: "sent",
        referralId: REF,
        openedId: "o1",
        hub: DEST_HUB,
        destination: { country: "se", municipality: "1480" },
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        deadline: DEADLINE,
        at: NOW.toISOString(),
      },
      AT,
    );
    for (const r of planOf(decide(ctx, view(state), notice, nb, NOW)).records) state.apply(r, AT);
    const e = event("escalated", "se:hub:bergslagen", ME, REF, { deadline: DEADLINE, holder: "x" });
    expect(planOf(decide(ctx, view(state), verified(e), bytesOf(e), NOW)).records).toMatchObject([
      { entry: { type: "escalated", by: "se:hub:bergslagen" } },
    ]);
  });

  it("puts a referral routed back to its origin in the origin's inbox", () => {
    const { v, bytes } = forwardedOf(MY_HUB, ME, opened(ME), {
      destination: { country: "se", municipality: "0180" },
      deadline: DEADLINE,
    });
    expect(planOf(decide(ctx, sentAs("received"), v, bytes, NOW)).records).toMatchObject([
      { k: "inbox", referralId: REF, via: MY_HUB },
    ]);
  });

  it("refuses an update of an inbox item not from its origin through the hub that handed it over", () => {
    for (const [relayer, from] of [
      [MY_HUB, "se:municipality:1490"],
      [DEST_HUB, "se:municipality:1280"],
    ] as const) {
      const inner = event("withdrawn", from, relayer, REF, { reason: "WITHDRAW_REASON_OTHER" });
      const { v, bytes } = forwardedOf(relayer, ME, inner);
      expect(refusalOf(decide(ctx, inboxAs("pending"), v, bytes, NOW))).toEqual({
        code: "ERR_NOT_AUTHORISED",
        reason: "not_origin",
      });
    }
  });
});

describe("gateway decide: what is handed to it", () => {
  it("a referral forwarded to it enters the inbox, pending", () => {
    const { v, bytes } = forwardedOf(DEST_HUB, ME, opened("se:municipality:1280"), {
      deadline: DEADLINE,
    });
    const p = planOf(decide(ctx, inboxAs("none"), v, bytes, NOW));
    expect(p.records).toMatchObject([
      { k: "inbox", via: DEST_HUB, origin: "se:municipality:1280" },
    ]);
  });

  it("the same referral handed over again: nothing new", () => {
    const { v, bytes } = forwardedOf(DEST_HUB, ME, opened("se:municipality:1280"));
    expect(planOf(decide(ctx, inboxAs("pending"), v, bytes, NOW)).records).toEqual([]);
  });

  it.each(["updated", "withdrawn", "closed"] as const)(
    "the origin's %s, relayed: noted on the inbox item",
    (type) => {
      const body = {
        updated: { urgency: "URGENCY_IMMEDIATE" },
        withdrawn: { reason: "WITHDRAW_REASON_CHILD_FOUND" },
        closed: { outcome: "CLOSE_OUTCOME_OTHER" },
      }[type];
      const inner = event(type, "se:municipality:1280", MY_HUB, REF, body as never);
      const { v, bytes } = forwardedOf(MY_HUB, ME, inner);
      expect(kinds(planOf(decide(ctx, inboxAs("pending"), v, bytes, NOW)))).toEqual([
        "inbox-event",
      ]);
      expect(kinds(planOf(decide(ctx, inboxAs("none"), v, bytes, NOW)))).toEqual([]);
    },
  );

  it.each<EventJson>([
    event("accepted", DEST, ME, REF, { ofEventId: "o1" }),
    event("declined", DEST, ME, REF, { ofEventId: "o1", reason: "DECLINE_REASON_OTHER" }),
    event("updated", DEST, ME, REF, {}),
    event("withdrawn", DEST, ME, REF, { reason: "WITHDRAW_REASON_OTHER" }),
    event("closed", DEST, ME, REF, { outcome: "CLOSE_OUTCOME_OTHER" }),
    event("opened", DEST, ME, REF, {
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      destination: { country: "se" },
      deadline: DEADLINE,
      personal: "j",
    }),
  ])("$type addressed straight to it (not through a hub): nothing", (e) => {
    expect(planOf(decide(ctx, sentAs("forwarded"), verified(e), bytesOf(e), NOW))).toEqual({
      send: [],
      records: [],
    });
  });
});

describe("gateway decideFollow: the sender's update, withdrawal or closing", () => {
  const follow = (status: ReferralStatus | "none", type: "updated" | "withdrawn" | "closed") =>
    decideFollow(ctx, sentAs(status), { referralId: REF, type, body: {}, eventId: "e9" }, NOW);

  it.each([
    "opened",
    "received",
    "forwarded",
    "accepted",
    "declined",
    "escalated",
    "rejected",
  ] as const)("while %s: sent to the first addressee and put on the timeline", (status) => {
    for (const type of ["updated", "withdrawn", "closed"] as const) {
      const p = planOf(follow(status, type));
      expect(sends(p)).toEqual([`${type} -> ${DEST_HUB}`]);
      expect(p.records).toMatchObject([{ k: "timeline", entry: { type, eventId: "e9", by: ME } }]);
    }
  });

  it.each<[ReferralStatus | "none", ReturnType<typeof refusalOf>]>([
    ["closed", { code: "ERR_NOT_AUTHORISED", reason: "ended" }],
    ["withdrawn", { code: "ERR_NOT_AUTHORISED", reason: "ended" }],
    ["none", { code: "ERR_NOT_FOUND", reason: "unknown_referral" }],
  ])("refused when %s: %j", (status, expected) => {
    expect(refusalOf(follow(status, "updated"))).toEqual(expected);
  });

  it("seals a new personal part to the hub and the municipality that holds it", () => {
    const v = sentAs("forwarded");
    const p = planOf(
      decideFollow(
        ctx,
        v,
        {
          referralId: REF,
          type: "updated",
          body: {},
          eventId: "e9",
          personal: { child: {} } as never,
        },
        NOW,
      ),
    );
    const [o] = p.send;
    expect(o !== undefined && "issue" in o ? o.issue.sealTo : undefined).toEqual([DEST_HUB, DEST]);
  });
});

describe("gateway decideAnswer: an officer accepts or declines an inbox item", () => {
  it.each(["accepted", "declined"] as const)(
    "%s while pending: answered to whoever handed it over",
    (decision) => {
      const p = planOf(
        decideAnswer(
          ctx,
          inboxAs("pending"),
          REF,
          decision,
          decision === "declined" ? { reason: "DECLINE_REASON_OTHER" } : undefined,
          NOW,
        ),
      );
      expect(sends(p)).toEqual([`${decision} -> ${MY_HUB}`]);
      expect(p.records).toMatchObject([{ k: "answered", decision }]);
    },
  );

  it.each<["accepted" | "declined" | "withdrawn" | "none", ReturnType<typeof refusalOf>]>([
    ["accepted", { code: "ERR_NOT_AUTHORISED", reason: "not_pending" }],
    ["declined", { code: "ERR_NOT_AUTHORISED", reason: "not_pending" }],
    ["withdrawn", { code: "ERR_NOT_AUTHORISED", reason: "not_pending" }],
    ["none", { code: "ERR_NOT_FOUND", reason: "unknown_referral" }],
  ])("refused when the item is %s: %j", (status, expected) => {
    expect(refusalOf(decideAnswer(ctx, inboxAs(status), REF, "accepted", undefined, NOW))).toEqual(
      expected,
    );
  });

  it("answers with the same event id when decided again (a retried request)", () => {
    const id = (p: ReturnType<typeof decideAnswer>) => {
      const [o] = planOf(p).send;
      return o !== undefined && "issue" in o ? o.issue.id : "";
    };
    expect(id(decideAnswer(ctx, inboxAs("pending"), REF, "accepted", undefined, NOW))).toBe(
      id(
        decideAnswer(
          ctx,
          inboxAs("pending"),
          REF,
          "accepted",
          undefined,
          new Date(NOW.getTime() + 1),
        ),
      ),
    );
  });
});

describe("gateway decide: a referral handed again after it declined it", () => {
  it("is pending in the inbox again", () => {
    const { v, bytes } = forwardedOf(
      MY_HUB,
      ME,
      opened("se:municipality:1280"),
      {
        deadline: DEADLINE,
      },
      { id: "f2" },
    );
    expect(planOf(decide(ctx, inboxAs("declined"), v, bytes, NOW)).records).toMatchObject([
      { k: "inbox", forwardedId: "f2" },
    ]);
  });
});

describe("gateway decide: a hand-over under the id of an inbox item it did not decline (review 2026-12-03)", () => {
  // Any hub may forward to any municipality (the policy is by role, not region), and a hub that
  // re-routed a referral holds its signed opened: before, such a hand-over reset an accepted,
  // withdrawn or closed item to pending, with the forwarder as its path (so the origin's
  // follow-ups, relayed by the hub that handed it over, were refused not_origin) and the
  // forwarder's deadline.
  it.each(["accepted", "withdrawn"] as const)(
    "another hub re-forwarding the same referral after it was %s: refused, the item as it was",
    (status) => {
      const { v, bytes } = forwardedOf(
        "se:hub:bergslagen",
        ME,
        opened("se:municipality:1280"),
        { deadline: "2026-12-31T10:00:00.000Z" },
        { id: "f9" },
      );
      expect(refusalOf(decide(ctx, inboxAs(status), v, bytes, NOW))).toMatchObject({
        code: "ERR_REPLAY",
        reason: "duplicate_referral",
      });
    },
  );

  it("another opened under the id of an accepted item, handed over by the own liaison: refused", () => {
    const reopened = event(
      "opened",
      "no:liaison",
      DEST_HUB,
      REF,
      {
        urgency: "URGENCY_NORMAL",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "se", municipality: "0180" },
        deadline: "2026-12-31T10:00:00.000Z",
        personal: "jwe",
      },
      "o2",
    );
    const { v, bytes } = forwardedOf("se:liaison", ME, reopened, {}, { id: "f8" });
    expect(refusalOf(decide(ctx, inboxAs("accepted"), v, bytes, NOW))).toMatchObject({
      code: "ERR_REPLAY",
      reason: "duplicate_referral",
    });
  });

  it("another origin's opened under the id of an item it declined: refused (the origin is never rewritten)", () => {
    const { v, bytes } = forwardedOf(
      MY_HUB,
      ME,
      opened("se:municipality:1281"),
      { deadline: DEADLINE },
      { id: "f7" },
    );
    expect(refusalOf(decide(ctx, inboxAs("declined"), v, bytes, NOW))).toMatchObject({
      code: "ERR_REPLAY",
    });
  });
});
