/**
 * An operator's mistakes on a running country: a service's consumer deleted, the trust bucket
 * deleted, the whole stream deleted. Each service that depends on what went missing logs it with
 * a code, reports not ready, and, once provisioning has put things back, re-binds by itself
 * (no restart): the handoff resumes, and a revocation published after the trust bucket came back
 * applies at once. A message that runs out of deliveries is logged with a code too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { LocalCountry, sampleOpened, waitFor, waitForValue } from "@stafett/devkit";
import {
  Bus,
  buildTrustList,
  createLogger,
  issue,
  natsAuth,
  ORG_API_PREFIX,
  publishTrustList,
  quarantineStreamName,
  quarantineSubject,
  signTrustList,
  type Logger,
} from "@stafett/shared";
import { caseKeys, sendReferrals } from "../support/flow.js";

/** Every log line of the country's services, parsed. */
const lines: Record<string, unknown>[] = [];
const log: Logger = createLogger(
  { service: "fault", level: "info" },
  {
    write(line: string) {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    },
  },
);
let se: LocalCountry;
let admin: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    servicesOff: true,
    // A short ack wait and few deliveries, for the max-deliveries case at the end.
    provision: { maxDeliver: 3, backoffMs: [1_000, 1_000] },
  });
  // Every service but the coordinator: the last test reads the coordinator's consumer itself.
  await Promise.all([
    se.startHub("se:hub:vast"),
    se.startHub("se:hub:stockholm"),
    se.startGateway("se:municipality:0180"),
    se.startGateway("se:municipality:1480"),
    se.startLiaison(),
  ]);
  admin = await connect({ servers: se.natsUrl, ...se.admin });
  jsm = await jetstreamManager(admin);
}, 60_000);

afterAll(async () => {
  await admin?.close();
  await se?.stop();
});

/** The code of every error line from `org`'s service (LocalCountry names the liaison "liaison"). */
const codesOf = (org: string): string[] =>
  lines
    .filter((l) => l.org === org && l.level === 50)
    .map((l) => (l.err as { code?: string } | undefined)?.code ?? "");

const hub = () => se.hub("vast").hub;
const stockholm = () => se.gateway("0180").gateway;
const goteborg = () => se.gateway("1480").gateway;
const allReady = () =>
  [...se.hubs.values()].every((h) => h.hub.readiness().ready) &&
  [...se.gateways.values()].every((g) => g.gateway.readiness().ready) &&
  se.liaison?.liaison.readiness().ready === true;

async function delivered(ids: readonly string[], timeoutMs = 20_000): Promise<void> {
  await waitFor(() => ids.every((id) => goteborg().inboxItem(id) !== undefined), {
    timeoutMs,
    message: "the referrals at Göteborg",
  });
}

