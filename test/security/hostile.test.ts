import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { LocalCountry, waitFor, waitForValue, sampleOpened } from "@stafett/devkit";
import {
  buildTrustList,
  consumersOf,
  createLogger,
  digestOf,
  issue,
  publishTrustList,
  quarantineStreamName,
  quarantineSubject,
  receive,
  roleOf,
  signTrustList,
  type IssuedEvent,
} from "@stafett/shared";

const log = createLogger({ service: "security", level: process.env.LOG_LEVEL ?? "silent" });
let se: LocalCountry;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log });
  nc = await connect({ servers: se.natsUrl, ...se.admin });
  jsm = await jetstreamManager(nc);
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await se?.stop();
});

const opened = (from = "se:municipality:0180", time?: Date): Promise<IssuedEvent> =>
  issue(sampleOpened(time === undefined ? {} : { time }, 0), {
    identity: se.country.identity(from),
    trust: se.country.trust,
  });

async function quarantined(code: string, eventId: string): Promise<boolean> {
  const m = await jsm.streams
    .getMessage(quarantineStreamName("se"), {
      last_by_subj: quarantineSubject("se", "se-hub-vast", code),
    })
    .catch(() => null);
  return m?.header.get("Stafett-Event-Id") === eventId;
}

const held = () => se.hub("vast").hub.state.referrals;

