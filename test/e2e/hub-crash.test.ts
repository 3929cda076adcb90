import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import {
  LocalCountry,
  spawnService,
  waitFor,
  writeServiceFiles,
  type ServiceProcess,
  samplePersonal,
} from "@stafett/devkit";
import { createLogger } from "@stafett/shared";
import { expectNoRefusals } from "../support/flow.js";

const log = createLogger({ service: "e2e", level: process.env.LOG_LEVEL ?? "silent" });
const N = 1_000;
let se: LocalCountry;
let hub: ServiceProcess | undefined;

beforeAll(async () => {
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log, servicesOff: true });
  await se.startGateway("se:municipality:0180");
  await se.startGateway("se:municipality:1480");
}, 60_000);

afterAll(async () => {
  await hub?.kill();
  await se?.stop();
});

describe("the hub process killed mid-flow", () => {
  it(
    `loses and doubles nothing: ${N} referrals, each received once, each sender with one receipt`,
    { timeout: 120_000 },
    async () => {
      const env = writeServiceFiles(
        se.country,
        "se:hub:vast",
        join(se.stateRoot, "hub-process"),
        se.natsUrl,
        undefined,
        se.nkeySeed("se:hub:vast"),
      );
      hub = spawnService("hub", env);
      await hub.ready;

      const stockholm = se.gateway("0180").gateway;
      const goteborg = se.gateway("1480").gateway;
      const ids: string[] = [];
      const sending = Promise.all(
        Array.from({ length: N }, (_, i) =>
          stockholm
            .openReferral({
              urgency: "URGENCY_NORMAL",
              reason: "REASON_CATEGORY_MOVED",
              destination: { country: "se", municipality: "1480" },
              personal: samplePersonal(i),
            })
            .then((opened) => ids.push(opened.referralId)),
        ),
      );
      // Kill the hub while referrals are in flight: some receipted, most not yet.
      const forwardedAtOrigin = () =>
        ids.filter((id) => stockholm.referral(id)?.timeline.some((e) => e.type === "forwarded"))
          .length;
      const receipted = () =>
        ids.filter((id) => stockholm.referral(id)?.timeline.some((e) => e.type === "received"))
          .length;
      await waitFor(() => receipted() >= 20, {
        timeoutMs: 20_000,
        message: "the hub to start receipting",
      });
      await hub.kill();
      // The fault happened: the process died by SIGKILL with referrals in flight.
      expect(hub.child.signalCode).toBe("SIGKILL");
      const atKill = receipted();
      const t0 = Date.now();
      await sending;
      console.log(
        `sent ${N} in ${Date.now() - t0} ms after the kill; ${atKill} receipted at the kill`,
      );
      expect(atKill).toBeLessThan(N);

      hub = spawnService("hub", env);
      await hub.ready;
      const t1 = Date.now();
      await waitFor(
        () =>
          ids.every((id) => goteborg.inboxItem(id) !== undefined) &&
          receipted() === N &&
          forwardedAtOrigin() === N,
        {
          timeoutMs: 60_000,
          message: "every referral forwarded and receipted after the restart",
        },
      );

      console.log(`caught up in ${Date.now() - t1} ms`);
      for (const id of ids) {
        const timeline = stockholm.referral(id)?.timeline.map((e) => e.type) ?? [];
        expect(timeline.filter((t) => t === "received")).toHaveLength(1);
        expect(timeline.filter((t) => t === "forwarded")).toHaveLength(1);
      }
      expect(goteborg.state.inbox.size).toBe(N);

      // Nothing doubled reached anyone: no receiver refused a replay (no quarantine entry, no
      // rejected), and the queue is empty.
      await expectNoRefusals({
        countries: { se: { servers: se.natsUrl, ...se.admin } },
        gateways: [stockholm, goteborg],
      });
      const nc = await connect({ servers: se.natsUrl, ...se.admin });
      try {
        const jsm = await jetstreamManager(nc);
        await waitFor(async () => (await jsm.streams.info("STAFETT_SE")).state.messages === 0, {
          timeoutMs: 10_000,
          message: "the work queue to drain",
        });
      } finally {
        await nc.close();
      }
    },
  );
});
