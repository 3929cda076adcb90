import { describe, expect, it } from "vitest";
import { GatewayState, type TimelineType } from "./state.js";

/** Records' place in a journal; these tests never read them back. */
const NOWHERE = { offset: 0, length: 0 };
const REFERRAL = "9f1c2a4e-0b7d-4c1e-9a53-2f8e6d4b1c70";

function sentReferral(): GatewayState {
  const state = new GatewayState();
  state.apply(
    {
      k: "sent",
      referralId: REFERRAL,
      openedId: "0d3c8b9e-5f2a-4e61-8c47-1a9b7e2d3f50",
      hub: "se:hub:vast",
      destination: { country: "se", municipality: "1480" },
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      deadline: "2026-11-29T10:00:00.000Z",
      at: "2026-11-28T22:00:00.000Z",
    },
    NOWHERE,
  );
  return state;
}

function entry(state: GatewayState, type: TimelineType, n: number): void {
  state.apply(
    {
      k: "timeline",
      referralId: REFERRAL,
      entry: {
        type,
        at: `2026-11-28T22:00:0${n}.000Z`,
        eventId: `e${n}`,
        by: "se:hub:vast",
        ...(type === "forwarded" ? { to: "se:municipality:1480" } : {}),
      },
    },
    NOWHERE,
  );
}

describe("gateway state: the status of a sent referral", () => {
  it("follows the hub's receipt and then its forward", () => {
    const state = sentReferral();
    entry(state, "received", 1);
    expect(state.sent.get(REFERRAL)?.status).toBe("received");
    entry(state, "forwarded", 2);
    expect(state.sent.get(REFERRAL)?.status).toBe("forwarded");
    expect(state.sent.get(REFERRAL)?.holder).toBe("se:municipality:1480");
  });

  it("is not set back by a receipt that arrives after the forward (a retried publish)", () => {
    const state = sentReferral();
    entry(state, "forwarded", 1);
    entry(state, "received", 2);
    const ref = state.sent.get(REFERRAL);
    expect(ref?.status).toBe("forwarded");
    // The receipt is still on the timeline: only the status keeps the later step.
    expect(ref?.timeline.map((e) => e.type)).toEqual(["opened", "forwarded", "received"]);
  });

  it("stays accepted when later receipts arrive, and closes", () => {
    const state = sentReferral();
    entry(state, "accepted", 1);
    entry(state, "received", 2);
    entry(state, "forwarded", 3);
    expect(state.sent.get(REFERRAL)?.status).toBe("accepted");
    entry(state, "closed", 4);
    expect(state.sent.get(REFERRAL)?.status).toBe("closed");
  });
});
