/**
 * A message that crashes the hub process every time it is handled (a poison referral, by the
 * party runtime's fault hook), among others in flight. A supervisor restarts the hub after each
 * crash, as systemd would. The others were in flight with it at the first crash and come back
 * as suspects too; each is handled alone, and they finish. The poison crashes the process alone
 * twice, is then quarantined (ERR_HANDLER_FAILED crash_loop) without being handled again, its
 * sender is told, and the work queue is left empty: nothing stuck, nothing stranded with it.
 */
import { once } from "node:events";
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
} from "@stafett/devkit";
import { createLogger } from "@stafett/shared";
import { openTo, refusals } from "../support/flow.js";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
let se: LocalCountry;
let hub: ServiceProcess | undefined;
let supervising = true;

beforeAll(async () => {
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    servicesOff: true,
    provision: { backoffMs: [500, 1_000, 1_000, 1_000, 1_000], maxDeliver: 6 },
  });
  await se.startGateway("se:municipality:0180");
  await se.startGateway("se:municipality:1480");
}, 60_000);

afterAll(async () => {
  supervising = false;
  await hub?.kill();
  await se?.stop();
});

describe("a message that crashes the hub on every attempt", () => {
  it(
    "is quarantined with its reason and its sender told, while every other referral finishes",
    { timeout: 120_000 },
    async () => {
      const origin = se.gateway("0180").gateway;
      const destination = se.gateway("1480").gateway;
      // The poison is opened first (its id drawn by the gateway), while no hub runs.
      const poison = await openTo(origin, "1480", 99);
      const env = {
        ...writeServiceFiles(
          se.country,
          "se:hub:vast",
          join(se.stateRoot, "hub-process"),
          se.natsUrl,
          undefined,
          se.nkeySeed("se:hub:vast"),
        ),
        STAFETT_TEST_POISON: poison,
      };
      const output: string[] = [];
      let crashes = 0;
      const supervisor = (async () => {
        while (supervising) {
          hub = spawnService("hub", env);
          hub.child.stdout?.on("data", (b: Buffer) => output.push(b.toString()));
          const [, signal] = (await once(hub.child, "exit")) as [number | null, string | null];
          if (!supervising) return;
          expect(signal).toBe("SIGKILL");
          crashes += 1;
        }
      })();
      let accepting = true;
      const acceptor = (async () => {
        while (accepting) {
          for (const item of destination.state.inbox.values())
            if (item.status === "pending")
              await destination.answer(item.referralId, "accepted").catch(() => undefined);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      try {
        const ids = await Promise.all(
          [0, 1, 2, 3, 4, 5, 6, 7].map((i) => openTo(origin, "1480", i)),
        );
        const types = (id: string) => origin.referral(id)?.timeline.map((e) => e.type) ?? [];
        const rejected = () => origin.referral(poison)?.timeline.find((e) => e.type === "rejected");
        await waitFor(
          () =>
            rejected() !== undefined &&
            ids.every((id) => types(id).includes("closed") && types(id).includes("received")),
          { timeoutMs: 60_000, message: "the poison refused, every other referral closed" },
        );
        // It crashed the process once among the others, then twice alone; then quarantined.
        expect(crashes).toBe(3);
        expect(rejected()).toMatchObject({ code: "ERR_HANDLER_FAILED", reason: "crash_loop" });
        const { quarantined, rejected: others } = await refusals({
          countries: { se: { servers: se.natsUrl, ...se.admin } },
          gateways: [origin, destination],
        });
        expect(quarantined).toMatchObject([
          {
            code: "ERR_HANDLER_FAILED",
            reason: "crash_loop",
            consumer: "se-hub-vast",
            subject: "stafett.se.vast.hub.opened",
          },
        ]);
        expect(others).toEqual([`${origin.id} ${poison} ERR_HANDLER_FAILED`]);
        for (const id of ids) {
          const t = types(id);
          expect({
            id,
            n: ["opened", "received", "forwarded", "accepted", "closed"].map(
              (x) => t.filter((y) => y === x).length,
            ),
          }).toEqual({ id, n: [1, 1, 1, 1, 1] });
        }
        expect(destination.inboxItem(poison)).toBeUndefined();
        const coded = output
          .join("")
          .split("\n")
          .filter((l) => l.includes('"code":"ERR_HANDLER_FAILED"') && l.includes("crash_loop"));
        expect(coded.length).toBeGreaterThan(0);
        // Nothing left behind in the work queue.
        const nc = await connect({ servers: se.natsUrl, ...se.admin });
        try {
          const jsm = await jetstreamManager(nc);
          await waitFor(async () => (await jsm.streams.info("STAFETT_SE")).state.messages === 0, {
            timeoutMs: 10_000,
            message: "the work queue empty",
          });
        } finally {
          await nc.close();
        }
      } finally {
        accepting = false;
        await acceptor;
        supervising = false;
        await hub?.kill();
        await supervisor;
      }
    },
  );
});
