import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { LocalCountry, startCluster, waitFor, type NatsCluster } from "@stafett/devkit";
import { createLogger, quarantineStreamName, samplePersonal, StafettError } from "@stafett/shared";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
const N = 200;
let cluster: NatsCluster;
let se: LocalCountry;

beforeAll(async () => {
  cluster = await startCluster(3);
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    natsUrl: cluster.urls,
    provision: { replicas: 3 },
  });
}, 90_000);

afterAll(async () => {
  await se?.stop();
  await cluster?.stop();
});

describe("a 3-node JetStream cluster with R3 streams", () => {
  it(
    `killing the stream leader mid-flow loses and doubles nothing, and the flow resumes (${N} referrals)`,
    { timeout: 120_000 },
    async () => {
      const stockholm = se.gateway("0180").gateway;
      const goteborg = se.gateway("1480").gateway;
      const ids = Array.from({ length: N }, () => randomUUID());
      // A case system that retries with the same Idempotency-Key until the gateway accepts.
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
            await new Promise((r) => setTimeout(r, 250));
          }
        }
      };
      const sending = (async () => {
        for (const [i, id] of ids.entries()) await send(id, i);
      })();
      await waitFor(() => goteborg.state.inbox.size >= 30, {
        timeoutMs: 30_000,
        message: "the flow to start",
      });
      const leader = await cluster.streamLeader("STAFETT_SE");
      expect(leader).toBeDefined();
      await leader?.kill();
      await sending;
      await leader?.restart();
      const settled = (id: string): boolean => {
        const t = stockholm.referral(id)?.timeline.map((e) => e.type) ?? [];
        return (
          goteborg.inboxItem(id) !== undefined && t.includes("received") && t.includes("forwarded")
        );
      };
      await waitFor(() => ids.every(settled), {
        timeoutMs: 60_000,
        message: "every referral at Göteborg and receipted",
      }).catch((err: unknown) => {
        const missing = ids.filter((id) => !settled(id));
        const why = missing.map(
          (id) =>
            `${goteborg.inboxItem(id) === undefined ? "no-inbox" : "inbox"}/${(stockholm.referral(id)?.timeline.map((e) => e.type) ?? []).join("+")}`,
        );
        throw new Error(`${missing.length} unsettled: ${why.slice(0, 8).join(", ")}`, {
          cause: err,
        });
      });
      for (const id of ids) {
        const t = stockholm.referral(id)?.timeline.map((e) => e.type) ?? [];
        expect(t.filter((x) => x === "opened")).toHaveLength(1);
        expect(t.filter((x) => x === "received")).toHaveLength(1);
        expect(t.filter((x) => x === "forwarded")).toHaveLength(1);
      }
      expect(goteborg.state.inbox.size).toBe(N);
      expect(stockholm.state.sent.size).toBe(N);
      const nc = await connect({ servers: cluster.urls });
      try {
        const jsm = await jetstreamManager(nc);
        expect((await jsm.streams.info(quarantineStreamName("se"))).state.messages).toBe(0);
      } finally {
        await nc.close();
      }
    },
  );
});
