import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, waitFor, samplePersonal } from "@stafett/devkit";
import { createLogger } from "@stafett/shared";
import { Api, type TimelineView } from "../e2e/api.js";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
let se: LocalCountry;
let api: Api;

beforeAll(async () => {
  // A stream that holds ten messages (new referrals stop at half), and no hub to drain it yet.
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    servicesOff: true,
    provision: { maxMsgs: 10 },
    publishDeadlineMs: 1_000,
    intakeHighWater: 0.5,
  });
  await se.startGateway("se:municipality:1480");
  const gw = await se.startGateway("se:municipality:0180");
  api = await Api.for(se, "se:municipality:0180", gw.url);
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

const post = (key: string) =>
  api.post<{ referralId: string; code?: string }>(
    "/v1/referrals",
    {
      urgency: "URGENCY_NORMAL",
      reason: "REASON_CATEGORY_MOVED",
      destination: { country: "se", municipality: "1480" },
      personal: samplePersonal(),
    },
    { "idempotency-key": key },
  );

describe("back-pressure at the gateway", () => {
  it(
    "a full stream gets 503 with Retry-After, nothing accepted is lost, and it resumes by itself",
    { timeout: 60_000 },
    async () => {
      const accepted: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await post(`k${i}`);
        expect(r.status).toBe(202);
        accepted.push(r.body.referralId);
      }
      // The intake check is cached for half a second: let it see the fill.
      await new Promise((r) => setTimeout(r, 600));
      const full = await post("k5");
      expect(full.status).toBe(503);
      expect(full.headers.get("retry-after")).toBe("5");
      expect(full.body.code).toBe("ERR_UNAVAILABLE");
      expect((await api.get<TimelineView[]>("/v1/referrals")).body).toHaveLength(5);

      // The hub starts and drains the queue; the case system's retry (same key) now succeeds.
      await se.startHub("se:hub:vast");
      await waitFor(async () => (await post("k5")).status === 202, {
        timeoutMs: 20_000,
        intervalMs: 250,
        message: "the gateway to accept again",
      });
      await waitFor(
        async () => {
          const all = (await api.get<TimelineView[]>("/v1/referrals")).body;
          return (
            all.length === 6 && all.every((t) => t.timeline.some((e) => e.type === "received"))
          );
        },
        { timeoutMs: 20_000, message: "every accepted referral receipted" },
      );
    },
  );

  it(
    "an unreachable broker gets 503, and the gateway resumes when it is back",
    { timeout: 60_000 },
    async () => {
      await se.server?.kill();
      const down = await post("down-1");
      expect(down.status).toBe(503);
      await se.server?.restart();
      await waitFor(async () => (await post("down-1")).status === 202, {
        timeoutMs: 30_000,
        intervalMs: 500,
        message: "the gateway to accept after the broker returned",
      });
      const all = (await api.get<TimelineView[]>("/v1/referrals")).body;
      expect(all).toHaveLength(7);
    },
  );
});
