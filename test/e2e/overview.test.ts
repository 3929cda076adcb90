/**
 * The national overview, end to end on a real nats-server: referrals opened through gateways
 * into two regions reach the national coordinator as counts (each hub's `reported`, never a
 * referral), its `GET /v1/overview` shows them by region and urgency within seconds, an
 * acceptance lowers them, a restart keeps them (the journal), and a forged report is refused
 * with a code and changes nothing.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type ConnectionOptions } from "@nats-io/transport-node";
import { LocalCountry, samplePersonal, waitForValue } from "@stafett/devkit";
import {
  Bus,
  coordinatorId,
  createLogger,
  dataschemaFor,
  encodeEvent,
  encodeSignedEvent,
  eventHeaders,
  quarantineStreamName,
  quarantineSubject,
  signDetached,
  type EventJson,
  type Overview,
  type RegionOverview,
  type Urgency,
} from "@stafett/shared";
import { Api } from "./api.js";

const log = createLogger({ service: "e2e", level: process.env.LOG_LEVEL ?? "silent" });
let se: LocalCountry;

const STOCKHOLM = "se:municipality:0180";
const COORDINATOR = coordinatorId("se");

beforeAll(async () => {
  se = await LocalCountry.start({
    // Stockholm (region stockholm), Göteborg (väst), Malmö (syd).
    municipalities: ["0180", "1480", "1280"],
    log,
    tickMs: 200,
    // The hubs report as in production: a change within 2 s, a heartbeat every minute.
    reports: { everyMs: 60_000 },
  });
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

const coordinator = async (): Promise<Api> => {
  const running = se.coordinator;
  if (running === undefined) throw new Error("no coordinator");
  return Api.for(se, COORDINATOR, running.url);
};

async function open(from: string, to: string, urgency: Urgency): Promise<string> {
  const opened = await se.gateway(from).gateway.openReferral(
    {
      urgency,
      reason: "REASON_CATEGORY_MISSING",
      destination: { country: "se", municipality: to },
      personal: samplePersonal(7),
    },
    `case-${randomUUID()}`,
  );
  return opened.referralId;
}

/** The overview once `region`'s row satisfies `done` (within 10 s). */
async function overviewUntil(
  region: string,
  done: (r: RegionOverview) => boolean,
): Promise<Overview> {
  const api = await coordinator();
  return waitForValue(
    async () => {
      const res = await api.get<Overview>("/v1/overview");
      const row = res.body.regions.find((r) => r.region === region);
      return res.status === 200 && row !== undefined && done(row) ? res.body : undefined;
    },
    { timeoutMs: 10_000, message: `the overview of ${region}` },
  );
}

const row = (o: Overview, region: string) => o.regions.find((r) => r.region === region);

