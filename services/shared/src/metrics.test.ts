import { describe, expect, it } from "vitest";
import { ServiceMetrics, tallyReferrals, type ReferralView } from "./metrics.js";

const NOW = Date.parse("2026-12-01T12:00:00Z");
const min = 60_000;

function ref(p: Partial<ReferralView>): ReferralView {
  return {
    state: "forwarded",
    urgency: "URGENCY_HIGH",
    since: NOW - 10 * min,
    deadline: NOW + 600 * min,
    unaccepted: true,
    ...p,
  };
}

describe("tallyReferrals", () => {
  it("counts every state (0 for empty ones), the oldest unaccepted per urgency, due and overdue", () => {
    const t = tallyReferrals(
      [
        ref({ since: NOW - 30 * min }),
        ref({ since: NOW - 5 * min, deadline: NOW + 30 * min }),
        ref({ urgency: "URGENCY_IMMEDIATE", since: NOW - 2 * min, deadline: NOW - min }),
        // Accepted: counted by state, but not in the ages or deadlines.
        ref({ state: "accepted", since: NOW - 999 * min, deadline: NOW + min, unaccepted: false }),
      ],
      ["received", "forwarded", "accepted"],
      NOW,
    );
    expect(Object.fromEntries(t.byState)).toEqual({ received: 0, forwarded: 3, accepted: 1 });
    expect(Object.fromEntries(t.oldestUnacceptedSeconds)).toEqual({
      URGENCY_IMMEDIATE: 120,
      URGENCY_HIGH: 1_800,
      URGENCY_NORMAL: 0,
    });
    expect(Object.fromEntries(t.dueNextHour)).toEqual({
      URGENCY_IMMEDIATE: 0,
      URGENCY_HIGH: 1,
      URGENCY_NORMAL: 0,
    });
    expect(Object.fromEntries(t.overdue)).toEqual({
      URGENCY_IMMEDIATE: 1,
      URGENCY_HIGH: 0,
      URGENCY_NORMAL: 0,
    });
  });
});

describe("ServiceMetrics", () => {
  it("exposes a book with stafett_ names and no referral id in any label", async () => {
    const m = new ServiceMetrics({ defaultMetrics: false });
    const ids = ["3f0c6c8e-0d7c-4a57-9a51-5c2e2e7b7a10", "8d1f3f9a-4e52-4c6b-b1b7-7a2e9c4f1d22"];
    m.referralBook(
      "held",
      ["forwarded", "accepted"],
      () => ids.map((id, i) => ({ ...ref({ since: NOW - i * min }), id })),
      () => NOW,
    );
    m.refused.inc({ code: "ERR_SIGNATURE_INVALID" });
    m.escalationCount(() => 2);
    const text = await m.scrape();
    expect(text).toContain('stafett_referrals{kind="held",state="forwarded"} 2');
    expect(text).toContain('stafett_refused_messages_total{code="ERR_SIGNATURE_INVALID"} 1');
    expect(text).toContain("stafett_escalations_total 2");
    for (const id of ids) expect(text).not.toContain(id);
    for (const line of text.split("\n").filter((l) => l !== "" && !l.startsWith("#")))
      expect(line).toMatch(/^stafett_/);
  });

  it("keeps the escalation counter at what the state holds across scrapes", async () => {
    const m = new ServiceMetrics({ defaultMetrics: false });
    let n = 1;
    m.escalationCount(() => n);
    expect(await m.scrape()).toContain("stafett_escalations_total 1");
    n = 3;
    expect(await m.scrape()).toContain("stafett_escalations_total 3");
  });
});
