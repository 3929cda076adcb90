/**
 * Clocks that disagree. A hub whose clock runs an hour ahead would issue receipts and forwards
 * every receiver refuses as stale (and its own `rejected` too), stranding its region: it finds
 * out by comparing its clock with the broker's, reports not ready with ERR_CLOCK_SKEW and a
 * coded line, issues nothing and holds the referrals; once its clock is right it is ready again
 * and every referral is accepted and closed, once, nothing refused.
 *
 * And where a refusal for staleness happens all the same (a municipality whose clock is behind
 * refuses the hub's forward; a coordinator whose clock is behind refuses the escalation), it
 * reaches a person: the hub escalates the refused hand-on to the national coordinator, and sends
 * the refused escalation again until the coordinator takes it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { start as startCoordinator, type RunningCoordinator } from "@stafett/coordinator";
import { LocalCountry, waitFor } from "@stafett/devkit";
import { start as startGateway, type RunningGateway } from "@stafett/gateway";
import { start as startHub, type RunningHub } from "@stafett/hub";
import { coordinatorId, createLogger } from "@stafett/shared";
import { expectNoRefusals, openTo, refusals } from "../support/flow.js";
import { capturedLog } from "../support/logs.js";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
const HOUR = 3_600_000;
let se: LocalCountry;
let hub: RunningHub;
let behind: RunningGateway;
let coordinator: RunningCoordinator;
const offset = { hub: HOUR, coordinator: -HOUR };
const hubLog = capturedLog("hub");

beforeAll(async () => {
  se = await LocalCountry.start({
    municipalities: ["0180", "1480", "1481"],
    log,
    servicesOff: true,
  });
  await se.startGateway("se:municipality:0180");
  await se.startGateway("se:municipality:1480");
  // Mölndal's gateway and the coordinator run behind, and do not check (they refuse as stale).
  behind = await startGateway(
    {
      ...se.runtime("se:municipality:1481"),
      now: () => new Date(Date.now() - HOUR),
      clock: false,
    },
    log,
  );
  coordinator = await startCoordinator(
    {
      ...se.runtime(coordinatorId("se")),
      now: () => new Date(Date.now() + offset.coordinator),
      clock: false,
    },
    log,
  );
  hub = await startHub(
    {
      ...se.runtime("se:hub:vast"),
      now: () => new Date(Date.now() + offset.hub),
      clock: { checkMs: 300 },
      escalationRetryMs: 300,
      tickMs: 200,
    },
    hubLog.log,
  );
}, 60_000);

afterAll(async () => {
  await hub?.stop();
  await behind?.stop();
  await coordinator?.stop();
  await se?.stop();
});

const open = (to: string, i: number) => openTo(se.gateway("0180").gateway, to, i);

describe("a hub whose clock runs an hour ahead", () => {
  it(
    "is not ready and issues nothing until its clock is right; then every referral flows, nothing refused",
    { timeout: 60_000 },
    async () => {
      const origin = se.gateway("0180").gateway;
      const destination = se.gateway("1480").gateway;
      expect(hub.hub.readiness()).toMatchObject({
        ready: false,
        problems: [{ code: "ERR_CLOCK_SKEW", reason: "ahead" }],
      });
      expect(hubLog.coded("ERR_CLOCK_SKEW", "ahead")).toHaveLength(1);
      const ids: string[] = [];
      for (const i of [0, 1, 2, 3]) ids.push(await open("1480", i));
      // The hub takes the four messages and holds them.
      const nc = await connect({ servers: se.natsUrl, ...se.admin });
      try {
        const jsm = await jetstreamManager(nc);
        await waitFor(
          async () => (await jsm.consumers.info("STAFETT_SE", "se-hub-vast")).num_ack_pending === 4,
          { timeoutMs: 10_000, message: "the hub holding the four referrals" },
        );
      } finally {
        await nc.close();
      }
      const types = (id: string) => origin.referral(id)?.timeline.map((e) => e.type) ?? [];
      expect(ids.map(types)).toEqual(ids.map(() => ["opened"]));
      await expectNoRefusals({
        countries: { se: { servers: se.natsUrl, ...se.admin } },
        gateways: [origin, destination],
      });

      offset.hub = 0;
      await waitFor(() => hub.hub.readiness().ready, {
        timeoutMs: 10_000,
        message: "the hub ready once its clock is right",
      });
      expect(hubLog.coded("ERR_CLOCK_SKEW", "resolved")).toHaveLength(1);
      await waitFor(() => ids.every((id) => destination.inboxItem(id) !== undefined), {
        timeoutMs: 10_000,
        message: "the held referrals forwarded",
      });
      for (const id of ids) await destination.answer(id, "accepted");
      await waitFor(() => ids.every((id) => types(id).includes("closed")), {
        timeoutMs: 10_000,
        message: "every referral accepted and closed",
      });
      for (const id of ids)
        expect(types(id)).toEqual(["opened", "received", "forwarded", "accepted", "closed"]);
      await expectNoRefusals({
        countries: { se: { servers: se.natsUrl, ...se.admin } },
        gateways: [origin, destination],
        hubs: [hub.hub],
      });
    },
  );
});

describe("a refusal for staleness of the hub's hand-on", () => {
  it(
    "reaches the national coordinator, and an escalation it refused is sent again until taken",
    { timeout: 60_000 },
    async () => {
      const origin = se.gateway("0180").gateway;
      const id = await open("1481", 9);
      const history = () => hub.hub.state.referrals.get(id)?.history ?? [];
      // Mölndal refuses the forward (its clock is behind); the hub escalates; the coordinator,
      // also behind, refuses the escalation.
      await waitFor(
        () =>
          history().some(
            (h) => h.type === "refused" && h.code === "ERR_STALE" && h.by === coordinatorId("se"),
          ),
        { timeoutMs: 15_000, message: "the coordinator refusing the escalation" },
      );
      expect(coordinator.coordinator.escalations.size).toBe(0);
      offset.coordinator = 0;
      await waitFor(
        () => [...coordinator.coordinator.escalations.values()].some((e) => e.referralId === id),
        { timeoutMs: 15_000, message: "the escalation taken by the coordinator" },
      );
      expect(history().map((h) => `${h.type}${h.by === undefined ? "" : ` ${h.by}`}`)).toEqual([
        "received se:municipality:0180",
        "forwarded",
        "rejected se:municipality:1481",
        "escalated",
        "refused se:coordinator",
        "escalated",
      ]);
      const escalations = [...coordinator.coordinator.escalations.values()];
      expect(escalations.filter((e) => e.referralId === id)).toMatchObject([
        { from: "se:hub:vast", holder: "se:municipality:1481" },
      ]);
      // The origin was told once.
      const t = origin.referral(id)?.timeline.map((e) => e.type) ?? [];
      expect(t.filter((x) => x === "escalated")).toHaveLength(1);
      // The two refusals, each quarantined where it happened, and nothing else.
      const { quarantined } = await refusals({
        countries: { se: { servers: se.natsUrl, ...se.admin } },
      });
      expect(quarantined.map((q) => `${q.consumer} ${q.code} ${q.reason}`)).toEqual([
        "se-municipality-1481 ERR_STALE future",
        "se-coordinator ERR_STALE future",
      ]);
    },
  );
});