describe("hostile input at a running hub", () => {
  it("a captured event published again, under the same or a new message id, is handled once and refused as a replay", async () => {
    const e = await opened();
    const js = jetstream(nc);
    await js.publish(e.subject, e.bytes, { msgID: e.id });
    await waitFor(() => held().has(e.event.referralId), {
      timeoutMs: 10_000,
      message: "the original to arrive",
    });
    const again = await js.publish(e.subject, e.bytes, { msgID: e.id });
    expect(again.duplicate).toBe(true); // the stream's duplicate window
    await js.publish(e.subject, e.bytes, { msgID: randomUUID() }); // a replay under a new id
    await waitForValue(async () => ((await quarantined("ERR_REPLAY", e.id)) ? true : undefined), {
      timeoutMs: 10_000,
      message: "the replay in quarantine",
    });
    expect([...held().values()].filter((r) => r.referralId === e.event.referralId)).toHaveLength(1);
  });

  it("an event dated far in the future is refused as stale", async () => {
    const e = await opened("se:municipality:0180", new Date(Date.now() + 2 * 3_600_000));
    await jetstream(nc).publish(e.subject, e.bytes, { msgID: e.id });
    await waitForValue(async () => ((await quarantined("ERR_STALE", e.id)) ? true : undefined), {
      timeoutMs: 10_000,
      message: "the stale event in quarantine",
    });
    expect(held().has(e.event.referralId)).toBe(false);
  });

  it("after a key is revoked in the trust list, every running service refuses it within seconds, without a restart", async () => {
    const revokedOrg = "se:municipality:0180";
    // Every service the country runs, each with the durable consumer its refusals name.
    const services = [
      ...se.gateways.entries(),
      ...se.hubs.entries(),
      ...(se.coordinator === undefined ? [] : [["se:coordinator", se.coordinator] as const]),
      ...(se.liaison === undefined ? [] : [["se:liaison", se.liaison] as const]),
    ].map(([id, instance]) => ({
      id,
      instance: instance as object,
      durable: consumersOf(id)[0]?.durable ?? "",
    }));
    // Every organisation of the country runs a service here: all of them are checked.
    expect(services.map((s) => s.id).sort()).toEqual(
      se.country.trustList.organisations.map((o) => o.id).sort(),
    );
    // A receipt signed with the revoked key, addressed to one service: any role may be sent one.
    const signedByRevoked = (to: string): Promise<IssuedEvent> =>
      issue(
        {
          type: "received",
          addressee: to,
          referralId: randomUUID(),
          body: { ofEventId: randomUUID(), digest: digestOf(new Uint8Array([1])) },
          ...(roleOf(to) === "liaison" ? { partnerCountry: "no" } : {}),
        },
        { identity: se.country.identity(revokedOrg), trust: se.country.trust },
      );
    // Every refusal the services make, by event id, from the quarantine subjects.
    const refusals = new Map<string, { code: string; reason: string; consumer: string }>();
    const watch = nc.subscribe("stafett-quarantine.se.>");
    void (async () => {
      for await (const m of watch) {
        refusals.set(m.headers?.get("Stafett-Event-Id") ?? "", {
          code: m.headers?.get("Stafett-Reject-Code") ?? "",
          reason: m.headers?.get("Stafett-Reject-Reason") ?? "",
          consumer: m.headers?.get("Stafett-Consumer") ?? "",
        });
      }
    })();
    await nc.flush();
    const refusalOf = async (e: IssuedEvent, timeoutMs = 10_000) => {
      await jetstream(nc).publish(e.subject, e.bytes, { msgID: e.id });
      return waitForValue(() => refusals.get(e.id), {
        timeoutMs,
        message: `a refusal of ${e.event.addressee}'s event`,
      });
    };

    try {
      const kid = se.country.identity(revokedOrg).signing.kid;
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
      await publishTrustList(nc, "se", await signTrustList(revoked, se.country.anchor));
      const published = Date.now();
      // Each service's trust watch takes the new list: until then it may still accept the key,
      // so each is sent receipts until it refuses one for the revoked key.
      for (const s of services) {
        await waitForValue(
          async () => {
            const refusal = await refusalOf(await signedByRevoked(s.id), 2_000);
            return refusal.code === "ERR_KEY_REVOKED" ? true : undefined;
          },
          { timeoutMs: 10_000, message: `${s.id} to refuse the revoked key` },
        );
      }
      expect(Date.now() - published).toBeLessThan(10_000);
      // From then on every service refuses it, each through its own consumer, with the code.
      const round = await Promise.all(services.map((s) => signedByRevoked(s.id)));
      const answers = await Promise.all(round.map((e) => refusalOf(e)));
      expect(answers).toEqual(
        services.map((s) => ({ code: "ERR_KEY_REVOKED", reason: "revoked", consumer: s.durable })),
      );
      // The hub holds nothing from the revoked key ...
      const e = await opened();
      expect(await refusalOf(e)).toEqual({
        code: "ERR_KEY_REVOKED",
        reason: "revoked",
        consumer: "se-hub-vast",
      });
      expect(held().has(e.event.referralId)).toBe(false);
      // ... while other senders' referrals still flow.
      const other = await opened("se:municipality:1480");
      await jetstream(nc).publish(other.subject, other.bytes, { msgID: other.id });
      await waitFor(() => held().has(other.event.referralId), {
        timeoutMs: 10_000,
        message: "another sender's referral still flows",
      });
      // Without a restart: the services that refused are the instances that were running before.
      const runningNow = [
        ...se.gateways.values(),
        ...se.hubs.values(),
        ...[se.coordinator, se.liaison].filter((x) => x !== undefined),
      ];
      expect(runningNow).toHaveLength(services.length);
      runningNow.forEach((instance, i) => expect(instance).toBe(services[i]?.instance));
    } finally {
      watch.unsubscribe();
    }
  });

  it("an older trust list put back in the bucket cannot undo the revocation across a restart", async () => {
    await se.gateway("1480").stop();
    await publishTrustList(nc, "se", se.country.trustListJws); // version 1, before the revocation
    await expect(se.startGateway("se:municipality:1480")).rejects.toMatchObject({
      code: "ERR_TRUST_LIST_INVALID",
      reason: "rollback",
    });
  });
});

describe("100,000 random and mutated byte strings through receive", () => {
  it(
    "never crashes it, and each is accepted as valid or refused with a code",
    { timeout: 300_000 },
    async () => {
      const valid = (await opened("se:municipality:1480")).bytes;
      const ctx = { identity: se.country.identity("se:hub:vast"), trust: se.country.trust };
      const mutated = fc
        .tuple(
          fc.nat({ max: valid.length - 1 }),
          fc.integer({ min: 1, max: 255 }),
          fc.nat({ max: 8 }),
        )
        .map(([at, xor, cut]) => {
          const b = Uint8Array.from(valid.subarray(0, valid.length - cut));
          if (at < b.length) b[at] = (b[at] ?? 0) ^ xor;
          return b;
        });
      let accepted = 0;
      let refused = 0;
      await fc.assert(
        fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 4_096 }), mutated), async (bytes) => {
          const result = await receive(bytes, ctx);
          if (result.ok) accepted += 1;
          else {
            expect(result.error.code).toMatch(/^ERR_[A-Z_]+$/);
            refused += 1;
          }
        }),
        { numRuns: 100_000 },
      );
      expect(accepted + refused).toBe(100_000);
      expect(accepted).toBe(0); // every random or altered message must be refused
    },
  );
});
