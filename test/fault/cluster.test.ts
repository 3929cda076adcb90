import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, startCluster, waitFor, type NatsCluster } from "@stafett/devkit";
import { countryAccounts, createBrokerUsers, createLogger } from "@stafett/shared";
import { createCountry } from "@stafett/devkit";
import { caseKeys, expectEachOnce, expectNoRefusals, sendReferrals } from "../support/flow.js";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
const N = 200;
let cluster: NatsCluster;
let se: LocalCountry;

beforeAll(async () => {
  const country = await createCountry({ code: "se", municipalities: ["0180", "1480"] });
  const users = createBrokerUsers(country.trustList);
  // Every node runs the country's accounts: the streams in STAFETT, each organisation in its own.
  cluster = await startCluster(3, {
    config: {
      accounts: countryAccounts({
        trustList: country.trustList,
        nkeys: users.nkeys,
        limits: { replicas: 3 },
      }),
    },
  });
  se = await LocalCountry.start({
    country,
    municipalities: [],
    log,
    natsUrl: cluster.urls,
    nkeys: users.seeds,
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
      const ids: string[] = [];
      const sending = sendReferrals(stockholm, caseKeys(N), ids);
      await waitFor(() => goteborg.state.inbox.size >= 30, {
        timeoutMs: 30_000,
        message: "the flow to start",
      });
      const leader = await cluster.streamLeader("STAFETT_SE");
      expect(leader).toBeDefined();
      await leader?.kill();
      // The fault happened: the leader is down, and another node took the stream over.
      expect(leader?.running).toBe(false);
      await waitFor(
        async () => {
          const next = await cluster.streamLeader("STAFETT_SE");
          return next !== undefined && next !== leader;
        },
        { timeoutMs: 30_000, message: "a new stream leader" },
      );
      await sending;
      await leader?.restart();
      await expectEachOnce(stockholm, goteborg, ids);
      expect(stockholm.state.sent.size).toBe(N);
      await expectNoRefusals({
        countries: { se: { servers: cluster.urls, ...se.admin } },
        gateways: [stockholm, goteborg],
        hubs: [se.hub("vast").hub],
      });
    },
  );
});
