import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, waitFor } from "@stafett/devkit";
import { createLogger } from "@stafett/shared";
import { caseKeys, expectEachOnce, expectNoRefusals, sendReferrals } from "../support/flow.js";

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
    const ids: string[] = [];
    const sending = sendReferrals(stockholm, caseKeys(N), ids);
    await waitFor(() => goteborg.state.inbox.size >= 20, {
      timeoutMs: 30_000,
      message: "the flow to start",
    });
    await se.server?.kill();
    // The fault happened: the broker is down while referrals are being sent.
    expect(se.server?.running).toBe(false);
    await new Promise((r) => setTimeout(r, 500));
    await se.server?.restart();
    await sending;
    await expectEachOnce(stockholm, goteborg, ids);
    await expectNoRefusals({
      countries: { se: { servers: se.natsUrl, ...se.admin } },
      gateways: [stockholm, goteborg],
      hubs: [se.hub("vast").hub],
    });
  });
});
