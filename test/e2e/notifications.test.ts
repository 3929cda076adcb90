/**
 * People hear about urgent work (docs/contract.md, principle 11), against running services on a
 * real nats-server, a real SMTP server (smtp-server, offering STARTTLS) and a real webhook
 * receiver that checks every signature with the Standard Webhooks reference code:
 * - an immediate referral that nobody accepts leads to exactly one webhook per subscribed
 *   notification and one e-mail per alert, within seconds;
 * - a live event stream resumed with Last-Event-ID across a restart of the service gets every
 *   notification it missed, once;
 * - nothing delivered contains any value of the synthetic children's data.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createTestCa,
  LocalCountry,
  samplePersonal,
  startMailCatcher,
  startWebhookReceiver,
  waitFor,
  type MailCatcher,
  type TestCa,
  type WebhookReceiver,
} from "@stafett/devkit";
import {
  createLogger,
  NOTIFICATION_TYPES,
  type NotificationPayload,
  type NotificationType,
  type Notifier,
} from "@stafett/shared";
import { connectSse, type SseEvent } from "../support/sse.js";
import { Api } from "./api.js";

const log = createLogger({ service: "e2e", level: process.env.LOG_LEVEL ?? "silent" });
const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
const VAST = "se:hub:vast";
const COORDINATOR = "se:coordinator";

/** What each organisation's case system subscribes to (pinned here, not read from the code). */
const SUBSCRIPTIONS: Readonly<Record<string, readonly NotificationType[]>> = {
  [STOCKHOLM]: ["referral.changed", "referral.escalated", "referral.rejected", "referral.deadline"],
  [GOTEBORG]: ["inbox.new", "inbox.changed", "referral.deadline"],
  [VAST]: NOTIFICATION_TYPES,
  [COORDINATOR]: ["referral.escalated"],
};
const dutyOf = (id: string): string => `jour-${id.replaceAll(":", "-")}@example.org`;

let se: LocalCountry;
let hooks: WebhookReceiver;
let mail: MailCatcher;
let ca: TestCa;
let caDir: string;
/** Every SSE event any test received: searched for personal data at the end. */
const streamed: SseEvent[] = [];

beforeAll(async () => {
  caDir = mkdtempSync(join(tmpdir(), "stafett-notify-ca-"));
  ca = createTestCa(caDir);
  mail = await startMailCatcher({
    tls: { certFile: ca.serverCertFile, keyFile: ca.serverKeyFile },
  });
  hooks = await startWebhookReceiver();
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    tickMs: 100,
    deadlines: { URGENCY_IMMEDIATE: 3_000 },
    notify: (id) => ({
      webhooks:
        SUBSCRIPTIONS[id] === undefined
          ? []
          : [
              {
                name: id.replaceAll(":", "-"),
                url: hooks.url,
                secret: hooks.secret,
                events: SUBSCRIPTIONS[id],
              },
            ],
      mail: {
        host: "127.0.0.1",
        port: mail.port,
        secure: false,
        // The catcher offers STARTTLS: the alert must not go in clear.
        requireTls: true,
        ca: readFileSync(ca.caFile, "utf8"),
        from: "stafett@example.org",
        to: [dutyOf(id)],
      },
      retryMs: [50, 100, 200, 400],
      timeoutMs: 2_000,
      deadlineShare: 0.75,
      linkDownAfterMs: 60_000,
    }),
  });
}, 60_000);

afterAll(async () => {
  await se?.stop();
  await hooks?.stop();
  await mail?.stop();
  if (caDir !== undefined) rmSync(caDir, { recursive: true, force: true });
});

const notifiers = (): Notifier[] => [
  se.gateway("0180").gateway.notifier,
  se.gateway("1480").gateway.notifier,
  se.hub("vast").hub.notifier,
  ...(se.coordinator === undefined ? [] : [se.coordinator.coordinator.notifier]),
];

const settled = (): boolean => notifiers().every((n) => n.store.pending.size === 0);

const payloadOf = (body: string): NotificationPayload => JSON.parse(body) as NotificationPayload;

