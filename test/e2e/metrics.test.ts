/**
 * Metrics during a handoff: every service's /metrics is scraped and parsed as Prometheus text
 * while referrals move, and the numbers move with them: the books' states, the oldest
 * unaccepted referral's age (growing until the acceptance, then 0), the HTTP and journal
 * histograms, escalations at the hub and the coordinator, refusals and quarantine copies by code.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, samplePersonal, waitForValue } from "@stafett/devkit";
import {
  Bus,
  createLogger,
  encodeEvent,
  encodeSignedEvent,
  eventHeaders,
  signDetached,
  type EventJson,
} from "@stafett/shared";
import { scrape, type Exposition } from "../support/prometheus.js";
import { Api } from "./api.js";

const log = createLogger({ service: "metrics", level: process.env.LOG_LEVEL ?? "silent" });
const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
let se: LocalCountry;
let stockholm: Api;
let goteborg: Api;

/** Every running service's /metrics address, by organisation. */
function metricsUrls(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, s] of [...se.gateways, ...se.hubs]) out.set(id, s.metricsUrl ?? "");
  out.set("se:coordinator", se.coordinator?.metricsUrl ?? "");
  out.set("se:liaison", se.liaison?.metricsUrl ?? "");
  return out;
}

const scrapeOf = (id: string): Promise<Exposition> => scrape(metricsUrls().get(id) ?? "");

/** Scrapes `id` until `holds` is true of its metrics; returns that scrape. */
function scrapeUntil(
  id: string,
  holds: (m: Exposition) => boolean,
  message: string,
): Promise<Exposition> {
  return waitForValue(
    async () => {
      const m = await scrapeOf(id);
      return holds(m) ? m : undefined;
    },
    { timeoutMs: 15_000, intervalMs: 100, message },
  );
}

beforeAll(async () => {
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    tickMs: 100,
    deadlines: { URGENCY_IMMEDIATE: 1_000 },
  });
  stockholm = await Api.for(se, STOCKHOLM, se.gateway("0180").url);
  goteborg = await Api.for(se, GOTEBORG, se.gateway("1480").url);
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

const HIGH = { kind: "held", urgency: "URGENCY_HIGH" };

