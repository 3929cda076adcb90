import { describe, expect, it } from "vitest";
import { EVENT_TYPES } from "@stafett/shared";
import { event, NOW, verified } from "../../../test/support/decisions.js";
import { decide } from "./decide.js";

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
