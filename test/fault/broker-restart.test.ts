import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, waitFor } from "@stafett/devkit";
import { createLogger, samplePersonal, StafettError } from "@stafett/shared";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
const N = 200;
let se: LocalCountry;

beforeAll(async () => {
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    publishDeadlineMs: 1_000,
  });
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

describe("the nats-server (file storage) killed and restarted mid-flow", () => {
  it(`loses nothing and doubles nothing (${N} referrals)`, { timeout: 120_000 }, async () => {
    const stockholm = se.gateway("0180").gateway;
    const goteborg = se.gateway("1480").gateway;
    const ids = Array.from({ length: N }, () => randomUUID());
    const send = async (referralId: string, i: number): Promise<void> => {
      for (;;) {
        try {
          await stockholm.openReferral(
            {
              referralId,
              urgency: "URGENCY_NORMAL",
              reason: "REASON_CATEGORY_MOVED",
              destination: { country: "se", municipality: "1480" },
              personal: samplePersonal(i),
            },
            `key-${referralId}`,
          );
          return;
        } catch (err) {
          if (err instanceof StafettError && err.code !== "ERR_UNAVAILABLE") throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    const sending = (async () => {
      for (const [i, id] of ids.entries()) await send(id, i);
    })();
    await waitFor(() => goteborg.state.inbox.size >= 20, {
      timeoutMs: 30_000,
      message: "the flow to start",
    });
    await se.server?.kill();
    await new Promise((r) => setTimeout(r, 500));
    await se.server?.restart();
    await sending;
    const settled = (id: string): boolean => {
      const t = stockholm.referral(id)?.timeline.map((e) => e.type) ?? [];
      return (
        goteborg.inboxItem(id) !== undefined && t.includes("received") && t.includes("forwarded")
      );
    };
    await waitFor(() => ids.every(settled), {
      timeoutMs: 60_000,
      message: "every referral delivered and receipted",
    });
    for (const id of ids) {
      const t = stockholm.referral(id)?.timeline.map((e) => e.type) ?? [];
      expect(t.filter((x) => x === "received")).toHaveLength(1);
      expect(t.filter((x) => x === "forwarded")).toHaveLength(1);
    }
    expect(goteborg.state.inbox.size).toBe(N);
  });
});
