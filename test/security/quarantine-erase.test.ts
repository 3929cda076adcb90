/**
 * `stafett quarantine erase --org` against a hostile organisation. Only an organisation's own
 * account may publish under its consumer's quarantine subject, so the subject says whose refusal
 * an entry is (listing reads it from there); the `Stafett-Consumer` header says whatever its
 * writer put there. Before the review of 2026-12-03 the erasure chose entries by the header: a
 * municipality could plant copies of a child's data (a referral it holds) that an erasure for
 * itself missed (they stayed until the quarantine's max_age), and that an erasure for the hub it
 * named counted as the hub's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { LocalCountry, sampleOpened, waitForValue } from "@stafett/devkit";
import { createLogger, eraseQuarantine, issue, listQuarantine } from "@stafett/shared";

const log = createLogger({ service: "security", level: process.env.LOG_LEVEL ?? "silent" });
const GOTEBORG = "se:municipality:1480";
let se: LocalCountry;
let admin: NatsConnection;
let hostile: NatsConnection;

beforeAll(async () => {
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log, servicesOff: true });
  admin = await connect({ servers: se.natsUrl, ...se.admin });
  hostile = await connect({ servers: se.natsUrl, ...se.connectionOf(GOTEBORG) });
}, 60_000);

afterAll(async () => {
  await hostile?.close();
  await admin?.close();
  await se?.stop();
});

describe("a quarantine entry planted under the own subject, naming another consumer in its header", () => {
  it("is erased with the planting organisation's erasure, and never with the named one's", async () => {
    const e = await issue(sampleOpened({}, 3), {
      identity: se.country.identity(GOTEBORG),
      trust: se.country.trust,
    });
    const h = headers();
    h.set("Stafett-Consumer", "se-hub-vast");
    h.set("Stafett-Reject-Code", "ERR_REPLAY");
    h.set("Stafett-Event-Id", e.id);
    await hostile.request("stafett-quarantine.se.se-municipality-1480.ERR_REPLAY", e.bytes, {
      headers: h,
      timeout: 5_000,
    });
    const jsm = await jetstreamManager(admin);
    const planted = await waitForValue(
      async () => (await listQuarantine(jsm, "se")).find((q) => q.eventId === e.id),
      { timeoutMs: 10_000, message: "the planted entry in the quarantine" },
    );
    // Listing names the consumer whose account wrote it.
    expect(planted.consumer).toBe("se-municipality-1480");
    expect(await eraseQuarantine(jsm, "se", e.event.referralId, ["se-hub-vast"])).toEqual([]);
    expect(await eraseQuarantine(jsm, "se", e.event.referralId, ["se-municipality-1480"])).toEqual([
      planted.seq,
    ]);
  });
});