describe("an immediate referral that nobody accepts", () => {
  it("gives one verified webhook per subscribed notification and one e-mail per alert", async () => {
    const stockholm = await Api.for(se, STOCKHOLM, se.gateway("0180").url);
    const res = await stockholm.post<{ referralId: string }>("/v1/referrals", {
      urgency: "URGENCY_IMMEDIATE",
      reason: "REASON_CATEGORY_MISSING",
      destination: { country: "se", municipality: "1480" },
      personal: samplePersonal(3),
    });
    expect(res.status).toBe(202);
    const id = res.body.referralId;
    await waitFor(
      () =>
        se.coordinator?.coordinator.escalations.size === 1 &&
        se
          .gateway("0180")
          .gateway.referral(id)
          ?.timeline.some((t) => t.type === "escalated") === true,
      { timeoutMs: 15_000, message: "the escalation at the coordinator and the origin" },
    );
    await waitFor(settled, { timeoutMs: 10_000, message: "every delivery made" });

    const about = [...hooks.unique().values()]
      .map((d) => payloadOf(d.body))
      .filter((p) => p.data.referralId === id);
    const seen = about
      .map((p) => [p.data.org, p.type, p.data.change ?? ""].join(" "))
      .sort((a, b) => a.localeCompare(b));
    expect(seen).toEqual(
      [
        `${STOCKHOLM} referral.changed opened`,
        `${STOCKHOLM} referral.changed received`,
        `${STOCKHOLM} referral.changed forwarded`,
        `${STOCKHOLM} referral.changed escalated`,
        `${STOCKHOLM} referral.escalated `,
        `${STOCKHOLM} referral.deadline `,
        `${GOTEBORG} inbox.new `,
        `${GOTEBORG} referral.deadline `,
        `${VAST} referral.deadline `,
        `${VAST} referral.escalated `,
        `${COORDINATOR} referral.escalated `,
      ].sort((a, b) => a.localeCompare(b)),
    );
    // Every delivery verified with the reference algorithm, and none arrived twice (the
    // receiver answered 204 to each, so no retry was due).
    expect(hooks.deliveries.length).toBeGreaterThan(0);
    expect(hooks.deliveries.every((d) => d.verified)).toBe(true);
    expect(hooks.deliveries.filter((d) => about.some((p) => p.data.id === d.id))).toHaveLength(
      about.length,
    );
    // The link leads to the item in the service's own API.
    const inbox = about.find((p) => p.type === "inbox.new");
    expect(inbox?.data.url).toBe(`${se.gateway("1480").url}/v1/inbox/${id}`);
    expect(inbox?.data.urgency).toBe("URGENCY_IMMEDIATE");

    // One e-mail per alert, to each organisation's people on duty, over TLS.
    const alerts = mail.mails.filter((m) => m.text.includes(id));
    const byRecipient = alerts
      .map((m) => `${m.to.join(",")} ${m.headers["x-stafett-type"] ?? ""}`)
      .sort((a, b) => a.localeCompare(b));
    expect(byRecipient).toEqual(
      [
        `${dutyOf(STOCKHOLM)} referral.deadline`,
        `${dutyOf(STOCKHOLM)} referral.escalated`,
        `${dutyOf(GOTEBORG)} inbox.new`,
        `${dutyOf(GOTEBORG)} referral.deadline`,
        `${dutyOf(VAST)} referral.deadline`,
        `${dutyOf(VAST)} referral.escalated`,
        `${dutyOf(COORDINATOR)} referral.escalated`,
      ].sort((a, b) => a.localeCompare(b)),
    );
    expect(new Set(alerts.map((m) => m.messageId)).size).toBe(alerts.length);
    expect(alerts.every((m) => m.secure)).toBe(true);
    const immediate = alerts.find((m) => m.headers["x-stafett-type"] === "inbox.new");
    expect(immediate?.subject).toBe(
      "[Stafett] Ny omedelbar hänvisning att ta emot / New immediate referral to take over",
    );
    expect(immediate?.text).toContain(`Öppna: ${se.gateway("1480").url}/v1/inbox/${id}`);
    expect(immediate?.text).toContain(`Open: ${se.gateway("1480").url}/v1/inbox/${id}`);
  });
});