describe("the national overview of open referrals", () => {
  const ids: string[] = [];

  it("shows referrals opened into two regions by region and urgency, within seconds", async () => {
    const started = Date.now();
    // Into Väst: two high, one immediate; into Stockholm: one normal.
    ids.push(await open("0180", "1480", "URGENCY_HIGH"));
    ids.push(await open("1280", "1480", "URGENCY_HIGH"));
    ids.push(await open("0180", "1480", "URGENCY_IMMEDIATE"));
    await open("1480", "0180", "URGENCY_NORMAL");
    const o = await overviewUntil("vast", (r) => r.forwarded === 3);
    const seconds = (Date.now() - started) / 1_000;
    expect(seconds).toBeLessThan(10);
    expect(row(o, "vast")).toMatchObject({
      hub: "se:hub:vast",
      open: 3,
      triage: 0,
      forwarded: 3,
      rerouted: 0,
      immediate: 1,
      high: 2,
      normal: 0,
      overdue: 0,
      escalated: 0,
      stale: false,
    });
    const stockholm = await overviewUntil("stockholm", (r) => r.open === 1);
    expect(row(stockholm, "stockholm")).toMatchObject({ forwarded: 1, normal: 1, stale: false });
    // Syd has nothing open; it reports so (its first look is within a second of its start),
    // and is not stale. Every one of the seven regions has a row; the four without a hub here
    // have no report and are marked stale.
    const syd = await overviewUntil("syd", (r) => r.hub === "se:hub:syd");
    expect(row(syd, "syd")).toMatchObject({ open: 0, stale: false });
    expect(stockholm.regions.map((r) => r.region)).toEqual([
      "bergslagen",
      "mitt",
      "nord",
      "ost",
      "stockholm",
      "syd",
      "vast",
    ]);
    expect(row(stockholm, "nord")).toMatchObject({ open: 0, stale: true });
    expect(row(stockholm, "nord")?.reportedAt).toBeUndefined();
    expect(stockholm.totals).toMatchObject({ open: 4, forwarded: 4, immediate: 1, high: 2 });
    // Nothing of a referral reaches the coordinator: no id, no municipality, no origin.
    const text = JSON.stringify(stockholm);
    for (const leak of [...ids, "1480", "0180", "1280", "municipality"])
      expect(text.includes(leak), leak).toBe(false);
  });

  it("lowers the counts when the municipality accepts", async () => {
    const goteborg = se.gateway("1480").gateway;
    const first = ids[0];
    if (first === undefined) throw new Error("no referral");
    await waitForValue(
      async () => (goteborg.state.inbox.get(first) === undefined ? undefined : 1),
      {
        timeoutMs: 10_000,
        message: "the referral in Göteborg's inbox",
      },
    );
    await goteborg.answer(first, "accepted");
    const o = await overviewUntil("vast", (r) => r.open === 2);
    expect(row(o, "vast")).toMatchObject({ forwarded: 2, immediate: 1, high: 1 });
    expect(o.totals.open).toBe(3);
  });

  it("keeps each region's latest report across a restart of the coordinator (journaled)", async () => {
    const before = await overviewUntil("vast", (r) => r.open === 2);
    await se.coordinator?.stop();
    await se.startCoordinator();
    // At once, before any hub could report again (the next heartbeat is a minute away).
    const res = await (await coordinator()).get<Overview>("/v1/overview");
    expect(res.status).toBe(200);
    expect(res.body.regions).toEqual(before.regions);
  });

  it("refuses a municipality's forged report of its region and a hub's of another, changing nothing", async () => {
    const api = await coordinator();
    const before = (await api.get<Overview>("/v1/overview")).body.regions;
    const forged = async (source: string, region: string) => {
      const event = {
        id: randomUUID(),
        type: "reported",
        source,
        addressee: COORDINATOR,
        time: new Date().toISOString(),
        dataschema: dataschemaFor("reported"),
        reported: { region, normal: 1, triage: 1, nearestDeadline: new Date().toISOString() },
      } as unknown as EventJson;
      const bytes = encodeEvent(event);
      const signed = encodeSignedEvent({
        event: bytes,
        signatures: [await signDetached(bytes, se.country.identity(source).signing)],
      });
      return { event, signed };
    };
    type Forged = Awaited<ReturnType<typeof forged>>;
    const subject = "stafett.se.national.coordinator.reported";
    const admin = await connect({ servers: se.natsUrl, ...se.admin });
    const jsm = await jetstreamManager(admin);
    const quarantined = (code: string, eventId: string) =>
      waitForValue(
        async () => {
          const m = await jsm.streams
            .getMessage(quarantineStreamName("se"), {
              last_by_subj: quarantineSubject("se", "se-coordinator", code),
            })
            .catch(() => null);
          return m?.header.get("Stafett-Event-Id") === eventId ? m : undefined;
        },
        { timeoutMs: 10_000, message: `${eventId} quarantined with ${code}` },
      );
    const publishAs = async (connection: Partial<ConnectionOptions>, e: Forged) => {
      const bus = await Bus.connect({ servers: se.natsUrl, name: "forger", connection }, log);
      try {
        await bus.publish(
          { subject, bytes: e.signed, headers: eventHeaders(e.event) },
          { deadlineMs: 0 },
        );
      } finally {
        await bus.close();
      }
    };
    try {
      // Stockholm signs a report of its region with its own valid key. Its own NATS user may
      // not even publish there (its allow list follows the policy) ...
      const byStockholm = await forged(STOCKHOLM, "stockholm");
      await expect(publishAs(se.connectionOf(STOCKHOLM), byStockholm)).rejects.toThrow();
      // ... and when it reaches the bus another way, the coordinator refuses it by the policy.
      await publishAs(se.admin, byStockholm);
      const policy = await quarantined("ERR_NOT_AUTHORISED", byStockholm.event.id);
      expect(policy.header.get("Stafett-Reject-Reason")).toBe("policy");
      // The hub of Syd, with its own credentials (a hub may report), claims Väst's counts.
      const bySyd = await forged("se:hub:syd", "vast");
      await publishAs(se.connectionOf("se:hub:syd"), bySyd);
      const region = await quarantined("ERR_NOT_AUTHORISED", bySyd.event.id);
      expect(region.header.get("Stafett-Reject-Reason")).toBe("not_region_hub");
      expect(region.header.get("Stafett-Reject-Field")).toBe("/reported/region");
    } finally {
      await admin.close();
    }
    const after = (await api.get<Overview>("/v1/overview")).body.regions;
    expect(
      after.map(({ region, open, hub, reportedAt }) => ({ region, open, hub, reportedAt })),
    ).toEqual(
      before.map(({ region, open, hub, reportedAt }) => ({ region, open, hub, reportedAt })),
    );
  });
});
