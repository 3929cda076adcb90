import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { LocalCountry, waitFor, waitForValue } from "@stafett/devkit";
import {
  buildTrustList,
  createLogger,
  issue,
  publishTrustList,
  quarantineStreamName,
  quarantineSubject,
  receive,
  sampleOpened,
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
    await publishTrustList(nc, "se", await signTrustList(revoked, se.country.anchor));
    // Every service's trust watch takes the new list.
    await waitFor(
      async () => {
        for (const g of se.gateways.values()) {
          const r = await receive((await opened()).bytes, {
            identity: { id: "se:hub:vast" },
            trust: g.gateway.trust,
            mode: "relay",
          });
          if (r.ok) return false;
        }
        return true;
      },
      { timeoutMs: 10_000, message: "the gateways to hold the new list" },
    );
    const e = await opened();
    await jetstream(nc).publish(e.subject, e.bytes, { msgID: e.id });
    await waitForValue(
      async () => ((await quarantined("ERR_KEY_REVOKED", e.id)) ? true : undefined),
      { timeoutMs: 10_000, message: "the event with the revoked key in quarantine" },
    );
    expect(held().has(e.event.referralId)).toBe(false);
    // Other senders' messages in flight are untouched.
    const other = await opened("se:municipality:1480");
    await jetstream(nc).publish(other.subject, other.bytes, { msgID: other.id });
    await waitFor(() => held().has(other.event.referralId), {
      timeoutMs: 10_000,
      message: "another sender's referral still flows",
    });
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
