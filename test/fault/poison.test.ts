import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { LocalCountry, samplePersonal, waitFor, waitForValue } from "@stafett/devkit";
import {
  createLogger,
  issue,
  listQuarantine,
  Party,
  plan,
  quarantineSubject,
  replayQuarantine,
} from "@stafett/shared";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
let se: LocalCountry;
let nc: NatsConnection;

beforeAll(async () => {
  // Short back-off so that a poison message runs out of attempts in seconds.
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    servicesOff: true,
    provision: { maxDeliver: 4, backoffMs: [2_000, 2_000, 2_000] },
  });
  nc = await connect({ servers: se.natsUrl, ...se.admin });
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await se?.stop();
});

describe("a planted quarantine entry", () => {
  it("cannot make an operator's replay publish outside the subjects its consumer reads", async () => {
    const jsm = await jetstreamManager(nc);
    const { headers } = await import("@nats-io/transport-node");
    // Written as Stockholm would (its account may quarantine under its own consumer only).
    const stockholm = await connect({
      servers: se.natsUrl,
      ...se.connectionOf("se:municipality:0180"),
    });
    try {
      const plant = async (subject: string): Promise<number> => {
        const h = headers();
        h.set("Stafett-Reject-Code", "ERR_MALFORMED");
        h.set("Stafett-Subject", subject);
        const ack = await jetstream(stockholm).publish(
          quarantineSubject("se", "se-municipality-0180", "ERR_MALFORMED"),
          new Uint8Array(),
          { headers: h },
        );
        return ack.seq;
      };
      for (const subject of [
        "$JS.API.STREAM.DELETE.STAFETT_SE",
        // An event subject of the country, but not one Stockholm's consumer reads: a replay
        // would publish onto the hub's address with the operator's rights.
        "stafett.se.vast.hub.opened",
      ]) {
        const seq = await plant(subject);
        await expect(replayQuarantine(jsm, jetstream(nc), "se", seq)).rejects.toMatchObject({
          code: "ERR_ADDRESS_INVALID",
        });
      }
    } finally {
      await stockholm.close();
    }
    expect((await jsm.streams.info("STAFETT_SE")).config.name).toBe("STAFETT_SE");
  });
});

describe("a handler that throws on one poison message", () => {
  it(
    "quarantines it after max_deliver attempts while all the others flow; an operator re-injects it once",
    { timeout: 60_000 },
    async () => {
      const handled = new Map<string, number>();
      const attempts = new Map<string, number>();
      let poisoned = true;
      const poison = randomUUID();
      const party = await Party.forService<{ id: string }>(se.runtime("se:hub:vast"), log, (r) =>
        handled.set(r.id, (handled.get(r.id) ?? 0) + 1),
      );
      await party.consume((v) => {
        attempts.set(v.event.referralId, (attempts.get(v.event.referralId) ?? 0) + 1);
        if (poisoned && v.event.referralId === poison) throw new Error("a bug in the handler");
        return plan([{ id: v.event.referralId }]);
      });
      try {
        const ids = [poison, ...Array.from({ length: 40 }, () => randomUUID())];
        const js = jetstream(nc);
        for (const referralId of ids) {
          const e = await issue(
            {
              type: "opened",
              addressee: "se:hub:vast",
              referralId,
              body: {
                urgency: "URGENCY_NORMAL",
                reason: "REASON_CATEGORY_MOVED",
                destination: { country: "se", municipality: "1480" },
                deadline: new Date(Date.now() + 3_600_000).toISOString(),
              },
              personal: samplePersonal(),
              sealTo: ["se:hub:vast", "se:municipality:1480"],
            },
            { identity: se.country.identity("se:municipality:0180"), trust: se.country.trust },
          );
          await js.publish(e.subject, e.bytes, { msgID: e.id });
        }
        await waitFor(() => ids.slice(1).every((id) => handled.get(id) === 1), {
          timeoutMs: 20_000,
          message: "the healthy messages to flow",
        });
        const jsm = await jetstreamManager(nc);
        const entry = await waitForValue(
          async () =>
            (await listQuarantine(jsm, "se")).find((q) => q.code === "ERR_HANDLER_FAILED"),
          { timeoutMs: 30_000, message: "the poison message in quarantine" },
        );
        expect(attempts.get(poison)).toBe(4);
        expect(entry).toMatchObject({
          reason: "max_deliveries",
          consumer: "se-hub-vast",
          subject: "stafett.se.vast.hub.opened",
        });
        expect(handled.has(poison)).toBe(false);
        await waitFor(async () => (await jsm.streams.info("STAFETT_SE")).state.messages === 0, {
          timeoutMs: 10_000,
          message: "nothing left behind in the work queue",
        });

        // The bug is fixed; the operator re-injects the message, twice by mistake: it is handled once.
        poisoned = false;
        expect((await replayQuarantine(jsm, js, "se", entry.seq)).duplicate).toBe(false);
        expect((await replayQuarantine(jsm, js, "se", entry.seq)).duplicate).toBe(true);
        await waitFor(() => handled.get(poison) === 1, {
          timeoutMs: 10_000,
          message: "the re-injected message to be handled",
        });
        expect([...handled.values()].every((n) => n === 1)).toBe(true);
      } finally {
        await party.stop();
      }
    },
  );
});
