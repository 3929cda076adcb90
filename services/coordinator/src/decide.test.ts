import { describe, expect, it } from "vitest";
import { EVENT_TYPES } from "@stafett/shared";
import { event, NOW, verified } from "../../../test/support/decisions.js";
import {
  decide,
  decideHandling,
  evolve,
  type Escalation,
  type CoordinatorRecord,
  type RegionReport,
} from "./decide.js";
import { DEFAULT_STALE_AFTER_MS, overviewOf } from "./overview.js";

const REF = "44444444-4444-4444-8444-444444444444";
/** No region has reported yet. */
const NONE: ReadonlyMap<string, RegionReport> = new Map();

describe("coordinator decide", () => {
  it("an escalation enters its inbox, with who held the referral and where it was going", () => {
    const e = event("escalated", "se:hub:vast", "se:coordinator", REF, {
      deadline: "2026-12-01T09:00:00.000Z",
      urgency: "URGENCY_IMMEDIATE",
      holder: "se:municipality:1480",
      destination: { country: "se", municipality: "1480" },
    });
    expect(decide(verified(e), NONE, NOW)).toEqual({
      send: [],
      records: [
        {
          k: "escalation",
          escalation: {
            referralId: REF,
            eventId: e.id,
            from: "se:hub:vast",
            holder: "se:municipality:1480",
            deadline: "2026-12-01T09:00:00.000Z",
            urgency: "URGENCY_IMMEDIATE",
            destination: { country: "se", municipality: "1480" },
            at: NOW.toISOString(),
          },
        },
      ],
    });
  });

  it.each(EVENT_TYPES.filter((t) => t !== "escalated" && t !== "reported"))(
    "%s: nothing",
    (type) => {
      const e = event(type, "se:hub:vast", "se:coordinator", REF, {} as never);
      expect(decide(verified(e), NONE, NOW)).toEqual({ send: [], records: [] });
    },
  );

  it("an escalated event without its body: nothing", () => {
    const e = { ...event("escalated", "se:hub:vast", "se:coordinator", REF, {} as never) };
    delete e.escalated;
    expect(decide(verified(e), NONE, NOW)).toEqual({ send: [], records: [] });
  });
});

describe("coordinator decideHandling: acknowledge, assign, resolve", () => {
  const ID = "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3";
  const OPEN: Escalation = {
    referralId: REF,
    eventId: ID,
    from: "se:hub:vast",
    holder: "se:municipality:1480",
    deadline: "2026-12-01T09:00:00.000Z",
    at: "2026-12-01T09:00:01.000Z",
  };
  const BY = { subject: "nils", name: "Nils Påhittad" };
  const ACK = { by: "nils", name: "Nils Påhittad", at: "2026-12-01T09:05:00.000Z" };
  const RESOLVED = { ...ACK, note: "Reached Göteborg on call." };

  it.each([
    ["unknown", undefined, { step: "acknowledged" }, "ERR_NOT_FOUND", "unknown"],
    [
      "ack twice",
      { ...OPEN, acknowledged: ACK },
      { step: "acknowledged" },
      "ERR_NOT_AUTHORISED",
      "acknowledged",
    ],
    [
      "assign before ack",
      OPEN,
      { step: "assigned", officer: "Nils" },
      "ERR_NOT_AUTHORISED",
      "not_acknowledged",
    ],
    [
      "resolve before ack",
      OPEN,
      { step: "resolved", note: "x" },
      "ERR_NOT_AUTHORISED",
      "not_acknowledged",
    ],
    [
      "after resolved",
      { ...OPEN, acknowledged: ACK, resolved: RESOLVED },
      { step: "assigned", officer: "Nils" },
      "ERR_NOT_AUTHORISED",
      "resolved",
    ],
  ] as const)("%s: refused", (_name, escalation, handling, code, reason) => {
    const v = decideHandling(escalation, ID, handling, BY, NOW);
    expect(v).toMatchObject({ refuse: { code, reason } });
  });

  it("acknowledge, assign, resolve: each one journal record, applied by evolve", () => {
    const escalations = new Map([[ID, OPEN]]);
    const steps = [
      { step: "acknowledged" },
      { step: "assigned", officer: "Nils Påhittad" },
      { step: "resolved", note: "Reached Göteborg on call." },
    ] as const;
    for (const h of steps) {
      const v = decideHandling(escalations.get(ID), ID, h, BY, NOW);
      expect(v).toEqual({
        send: [],
        records: [
          {
            k: "handled",
            eventId: ID,
            by: "nils",
            name: "Nils Påhittad",
            at: NOW.toISOString(),
            ...h,
          },
        ],
      });
      if ("records" in v)
        for (const r of v.records)
          evolve({ escalations, reports: new Map() }, r as CoordinatorRecord);
    }
    const at = NOW.toISOString();
    expect(escalations.get(ID)).toEqual({
      ...OPEN,
      acknowledged: { by: "nils", name: "Nils Påhittad", at },
      assignee: "Nils Påhittad",
      resolved: { by: "nils", name: "Nils Påhittad", at, note: "Reached Göteborg on call." },
    });
  });
});

