/**
 * The referral the benchmarks send: Stockholm (0180) refers a child to Göteborg (1480), so the
 * `opened` event goes to the Väst hub and its personal part is sealed to the two real
 * recipients, the hub and the destination municipality, exactly as the gateway does it.
 */
import { randomUUID } from "node:crypto";
import { samplePersonal } from "@stafett/devkit";
import { type IssueInput } from "@stafett/shared";

export const ORIGIN = "se:municipality:0180";
export const DESTINATION = "se:municipality:1480";
export const HUB = "se:hub:vast";
export const MUNICIPALITIES = ["0180", "1480"] as const;

export interface ReferralRequestBody {
  referralId: string;
  urgency: "URGENCY_HIGH";
  reason: "REASON_CATEGORY_MISSING";
  destination: { country: string; municipality: string };
  personal: ReturnType<typeof samplePersonal>;
}

/** What `POST /v1/referrals` receives. */
export function referralRequest(n: number, referralId = randomUUID()): ReferralRequestBody {
  return {
    referralId,
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    destination: { country: "se", municipality: "1480" },
    personal: samplePersonal(n),
  };
}

/** What the gateway passes to `issue` for that request (see services/gateway/src/gateway.ts). */
export function openedInput(n: number, referralId = randomUUID(), now = new Date()): IssueInput {
  const deadline = new Date(now.getTime() + 12 * 3_600_000).toISOString();
  return {
    type: "opened",
    addressee: HUB,
    referralId,
    time: now,
    body: {
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      destination: { country: "se", municipality: "1480" },
      deadline,
    },
    personal: samplePersonal(n),
    sealTo: [HUB, DESTINATION],
  };
}
