import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCountry, samplePersonal, type Country } from "@stafett/devkit";
import {
  Bus,
  createLogger,
  issue,
  provisionCountry,
  receive,
  streamName,
  type Delivery,
} from "@stafett/shared";
import { startServer, type NatsServer } from "../support/nats-server.js";
import { waitFor } from "../support/wait.js";

const log = createLogger({ service: "test", level: "silent" });
let server: NatsServer;
let bus: Bus;
let se: Country;

beforeAll(async () => {
  server = await startServer();
  se = await createCountry({ code: "se", municipalities: ["0180", "1480", "1280"] });
  bus = await Bus.connect({ servers: server.url, name: "test" }, log);
});

afterAll(async () => {
  await bus?.close();
  await server?.stop();
});

describe("a signed referral through JetStream", () => {
  it("provisions idempotently: a second run changes nothing", async () => {
    const jsm = await bus.manager();
    const first = await provisionCountry(bus.nc, jsm, se.trustList, se.trustListJws);
    expect(first.streamChanged).toBe("created");
    // coordinator, liaison (2 consumers), 2 hubs (stockholm, vast, syd: 3), 3 municipalities
    expect(first.consumersCreated.sort()).toEqual(
      [
        "se-coordinator",
        "se-hub-stockholm",
        "se-hub-syd",
        "se-hub-vast",
        "se-liaison-in",
        "se-liaison-out",
        "se-municipality-0180",
        "se-municipality-1280",
        "se-municipality-1480",
      ].sort(),
    );
    const second = await provisionCountry(bus.nc, jsm, se.trustList, se.trustListJws);
    expect(second).toMatchObject({
      streamChanged: "unchanged",
      consumersCreated: [],
      consumersUpdated: [],
      consumersDeleted: [],
    });
    expect(second.trustListRevision).toBe(first.trustListRevision);
    // A changed trust list: Malmö leaves, Uppsala (and with it the Mitt hub) joins.
    const changed = await createCountry({
      code: "se",
      municipalities: ["0180", "1480", "0380"],
      version: 2,
    });
    const third = await provisionCountry(bus.nc, jsm, changed.trustList, changed.trustListJws);
    expect(third.consumersCreated.sort()).toEqual(["se-hub-mitt", "se-municipality-0380"]);
    expect(third.consumersDeleted.sort()).toEqual(["se-hub-syd", "se-municipality-1280"]);
    await provisionCountry(bus.nc, jsm, se.trustList, se.trustListJws);
    const info = await jsm.streams.info(streamName("se"));
    expect(info.config.retention).toBe("workqueue");
    expect(info.config.deny_delete).toBe(true);
    expect(info.config.deny_purge).toBe(true);
  });

  it("publishes an opened referral that the hub's pull consumer receives and verifies", async () => {
    const issued = await issue(
      {
        type: "opened",
        addressee: "se:hub:vast",
        referralId: randomUUID(),
        body: {
          urgency: "URGENCY_HIGH",
          reason: "REASON_CATEGORY_MISSING",
          destination: { country: "se", region: "vast", municipality: "1480" },
          deadline: new Date(Date.now() + 12 * 3_600_000).toISOString(),
        },
        personal: samplePersonal(2),
        sealTo: ["se:hub:vast", "se:municipality:1480"],
      },
      { identity: se.identity("se:municipality:0180"), trust: se.trust },
    );
    const ack = await bus.publish(issued);
    expect(ack.stream).toBe("STAFETT_SE");
    // The same message id again is de-duplicated by the stream.
    const again = await bus.publish(issued);
    expect(again.duplicate).toBe(true);

    const got: Delivery[] = [];
    const consumption = await bus.consume(
      { stream: "STAFETT_SE", durable: "se-hub-vast" },
      async (d) => {
        got.push(d);
        return { ack: true };
      },
    );
    await waitFor(() => got.length >= 1, { timeoutMs: 5_000, message: "hub received nothing" });
    await consumption.stop();

    expect(got).toHaveLength(1);
    const d = got[0]!;
    expect(d.subject).toBe("stafett.se.vast.hub.opened");
    expect(d.headers["ce-type"]).toBe("eu.stafett.referral.opened.v1");
    expect(d.headers["Nats-Msg-Id"]).toBe(issued.id);
    const result = await receive(d.data, {
      identity: se.identity("se:hub:vast"),
      trust: se.trust,
      subject: d.subject,
    });
    if (!result.ok) throw result.error;
    expect(result.issuer.id).toBe("se:municipality:0180");
    expect(result.personal).toEqual(samplePersonal(2));

    // Work-queue retention: once acked, the message is gone from the stream.
    const jsm = await bus.manager();
    await waitFor(async () => (await jsm.streams.info("STAFETT_SE")).state.messages === 0, {
      timeoutMs: 5_000,
      message: "acked message still in the stream",
    });
  });
});