describe("coordinator decideReport: a hub's report of its own region, the newest standing", () => {
  const COUNTS = {
    triage: 1,
    forwarded: 2,
    immediate: 1,
    normal: 2,
    overdue: 1,
    escalated: 1,
    nearestDeadline: "2026-12-01T09:30:00.000Z",
  };
  const at = (ms: number) => new Date(NOW.getTime() + ms).toISOString();
  /** A report of `region` from `source`, taken `offsetMs` from now. */
  const report = (source: string, region: string, offsetMs = 0, counts: object = COUNTS) => {
    const e = event("reported", source, "se:coordinator", "", { region, ...counts });
    delete (e as { referralId?: string }).referralId;
    return verified({ ...e, id: `reported-${source}-${offsetMs}`, time: at(offsetMs) });
  };
  const held = (offsetMs: number): ReadonlyMap<string, RegionReport> =>
    new Map([
      [
        "vast",
        {
          region: "vast",
          hub: "se:hub:vast",
          eventId: "earlier",
          reportedAt: at(offsetMs),
          receivedAt: at(offsetMs),
          counts: {},
        },
      ],
    ]);

  it("the region's own hub: its latest report, with when it was taken and received", () => {
    expect(decide(report("se:hub:vast", "vast", -1_000), NONE, NOW)).toEqual({
      send: [],
      records: [
        {
          k: "reported",
          report: {
            region: "vast",
            hub: "se:hub:vast",
            eventId: "reported-se:hub:vast--1000",
            reportedAt: at(-1_000),
            receivedAt: NOW.toISOString(),
            counts: COUNTS,
          },
        },
      ],
    });
  });

  it.each([
    ["a hub of another region", "se:hub:syd", "vast", "ERR_NOT_AUTHORISED", "not_region_hub"],
    [
      "a partner country's hub of that region",
      "no:hub:vast",
      "vast",
      "ERR_NOT_AUTHORISED",
      "not_region_hub",
    ],
    [
      "a municipality of the region",
      "se:municipality:1480",
      "vast",
      "ERR_NOT_AUTHORISED",
      "not_hub",
    ],
    ["the liaison", "se:liaison", "vast", "ERR_NOT_AUTHORISED", "not_hub"],
  ] as const)("%s: refused", (_name, source, region, code, reason) => {
    expect(decide(report(source, region), NONE, NOW)).toMatchObject({ refuse: { code, reason } });
  });

  it("dated more than 30 s ahead: refused as future; 30 s ahead: taken", () => {
    expect(decide(report("se:hub:vast", "vast", 30_001), NONE, NOW)).toMatchObject({
      refuse: { code: "ERR_STALE", reason: "future", field: "/time" },
    });
    expect(decide(report("se:hub:vast", "vast", 30_000), NONE, NOW)).toMatchObject({
      records: [{ k: "reported" }],
    });
  });

  it("dated at a leap second (23:59:60Z, a valid RFC 3339 time JS cannot read): refused", () => {
    // Date.parse gives NaN: every comparison is false, so the report would pass the 30 s rule,
    // be taken over any held one, never be marked stale, and never be replaced by evolve.
    const v = report("se:hub:vast", "vast");
    const leap = verified({ ...v.event, time: "2026-12-31T23:59:60Z" });
    expect(decide(leap, NONE, NOW)).toMatchObject({
      refuse: { code: "ERR_MALFORMED", reason: "time", field: "/time" },
    });
    expect(decide(leap, held(-1_000), NOW)).toMatchObject({ refuse: { reason: "time" } });
  });

  it("not newer than the region's latest: ignored, neither refused nor applied", () => {
    for (const offset of [-5_000, -1_000])
      expect(decide(report("se:hub:vast", "vast", offset), held(-1_000), NOW)).toEqual({
        send: [],
        records: [],
      });
    expect(decide(report("se:hub:vast", "vast", -999), held(-1_000), NOW)).toMatchObject({
      records: [{ k: "reported" }],
    });
  });

  it.each([
    ["states and urgencies disagree", { triage: 2, normal: 1, nearestDeadline: at(0) }],
    ["more overdue than open", { triage: 1, normal: 1, overdue: 2, nearestDeadline: at(0) }],
    ["more escalated than open", { triage: 1, high: 1, escalated: 2, nearestDeadline: at(0) }],
    ["open referrals without a nearest deadline", { forwarded: 1, high: 1 }],
    ["a nearest deadline with none open", { nearestDeadline: at(0) }],
  ])("counts that disagree (%s): refused as inconsistent", (_name, counts) => {
    expect(decide(report("se:hub:vast", "vast", 0, counts), NONE, NOW)).toMatchObject({
      refuse: { code: "ERR_MALFORMED", reason: "inconsistent" },
    });
  });

  it("evolve keeps the newest per region whatever order the records come in", () => {
    const state = {
      escalations: new Map<string, Escalation>(),
      reports: new Map<string, RegionReport>(),
    };
    const newer = decide(report("se:hub:vast", "vast", -1_000), NONE, NOW);
    const older = decide(report("se:hub:vast", "vast", -2_000), NONE, NOW);
    for (const v of [newer, older]) if ("records" in v) for (const r of v.records) evolve(state, r);
    expect(state.reports.get("vast")?.reportedAt).toBe(at(-1_000));
  });
});

