import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { LocalCountry, waitFor, waitForValue, samplePersonal } from "@stafett/devkit";
import {
  createLogger,
  decodeEvent,
  decodeSignedEvent,
  encodeEvent,
  encodeSignedEvent,
  eventHeaders,
  fromBase64,
  open,
  quarantineStreamName,
  quarantineSubject,
  signDetached,
  Bus,
  type EventJson,
} from "@stafett/shared";
import { Api, type TimelineView } from "./api.js";

const log = createLogger({ service: "e2e", level: process.env.LOG_LEVEL ?? "silent" });
let se: LocalCountry;
let stockholm: Api;

const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";

beforeAll(async () => {
  se = await LocalCountry.start({
    municipalities: ["0180", "1480", "1490", "1880", "1280"],
    log,
    tickMs: 200,
  });
  stockholm = await Api.for(se, STOCKHOLM, se.gateway("0180").url);
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

function referral(municipality: string, overrides: Record<string, unknown> = {}) {
  return {
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    destination: { country: "se", municipality },
    personal: samplePersonal(4),
    ...overrides,
  };
}

async function timelineUntil(
  api: Api,
  id: string,
  done: (t: TimelineView) => boolean,
): Promise<TimelineView> {
  return waitForValue(
    async () => {
      const res = await api.get<TimelineView>(`/v1/referrals/${id}`);
      return res.status === 200 && done(res.body) ? res.body : undefined;
    },
    { timeoutMs: 15_000, message: `timeline of ${id}` },
  );
}

const types = (t: TimelineView): string[] => t.timeline.map((e) => e.type);

describe("domestic handoff, end to end through the real services", () => {
  it("Stockholm refers a missing child to Göteborg: received, forwarded, accepted, closed", async () => {
    const opened = await stockholm.post<{ referralId: string; deadline: string }>(
      "/v1/referrals",
      referral("1480"),
    );
    expect(opened.status).toBe(202);
    const id = opened.body.referralId;

    const forwarded = await timelineUntil(
      stockholm,
      id,
      (t) => types(t).includes("forwarded") && types(t).includes("received"),
    );
    expect(forwarded.timeline.find((e) => e.type === "received")?.by).toBe("se:hub:vast");
    expect(forwarded.timeline.find((e) => e.type === "forwarded")?.to).toBe(GOTEBORG);

    const goteborg = await Api.for(se, GOTEBORG, se.gateway("1480").url);
    const item = await waitForValue(
      async () => {
        const res = await goteborg.get<Record<string, unknown>>(`/v1/inbox/${id}`);
        return res.status === 200 ? res.body : undefined;
      },
      { timeoutMs: 10_000, message: "inbox item at Göteborg" },
    );
    expect(item.from).toBe(STOCKHOLM);
    expect(item.personal).toEqual(samplePersonal(4));

    expect((await goteborg.post(`/v1/inbox/${id}/accept`)).status).toBe(200);
    const done = await timelineUntil(stockholm, id, (t) => t.status === "closed");
    expect(types(done)).toEqual(["opened", "received", "forwarded", "accepted", "closed"]);
    expect(done.holder).toBe(GOTEBORG);
    await waitFor(() => se.hub("vast").hub.state.referrals.get(id)?.status === "closed", {
      timeoutMs: 10_000,
      message: "hub sees the close",
    });

    // Only the hub and the destination can read the child's details; every other party cannot.
    const held = se.hub("vast").hub.openedOf(id);
    const sealed =
      decodeEvent(decodeSignedEvent(fromBase64(held ?? "")).event).opened?.personal ?? "";
    const readers: string[] = [];
    for (const [orgId, identity] of se.country.identities) {
      const opened = await open(sealed, identity.encryption, id).then(
        () => true,
        () => false,
      );
      if (opened) readers.push(orgId);
    }
    expect(readers.sort()).toEqual(["se:hub:vast", GOTEBORG].sort());
  });

  it("a declined referral is re-routed to the municipality the decliner suggests, in another region", async () => {
    const opened = await stockholm.post<{ referralId: string }>("/v1/referrals", referral("1490"));
    const id = opened.body.referralId;
    const boras = await Api.for(se, "se:municipality:1490", se.gateway("1490").url);
    await waitFor(async () => (await boras.get(`/v1/inbox/${id}`)).status === 200, {
      timeoutMs: 10_000,
      message: "inbox at Borås",
    });
    const declined = await boras.post(`/v1/inbox/${id}/decline`, {
      reason: "DECLINE_REASON_WRONG_MUNICIPALITY",
      suggested: { country: "se", municipality: "1880" },
    });
    expect(declined.status).toBe(200);

    const orebro = await Api.for(se, "se:municipality:1880", se.gateway("1880").url);
    const item = await waitForValue(
      async () => {
        const res = await orebro.get<Record<string, unknown>>(`/v1/inbox/${id}`);
        return res.status === 200 ? res.body : undefined;
      },
      { timeoutMs: 10_000, message: "inbox at Örebro after re-routing" },
    );
    expect(item.personal).toEqual(samplePersonal(4));
    expect(item.via).toBe("se:hub:bergslagen");
    await orebro.post(`/v1/inbox/${id}/accept`);

    const done = await timelineUntil(stockholm, id, (t) => t.status === "closed");
    expect(types(done)).toEqual([
      "opened",
      "received",
      "forwarded",
      "declined",
      "rerouted",
      "forwarded",
      "accepted",
      "closed",
    ]);
    expect(done.holder).toBe("se:municipality:1880");
    // Neither the declining municipality nor an unrelated one may answer for the referral.
    expect((await boras.post(`/v1/inbox/${id}/accept`)).status).toBe(409);
  });

  it("a forged message (0180's key, claiming to be 1480) is quarantined with its code and answered to 0180", async () => {
    const event: EventJson = {
      id: randomUUID(),
      type: "opened",
      source: GOTEBORG,
      addressee: "se:hub:vast",
      time: new Date().toISOString(),
      dataschema: "https://stafett.eu/schemas/v1/events/opened.schema.json",
      referralId: randomUUID(),
      opened: {
        urgency: "URGENCY_NORMAL",
        reason: "REASON_CATEGORY_OTHER",
        destination: { country: "se", municipality: "1490" },
        deadline: new Date(Date.now() + 3_600_000).toISOString(),
        personal: JSON.stringify({
          ciphertext: "x".repeat(40),
          recipients: [{ header: { kid: "nobody" } }],
          iv: "a",
          tag: "b",
          protected: "c",
        }),
      },
    };
    const bytes = encodeEvent(event);
    const signed = encodeSignedEvent({
      event: bytes,
      signatures: [await signDetached(bytes, se.country.identity(STOCKHOLM).signing)],
    });
    // Stockholm's own system, with its own NATS credentials, publishes the forgery.
    const bus = await Bus.connect(
      { servers: se.natsUrl, name: "forger", connection: se.connectionOf(STOCKHOLM) },
      log,
    );
    const admin = await connect({ servers: se.natsUrl, ...se.admin });
    try {
      await bus.publish({
        subject: "stafett.se.vast.hub.opened",
        bytes: signed,
        headers: eventHeaders(event),
      });
      const jsm = await jetstreamManager(admin);
      const q = await waitForValue(
        async () => {
          const info = await jsm.streams.info(quarantineStreamName("se"));
          return info.state.messages > 0
            ? jsm.streams
                .getMessage(quarantineStreamName("se"), {
                  last_by_subj: quarantineSubject("se", "se-hub-vast", "ERR_ISSUER_MISMATCH"),
                })
                .catch(() => undefined)
            : undefined;
        },
        { timeoutMs: 10_000, message: "quarantined forgery" },
      );
      expect(q?.header.get("Stafett-Reject-Code")).toBe("ERR_ISSUER_MISMATCH");
      expect(q?.header.get("Stafett-Event-Id")).toBe(event.id);
    } finally {
      await bus.close();
      await admin.close();
    }
    expect(se.hub("vast").hub.state.referrals.has(event.referralId)).toBe(false);
  });

  it("a referral not accepted by its deadline escalates to the national coordinator", async () => {
    const deadline = new Date(Date.now() + 1_500).toISOString();
    const opened = await stockholm.post<{ referralId: string }>(
      "/v1/referrals",
      referral("1480", { urgency: "URGENCY_IMMEDIATE", deadline }),
    );
    const id = opened.body.referralId;
    const escalated = await timelineUntil(stockholm, id, (t) => types(t).includes("escalated"));
    expect(escalated.timeline.find((e) => e.type === "escalated")?.by).toBe("se:hub:vast");
    // The hub publishes the escalation to the coordinator and the notice to the origin together;
    // the two consume independently, so the origin may see its notice first.
    const escalationsOf = () =>
      [...(se.coordinator?.coordinator.escalations.values() ?? [])].filter(
        (e) => e.referralId === id,
      );
    await waitForValue(() => (escalationsOf().length > 0 ? true : undefined), {
      timeoutMs: 10_000,
      message: "the coordinator's escalation",
    });
    const at = escalationsOf();
    expect(at).toHaveLength(1);
    expect(at[0]?.holder).toBe(GOTEBORG);
  });

  it("refuses bad requests with every problem listed, and unauthenticated ones", async () => {
    const bad = await stockholm.post<{ code: string; issues: { field: string }[] }>(
      "/v1/referrals",
      { urgency: "SOON", destination: {}, personal: {} },
    );
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe("ERR_SCHEMA_INVALID");
    expect(bad.body.issues.map((i) => i.field)).toEqual(
      expect.arrayContaining(["/urgency", "/reason", "/destination/country", "/personal/child"]),
    );
    const anon = await fetch(`${se.gateway("0180").url}/v1/referrals`);
    expect(anon.status).toBe(401);
    // A percent-encoded path reaches the same route, and needs the same token.
    for (const path of ["/%761/referrals", "/%76%31/inbox", "/v1/%69nbox"]) {
      expect((await fetch(`${se.gateway("0180").url}${path}`)).status).toBe(401);
    }
    const other = await Api.for(se, GOTEBORG, se.gateway("0180").url);
    expect((await other.get("/v1/referrals")).status).toBe(403);
  });

  it("an Idempotency-Key makes a retried POST create one referral", async () => {
    const key = randomUUID();
    const first = await stockholm.post<{ referralId: string; eventId: string }>(
      "/v1/referrals",
      referral("1280"),
      { "idempotency-key": key },
    );
    const second = await stockholm.post<{ referralId: string; eventId: string }>(
      "/v1/referrals",
      referral("1280"),
      { "idempotency-key": key },
    );
    expect(first.status).toBe(202);
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ ...first.body, replayed: true });

    // Retries that overlap the first request: one is new, the others are replays of it.
    const concurrentKey = randomUUID();
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        stockholm.post<{ referralId: string; eventId: string; replayed: boolean }>(
          "/v1/referrals",
          referral("1280"),
          { "idempotency-key": concurrentKey },
        ),
      ),
    );
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 202]);
    expect(new Set(answers.map((a) => a.body.referralId)).size).toBe(1);
    expect(new Set(answers.map((a) => a.body.eventId)).size).toBe(1);
  });

  it("a gateway restart keeps every referral's timeline", async () => {
    // Wait until nothing is in flight: two reads a moment apart agree.
    let last = "";
    const before = await waitForValue(
      async () => {
        const now = (await stockholm.get<TimelineView[]>("/v1/referrals")).body;
        const same = JSON.stringify(now) === last;
        last = JSON.stringify(now);
        return same ? now : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 300, message: "timelines to settle" },
    );
    expect(before.length).toBeGreaterThan(0);
    await se.gateway("0180").stop();
    const restarted = await se.startGateway(STOCKHOLM);
    stockholm = await Api.for(se, STOCKHOLM, restarted.url);
    const after = (await stockholm.get<TimelineView[]>("/v1/referrals")).body;
    expect(after).toEqual(before);
  });
});
