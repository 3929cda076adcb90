import { describe, expect, it } from "vitest";
import { EVENT_TYPES } from "@stafett/shared";
import { event, NOW, verified } from "../../../test/support/decisions.js";
import {
  decide,
  decideHandling,
  evolve,
  type Escalation,
  type CoordinatorRecord,
} from "./decide.js";

const REF = "44444444-4444-4444-8444-444444444444";

describe("coordinator decide", () => {
  it("an escalation enters its inbox, with who held the referral and where it was going", () => {
    const e = event("escalated", "se:hub:vast", "se:coordinator", REF, {
      deadline: "2026-12-01T09:00:00.000Z",
      urgency: "URGENCY_IMMEDIATE",
      holder: "se:municipality:1480",
      destination: { country: "se", municipality: "1480" },
    });
    expect(decide(verified(e), NOW)).toEqual({
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

  it.each(EVENT_TYPES.filter((t) => t !== "escalated"))("%s: nothing", (type) => {
    const e = event(type, "se:hub:vast", "se:coordinator", REF, {} as never);
    expect(decide(verified(e), NOW)).toEqual({ send: [], records: [] });
  });

  it("an escalated event without its body: nothing", () => {
    const e = { ...event("escalated", "se:hub:vast", "se:coordinator", REF, {} as never) };
    delete e.escalated;
    expect(decide(verified(e), NOW)).toEqual({ send: [], records: [] });
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
      if ("records" in v) for (const r of v.records) evolve(escalations, r as CoordinatorRecord);
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
