/**
 * The clock check after the broker restarts. The clock stream lives in the organisation's own
 * account, in memory: a broker restart (a fault of a real machine) loses it. A party that
 * remembered having created it must create it again, or it never compares its clock again: a
 * clock that then drifts goes unnoticed (the party stays ready and issues events everyone
 * refuses as stale), and a party that was not ready for skew when the broker restarted would
 * stay not ready for ever, its referrals held, even once its clock is right.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, waitFor } from "@stafett/devkit";
import { start as startHub, type RunningHub } from "@stafett/hub";
import { createLogger } from "@stafett/shared";
import { capturedLog } from "../support/logs.js";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
const HOUR = 3_600_000;
let se: LocalCountry;
let hub: RunningHub;
const offset = { hub: 0 };
const hubLog = capturedLog("hub");

beforeAll(async () => {
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log, servicesOff: true });
  hub = await startHub(
    {
      ...se.runtime("se:hub:vast"),
      now: () => new Date(Date.now() + offset.hub),
      clock: { checkMs: 300 },
      tickMs: 200,
    },
    hubLog.log,
  );
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  await se?.stop();
});

describe("the clock check across a broker restart (its memory clock stream is lost)", () => {
  it(
    "still notices a clock that drifts after the restart, and clears once it is right",
    { timeout: 60_000 },
    async () => {
      await waitFor(() => hub.hub.readiness().ready, { timeoutMs: 10_000, message: "ready" });
      await se.server?.restart();
      await waitFor(() => hub.hub.readiness().ready, {
        timeoutMs: 20_000,
        message: "the hub ready again after the restart",
      });
      offset.hub = HOUR;
      await waitFor(() => !hub.hub.readiness().ready, {
        timeoutMs: 10_000,
        message: "the hub noticing its clock an hour ahead after the restart",
      });
      expect(hub.hub.readiness()).toMatchObject({
        ready: false,
        problems: [{ code: "ERR_CLOCK_SKEW", reason: "ahead" }],
      });
      offset.hub = 0;
      await waitFor(() => hub.hub.readiness().ready, {
        timeoutMs: 10_000,
        message: "ready again once the clock is right",
      });
    },
  );
});