describe("an operator deletes what running services depend on", () => {
  it("a deleted consumer: its service logs ERR_BUS_CONSUMER_MISSING, is not ready, and resumes once provisioned", async () => {
    await sendReferrals(stockholm(), caseKeys(1)).then(() => undefined);
    expect(allReady()).toBe(true);
    await jsm.consumers.delete("STAFETT_SE", "se-hub-vast");
    await waitFor(
      () => !hub().readiness().ready && codesOf("se:hub:vast").includes("ERR_BUS_CONSUMER_MISSING"),
      {
        timeoutMs: 10_000,
        message: "the hub to notice",
      },
    );
    // The others are unaffected.
    expect(stockholm().readiness().ready).toBe(true);
    // Referrals sent meanwhile wait in the stream.
    const waiting = await sendReferrals(stockholm(), caseKeys(3));
    await se.provision();
    await waitFor(() => hub().readiness().ready, {
      timeoutMs: 10_000,
      message: "the hub ready again",
    });
    await delivered(waiting);
  });

  it("the trust bucket refuses a purge, a message delete and a rollup, even the operator's", async () => {
    const kv = "KV_stafett-trust";
    const last = await jsm.streams.getMessage(kv, { last_by_subj: "$KV.stafett-trust.se" });
    expect(last).not.toBeNull();
    await expect(jsm.streams.purge(kv)).rejects.toThrow(/purge/i);
    await expect(jsm.streams.deleteMessage(kv, last?.seq ?? 0)).rejects.toThrow(/delete/i);
    const h = natsHeaders();
    h.set("Nats-Rollup", "sub");
    await expect(
      jetstream(admin).publish("$KV.stafett-trust.se", "", { headers: h }),
    ).rejects.toThrow(/rollup/i);
    const still = await jsm.streams.getMessage(kv, { last_by_subj: "$KV.stafett-trust.se" });
    expect(still?.seq).toBe(last?.seq);
  });

  it("a deleted trust bucket: every service logs ERR_TRUST_BUCKET_MISSING and is not ready; re-provisioned, revocations apply again", async () => {
    await jsm.streams.delete("KV_stafett-trust");
    await waitFor(
      () =>
        !allReady() &&
        [...se.gateways.keys(), ...se.hubs.keys(), "liaison"].every((org) =>
          codesOf(org).includes("ERR_TRUST_BUCKET_MISSING"),
        ),
      { timeoutMs: 15_000, message: "every service to notice" },
    );
    // The lists in force stay: the handoff goes on, but no revocation could arrive now.
    const during = await sendReferrals(stockholm(), caseKeys(1));
    await delivered(during);
    await se.provision();
    await waitFor(allReady, { timeoutMs: 15_000, message: "every service ready again" });

    // A revocation published to the re-created bucket applies at once, without a restart.
    const kid = se.country.identity("se:municipality:0180").signing.kid;
    const list = se.country.trustList;
    const revoked = buildTrustList({
      country: "se",
      version: list.version + 1,
      policy: list.policy,
      organisations: list.organisations.map((o) => ({
        ...o,
        keys: o.keys.map((k) =>
          k.kid === kid ? { ...k, revokedAt: new Date().toISOString() } : k,
        ),
      })),
    });
    await publishTrustList(admin, "se", await signTrustList(revoked, se.country.anchor));
    await waitFor(() => hub().trust.version === list.version + 1, {
      timeoutMs: 5_000,
      message: "the hub to hold the new list",
    });
    const e = await issue(sampleOpened(), {
      identity: se.country.identity("se:municipality:0180"),
      trust: se.country.trust,
    });
    await jetstream(admin).publish(e.subject, e.bytes, { msgID: e.id });
    const q = await waitForValue(
      () =>
        jsm.streams
          .getMessage(quarantineStreamName("se"), {
            last_by_subj: quarantineSubject("se", "se-hub-vast", "ERR_KEY_REVOKED"),
          })
          .then(
            (m) => m ?? undefined,
            () => undefined,
          ),
      { timeoutMs: 10_000, message: "the revoked key's event refused" },
    );
    expect(q.header.get("Stafett-Event-Id")).toBe(e.id);
    expect(hub().state.referrals.has(e.event.referralId)).toBe(false);
    // Put the list back in force for the rest (a newer version that revokes nothing).
    await publishTrustList(
      admin,
      "se",
      await signTrustList({ ...list, version: list.version + 2 }, se.country.anchor),
    );
    await waitFor(() => hub().trust.version === list.version + 2, {
      timeoutMs: 5_000,
      message: "the hub to hold the list without the revocation",
    });
  });

  it("a deleted stream: ERR_BUS_STREAM_MISSING from every consumer; re-provisioned, the handoff resumes", async () => {
    await jsm.streams.delete("STAFETT_SE");
    await waitFor(
      () =>
        !hub().readiness().ready &&
        !stockholm().readiness().ready &&
        codesOf("se:hub:vast").includes("ERR_BUS_STREAM_MISSING") &&
        codesOf("se:municipality:1480").includes("ERR_BUS_STREAM_MISSING"),
      { timeoutMs: 10_000, message: "the services to notice" },
    ).catch((err: unknown) => {
      // This wait failed in about one run in four once, never since; say what was missing.
      throw new Error(
        `${String(err)}; hub ${JSON.stringify(hub().readiness())}, Stockholm ` +
          `${JSON.stringify(stockholm().readiness())}, codes at Väst ` +
          `${codesOf("se:hub:vast").join(",")}, at Göteborg ${codesOf("se:municipality:1480").join(",")}`,
      );
    });
    await se.provision();
    await waitFor(allReady, { timeoutMs: 15_000, message: "every service ready again" });
    const after = await sendReferrals(stockholm(), caseKeys(3));
    await delivered(after);
  });
});

describe("a message nobody manages to handle", () => {
  it("is logged with ERR_MAX_DELIVERIES when it runs out of deliveries", async () => {
    // The coordinator's own connection and consumer, with a handler that always fails.
    const runtime = se.runtime("se:coordinator");
    const bus = await Bus.connect(
      {
        servers: runtime.nats.servers,
        name: "coordinator-failing",
        connection: natsAuth(runtime.nats),
        apiPrefix: ORG_API_PREFIX,
      },
      log.child({ org: "se:coordinator" }),
    );
    try {
      const consumption = await bus.consume(
        { stream: "STAFETT_SE", durable: "se-coordinator" },
        () => Promise.reject(new Error("a handler that always fails")),
      );
      await jetstream(admin).publish("stafett.se.national.coordinator.escalated", "poison");
      await waitFor(() => codesOf("se:coordinator").includes("ERR_MAX_DELIVERIES"), {
        timeoutMs: 15_000,
        message: "the max-deliveries advisory logged",
      });
      await consumption.stop();
    } finally {
      await bus.close();
    }
  });
});
