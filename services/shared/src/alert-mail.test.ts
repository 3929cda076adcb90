import { describe, expect, it } from "vitest";
import { alertMail } from "./alert-mail.js";
import type { Notification } from "./notifications.js";

const escalated: Notification = {
  id: "1b5f3c2e-8a77-5d0e-9c41-2f6a7e9b0d13",
  type: "referral.escalated",
  at: "2026-11-27T03:04:11.000Z",
  data: {
    org: "se:coordinator",
    referralId: "4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10",
    urgency: "URGENCY_IMMEDIATE",
    deadline: "2026-11-27T03:04:10.000Z",
    by: "se:hub:vast",
    to: "se:municipality:1480",
    path: "/v1/escalations",
  },
};

describe("an alert's e-mail", () => {
  it("says what happened in Swedish and English, with the ids, the deadline and the link", () => {
    const mail = alertMail(escalated, "https://stafett.example.org/v1/escalations");
    expect(mail.subject).toBe(
      "[Stafett] Hänvisning eskalerad: tidsfristen passerade / Referral escalated: its deadline passed",
    );
    expect(mail.messageId).toBe("<1b5f3c2e-8a77-5d0e-9c41-2f6a7e9b0d13@stafett>");
    const [sv, en] = mail.text.split("\n----\n");
    expect(sv).toContain("Hänvisning: 4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10");
    expect(sv).toContain("Brådska: omedelbar / immediate");
    expect(sv).toContain("Tidsfrist: 2026-11-27T03:04:10.000Z");
    expect(sv).toContain("Öppna: https://stafett.example.org/v1/escalations");
    expect(en).toContain("Referral: 4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10");
    expect(en).toContain("Held by: se:municipality:1480");
    expect(en).toContain("Open: https://stafett.example.org/v1/escalations");
  });
});