describe("the live event stream", () => {
  it("resumed with Last-Event-ID across a restart, gives every notification missed, once", async () => {
    const token = await se.token(STOCKHOLM);
    const open = async (n: number): Promise<string> => {
      const api = new Api(se.gateway("0180").url, token);
      const res = await api.post<{ referralId: string }>("/v1/referrals", {
        urgency: "URGENCY_NORMAL",
        reason: "REASON_CATEGORY_MOVED",
        destination: { country: "se", municipality: "1480" },
        personal: samplePersonal(n),
      });
      expect(res.status).toBe(202);
      return res.body.referralId;
    };
    const changes = (events: SseEvent[], id: string): string[] =>
      events
        .map((e) => payloadOf(e.data))
        .filter((p) => p.data.referralId === id)
        .map((p) => p.data.change ?? p.type);

    const first = await connectSse(`${se.gateway("0180").url}/v1/events`, token);
    const r1 = await open(1);
    await waitFor(() => changes(first.events, r1).length === 3, {
      timeoutMs: 10_000,
      message: "opened, received and forwarded on the stream",
    });
    expect(changes(first.events, r1).sort()).toEqual(["forwarded", "opened", "received"]);
    const last = first.events.at(-1)?.id ?? "";
    first.close();
    await first.closed;
    streamed.push(...first.events);

    // Missed while disconnected: a second referral; missed while the service is down: the
    // acceptance of the first (it waits in the stream) and the close that follows it.
    const r2 = await open(2);
    await waitFor(() => se.gateway("1480").gateway.inboxItem(r1) !== undefined, {
      timeoutMs: 10_000,
      message: "the first referral in Göteborg's inbox",
    });
    await waitFor(
      () =>
        (se.gateway("0180").gateway.referral(r2)?.timeline.length ?? 0) >= 3 &&
        se.gateway("0180").gateway.notifier.store.lastSeq >= Number(last) + 3,
      { timeoutMs: 10_000, message: "the second referral's notifications stored" },
    );
    await se.gateway("0180").stop();
    const goteborg = await Api.for(se, GOTEBORG, se.gateway("1480").url);
    expect((await goteborg.post(`/v1/inbox/${r1}/accept`)).status).toBe(200);
    const restarted = await se.startGateway(STOCKHOLM);
    await waitFor(
      () => restarted.gateway.referral(r1)?.timeline.some((t) => t.type === "closed") === true,
      { timeoutMs: 10_000, message: "the acceptance taken in after the restart" },
    );

    const resumed = await connectSse(`${restarted.url}/v1/events`, token, last);
    const expected = [...restarted.gateway.notifier.since(Number(last))].map(([seq]) =>
      String(seq),
    );
    await waitFor(() => resumed.events.length >= expected.length, {
      timeoutMs: 10_000,
      message: "the missed notifications on the resumed stream",
    });
    resumed.close();
    await resumed.closed;
    streamed.push(...resumed.events);
    const ids = resumed.events.map((e) => e.id);
    // Every one after the last seen, in order, none twice, none seen before.
    expect(ids).toEqual(expected);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((i) => Number(i) > Number(last))).toBe(true);
    expect(changes(resumed.events, r2).sort()).toEqual(["forwarded", "opened", "received"]);
    expect(changes(resumed.events, r1).sort()).toEqual(["accepted", "closed"]);
  });

  it("refuses a token of another organisation and answers 401 without one", async () => {
    const url = `${se.gateway("0180").url}/v1/events`;
    expect((await fetch(url)).status).toBe(401);
    const other = await fetch(url, {
      headers: { authorization: `Bearer ${await se.token(GOTEBORG)}` },
    });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { code: string }).code).toBe("ERR_FORBIDDEN");
  });
});

/** Every string in a value (keys' values, array items), however deep. */
function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (value === null || typeof value !== "object") return [];
  return Object.values(value).flatMap(stringsIn);
}

describe("what is delivered", () => {
  it("holds no value of the synthetic children's data: webhooks, e-mails, the stream", () => {
    const personal = [
      ...new Set(Array.from({ length: 10 }, (_, n) => stringsIn(samplePersonal(n))).flat()),
    ];
    const texts = [
      ...hooks.deliveries.map((d) => d.body),
      ...mail.mails.flatMap((m) => [m.raw, m.subject, m.text]),
      ...streamed.map((e) => e.data),
    ];
    // Something was delivered by each channel (the tests above ran first).
    expect(hooks.deliveries.length).toBeGreaterThan(10);
    expect(mail.mails.length).toBeGreaterThan(5);
    expect(streamed.length).toBeGreaterThan(5);
    const found: string[] = [];
    for (const s of personal) {
      // Codes of two or three letters ("sv", "SE") are looked for as whole words, longer
      // strings anywhere.
      const pattern =
        s.length <= 3
          ? new RegExp(`(?<![A-Za-z0-9])${s}(?![A-Za-z0-9])`)
          : new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
      for (const t of texts) if (pattern.test(t)) found.push(s);
    }
    expect(found).toEqual([]);
  });
});