describe("metrics", () => {
  it("every service serves Prometheus text on its own address, with its standing metrics", async () => {
    const urls = metricsUrls();
    expect(urls.size).toBe(6);
    for (const [id, url] of urls) {
      // Its own listener, not the API's.
      expect(url).not.toBe("");
      const api = [...se.gateways, ...se.hubs].find(([k]) => k === id)?.[1].url;
      if (api !== undefined) expect(new URL(url).port).not.toBe(new URL(api).port);
      // Ready once its checks have run (on a loaded machine a first check may still time out).
      const m = await waitForValue(
        async () => {
          const s = await scrape(url);
          return s.value("stafett_ready") === 1 ? s : undefined;
        },
        { timeoutMs: 15_000, message: `${id} to report itself ready in its metrics` },
      );
      expect(m.types.get("stafett_http_request_duration_seconds")).toBe("histogram");
      expect(m.types.get("stafett_journal_append_duration_seconds")).toBe("histogram");
      expect(m.types.get("stafett_escalations_total")).toBe("counter");
      expect(m.value("stafett_ready")).toBe(1);
      expect(m.value("stafett_trust_list_version", { country: "se" })).toBe(1);
      expect(m.value("stafett_key_valid", { use: "sig" })).toBe(1);
      expect(m.value("stafett_key_valid", { use: "enc" })).toBe(1);
      expect(m.all("stafett_consumer_pending_messages").length).toBeGreaterThan(0);
      // Process metrics come along (memory, CPU), unprefixed as Prometheus names them.
      expect(m.value("process_resident_memory_bytes")).toBeGreaterThan(0);
    }
  });

  it(
    "counters and gauges move with a referral: the oldest unaccepted age grows until the accept, then drops",
    { timeout: 60_000 },
    async () => {
      const before = await scrapeOf(STOCKHOLM);
      const posted = (m: Exposition): number =>
        m.value("stafett_http_request_duration_seconds_count", {
          method: "POST",
          route: "/v1/referrals",
          status: "202",
        }) ?? 0;
      const opened = await stockholm.post<{ referralId: string }>("/v1/referrals", {
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "se", municipality: "1480" },
        personal: samplePersonal(),
      });
      expect(opened.status).toBe(202);

      const origin = await scrapeOf(STOCKHOLM);
      expect(posted(origin) - posted(before)).toBe(1);
      expect(origin.value("stafett_journal_append_duration_seconds_count")).toBeGreaterThan(
        before.value("stafett_journal_append_duration_seconds_count") ?? 0,
      );

      // At the hub: forwarded to Göteborg, nobody has accepted yet, and it gets older.
      const first = await scrapeUntil(
        "se:hub:vast",
        (m) => m.value("stafett_referrals", { kind: "held", state: "forwarded" }) === 1,
        "the hub to count the referral as forwarded",
      );
      const age1 = first.value("stafett_oldest_unaccepted_referral_age_seconds", HIGH) ?? 0;
      expect(age1).toBeGreaterThan(0);
      expect(first.value("stafett_referral_deadlines_next_hour", HIGH)).toBe(0);
      await scrapeUntil(
        "se:hub:vast",
        (m) => (m.value("stafett_oldest_unaccepted_referral_age_seconds", HIGH) ?? 0) > age1,
        "the oldest unaccepted age to grow",
      );
      await scrapeUntil(
        GOTEBORG,
        (m) =>
          m.value("stafett_referrals", { kind: "inbox", state: "pending" }) === 1 &&
          (m.value("stafett_oldest_unaccepted_referral_age_seconds", {
            kind: "inbox",
            urgency: "URGENCY_HIGH",
          }) ?? 0) > 0,
        "Göteborg to count it pending in its inbox",
      );

      const accepted = await goteborg.post(`/v1/inbox/${opened.body.referralId}/accept`);
      expect(accepted.status).toBe(200);
      // Accepted, and soon closed by Stockholm: either way, taken over.
      const after = await scrapeUntil(
        "se:hub:vast",
        (m) =>
          (m.value("stafett_referrals", { kind: "held", state: "accepted" }) ?? 0) +
            (m.value("stafett_referrals", { kind: "held", state: "closed" }) ?? 0) ===
          1,
        "the hub to count it accepted (or closed)",
      );
      expect(after.value("stafett_referrals", { kind: "held", state: "forwarded" })).toBe(0);
      expect(after.value("stafett_oldest_unaccepted_referral_age_seconds", HIGH)).toBe(0);
      const inbox = await scrapeOf(GOTEBORG);
      expect(inbox.value("stafett_referrals", { kind: "inbox", state: "accepted" })).toBe(1);
      expect(
        inbox.value("stafett_oldest_unaccepted_referral_age_seconds", {
          kind: "inbox",
          urgency: "URGENCY_HIGH",
        }),
      ).toBe(0);
      // The origin no longer waits either: accepted, and then closed by its gateway.
      await scrapeUntil(
        STOCKHOLM,
        (m) =>
          m.value("stafett_oldest_unaccepted_referral_age_seconds", {
            kind: "sent",
            urgency: "URGENCY_HIGH",
          }) === 0,
        "the origin to stop counting it as unaccepted",
      );
      // Every message was handled and acknowledged.
      const hub = await scrapeUntil(
        "se:hub:vast",
        (m) =>
          m.value("stafett_consumer_pending_messages", { consumer: "se-hub-vast" }) === 0 &&
          m.value("stafett_consumer_ack_pending_messages", { consumer: "se-hub-vast" }) === 0,
        "the hub's consumer to be drained",
      );
      expect(hub.value("stafett_escalations_total")).toBe(0);
    },
  );

  it(
    "a missed deadline counts an escalation at the hub and at the coordinator",
    { timeout: 30_000 },
    async () => {
      const coordinatorBefore = (await scrapeOf("se:coordinator")).value(
        "stafett_escalations_total",
      );
      expect(coordinatorBefore).toBe(0);
      const opened = await stockholm.post("/v1/referrals", {
        urgency: "URGENCY_IMMEDIATE",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "se", municipality: "1480" },
        personal: samplePersonal(),
      });
      expect(opened.status).toBe(202);
      const hub = await scrapeUntil(
        "se:hub:vast",
        (m) => m.value("stafett_escalations_total") === 1,
        "the hub to count its escalation",
      );
      expect(
        hub.value("stafett_referrals_overdue", { kind: "held", urgency: "URGENCY_IMMEDIATE" }),
      ).toBe(1);
      const coordinator = await scrapeUntil(
        "se:coordinator",
        (m) => m.value("stafett_escalations_total") === 1,
        "the coordinator to count the escalation it received",
      );
      expect(
        coordinator.value("stafett_referrals", { kind: "escalation", state: "escalated" }),
      ).toBe(1);
    },
  );

  it("a refused message counts by its code, refused and quarantined", async () => {
    const before = await scrapeOf("se:hub:vast");
    const code = { code: "ERR_ISSUER_MISMATCH" };
    expect(before.value("stafett_refused_messages_total", code)).toBeUndefined();
    // Stockholm's key, claiming to be Göteborg.
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
        destination: { country: "se", municipality: "1480" },
        deadline: new Date(Date.now() + 3_600_000).toISOString(),
        // Never opened: the issuer check refuses the message first.
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
    const bus = await Bus.connect(
      { servers: se.natsUrl, name: "forger", connection: se.admin },
      log,
    );
    try {
      await bus.publish({
        subject: "stafett.se.vast.hub.opened",
        bytes: signed,
        headers: eventHeaders(event),
      });
    } finally {
      await bus.close();
    }
    const after = await scrapeUntil(
      "se:hub:vast",
      (m) => m.value("stafett_quarantined_messages_total", code) === 1,
      "the hub to count the quarantine copy",
    );
    expect(after.value("stafett_refused_messages_total", code)).toBe(1);
    // No label anywhere carries a referral or event id.
    for (const s of after.samples)
      for (const v of Object.values(s.labels)) {
        expect(v).not.toBe(event.id);
        expect(v).not.toBe(event.referralId);
      }
  });
});