describe("overviewOf: every region, stale ones marked, and the totals", () => {
  const report = (region: string, ageMs: number, counts: RegionReport["counts"]): RegionReport => ({
    region,
    hub: `se:hub:${region}`,
    eventId: `e-${region}`,
    reportedAt: new Date(NOW.getTime() - ageMs).toISOString(),
    receivedAt: new Date(NOW.getTime() - ageMs).toISOString(),
    counts,
  });
  const reports = new Map([
    [
      "vast",
      report("vast", 10_000, {
        triage: 1,
        forwarded: 1,
        high: 2,
        overdue: 1,
        nearestDeadline: "2026-12-01T09:00:00.000Z",
      }),
    ],
    [
      "syd",
      report("syd", DEFAULT_STALE_AFTER_MS + 1, {
        forwarded: 3,
        immediate: 3,
        nearestDeadline: "2026-12-01T08:00:00.000Z",
      }),
    ],
  ]);

  it("one row per region, the unreported and the stale marked, totals over the latest reports", () => {
    const o = overviewOf(reports, ["nord", "syd", "vast"], NOW);
    expect(o.regions.map((r) => [r.region, r.open, r.stale])).toEqual([
      ["nord", 0, true],
      ["syd", 3, true],
      ["vast", 2, false],
    ]);
    expect(o.regions[0]?.reportedAt).toBeUndefined();
    expect(o.totals).toEqual({
      open: 5,
      triage: 1,
      forwarded: 4,
      rerouted: 0,
      immediate: 3,
      high: 2,
      normal: 0,
      overdue: 1,
      escalated: 0,
      nearestDeadline: "2026-12-01T08:00:00.000Z",
    });
  });

  it("a report exactly as old as the stale limit (12 minutes) is not yet stale", () => {
    const o = overviewOf(new Map([["vast", report("vast", DEFAULT_STALE_AFTER_MS, {})]]), [], NOW);
    expect(o.regions.map((r) => [r.region, r.stale])).toEqual([["vast", false]]);
  });
});
