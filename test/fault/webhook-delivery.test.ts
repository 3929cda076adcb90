/**
 * Webhook deliveries under failure, against running services on a real nats-server and real
 * HTTP receivers: a receiver that hangs, fails with 500 and then takes the delivery (the
 * back-off schedule, the eventual delivery, the handoff never waiting for it); a receiver that
 * answers 410 (disabled, with a coded log line, across a restart too); and the gateway's process
 * killed with SIGKILL between the event and the delivery (after the restart the delivery arrives
 * with the same id, and what happened while it was down is delivered too).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LocalCountry,
  samplePersonal,
  spawnService,
  startMailCatcher,
  startWebhookReceiver,
  waitFor,
  writeServiceFiles,
  type MailCatcher,
  type ServiceProcess,
  type WebhookReceiver,
} from "@stafett/devkit";
import {
  createLogger,
  type DeliveryOutcome,
  type NotificationPayload,
  type NotifyConfig,
} from "@stafett/shared";
import { Api } from "../e2e/api.js";

const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
/** Every log line of the services (JSON), to find the coded line of a disabled endpoint. */
const logLines: string[] = [];
const log = createLogger(
  { service: "fault", level: "info" },
  {
    write(line: string) {
      logLines.push(line);
    },
  },
);
const RETRY_MS = [150, 300, 450, 600];

let se: LocalCountry;
let flaky: WebhookReceiver;
let gone: WebhookReceiver;
let crashed: WebhookReceiver;
let mail: MailCatcher;
let goteborgProcess: ServiceProcess | undefined;

const notifyFor = (id: string): NotifyConfig | undefined =>
  id !== GOTEBORG
    ? undefined
    : {
        webhooks: [
          { name: "flaky", url: flaky.url, secret: flaky.secret, events: ["inbox.new"] },
          { name: "gone", url: gone.url, secret: gone.secret, events: ["inbox.new"] },
        ],
        retryMs: RETRY_MS,
        // Longer than the handoff takes under load: the first attempt hangs through all of it.
        timeoutMs: 4_000,
        deadlineShare: 0.75,
        linkDownAfterMs: 60_000,
      };

beforeAll(async () => {
  [flaky, gone, crashed, mail] = await Promise.all([
    startWebhookReceiver(),
    startWebhookReceiver(),
    startWebhookReceiver(),
    startMailCatcher(),
  ]);
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    notify: notifyFor,
    servicesOff: true,
  });
  await Promise.all([
    se.startHub("se:hub:vast"),
    se.startGateway(STOCKHOLM),
    se.startGateway(GOTEBORG),
  ]);
}, 60_000);

afterAll(async () => {
  await goteborgProcess?.kill();
  await se?.stop();
  await Promise.all([flaky?.stop(), gone?.stop(), crashed?.stop(), mail?.stop()]);
});

const open = async (n: number, urgency = "URGENCY_NORMAL"): Promise<string> => {
  const api = await Api.for(se, STOCKHOLM, se.gateway("0180").url);
  const res = await api.post<{ referralId: string }>("/v1/referrals", {
    urgency,
    reason: "REASON_CATEGORY_MOVED",
    destination: { country: "se", municipality: "1480" },
    personal: samplePersonal(n),
  });
  expect(res.status).toBe(202);
  return res.body.referralId;
};

const referralOf = (body: string): string | undefined =>
  (JSON.parse(body) as NotificationPayload).data.referralId;

describe("a receiver that fails", () => {
  it("is retried on the back-off schedule until it takes the delivery; the handoff does not wait", async () => {
    const goteborg = se.gateway("1480").gateway;
    const outcomes: DeliveryOutcome[] = [];
    const stopListening = goteborg.notifier.onOutcome((o) => outcomes.push(o));
    // Hangs until the handoff is done, then fails once with 500, then takes it.
    let handedOver = false;
    flaky.answer = ({ attempt }) => (!handedOver ? "hang" : attempt === 2 ? 500 : 204);
    gone.answer = () => 410;

    const id = await open(1);
    const delivered = () =>
      flaky.deliveries.filter((d) => referralOf(d.body) === id && d.answered === 204);
    await waitFor(() => flaky.deliveries.some((d) => referralOf(d.body) === id), {
      timeoutMs: 10_000,
      message: "the first attempt at the hanging receiver",
    });
    // The referral is handed over, accepted and closed while the receiver still hangs.
    const api = await Api.for(se, GOTEBORG, se.gateway("1480").url);
    expect((await api.post(`/v1/inbox/${id}/accept`)).status).toBe(200);
    await waitFor(
      () =>
        se
          .gateway("0180")
          .gateway.referral(id)
          ?.timeline.some((t) => t.type === "closed") === true,
      { timeoutMs: 10_000, message: "the origin closed after the acceptance" },
    );
    expect(outcomes.filter((o) => o.to === "flaky")).toEqual([]);
    expect(delivered()).toEqual([]);
    handedOver = true;

    await waitFor(() => outcomes.some((o) => o.to === "flaky" && o.result === "delivered"), {
      timeoutMs: 15_000,
      message: "the delivery taken on the third attempt",
    });
    expect(delivered()).toHaveLength(1);
    stopListening();
    const attempts = flaky.deliveries.filter((d) => referralOf(d.body) === id);
    const mine = outcomes.filter((o) => o.to === "flaky");
    // One id throughout: a timeout, a 500, then delivered; each signature verified.
    expect(new Set(attempts.map((d) => d.id)).size).toBe(1);
    expect(attempts.every((d) => d.verified)).toBe(true);
    expect(attempts.map((d) => d.answered)).toEqual(["hang", 500, 204]);
    expect(mine.map((o) => [o.attempt, o.result, o.status])).toEqual([
      [1, "retry", "timeout"],
      [2, "retry", "500"],
      [3, "delivered", "2xx"],
    ]);
    // The schedule: attempt k + 1 is due retryMs[k - 1] after attempt k failed, and not made before.
    for (const k of [0, 1]) {
      const next = mine[k]?.next ?? 0;
      expect(next - (attempts[k]?.at ?? 0)).toBeGreaterThanOrEqual(RETRY_MS[k] ?? 0);
      expect(attempts[k + 1]?.at ?? 0).toBeGreaterThanOrEqual(next);
    }
    // The outbox on disk says the same: two failed attempts, then delivered.
    const pendingNow = [...goteborg.notifier.store.pending.values()].filter(
      (p) => p.to === "flaky",
    );
    expect(pendingNow).toEqual([]);
  });

  it("that answers 410 is disabled with a coded log line and gets nothing more, after a restart too", async () => {
    // The first test's referral made the one attempt: 410.
    expect(gone.deliveries).toHaveLength(1);
    expect(gone.deliveries[0]?.answered).toBe(410);
    const coded = logLines
      .map((l) => JSON.parse(l) as { code?: string; endpoint?: string; msg?: string })
      .filter((l) => l.code === "ERR_WEBHOOK_GONE");
    expect(coded).toEqual([
      expect.objectContaining({
        endpoint: "gone",
        msg: "webhook endpoint answered 410 Gone; it is disabled",
      }),
    ]);
    flaky.answer = () => 204;
    const second = await open(2);
    await waitFor(() => flaky.deliveries.some((d) => referralOf(d.body) === second), {
      timeoutMs: 10_000,
      message: "the second referral's delivery to the working receiver",
    });
    await se.gateway("1480").stop();
    await se.startGateway(GOTEBORG);
    const third = await open(3);
    await waitFor(() => flaky.deliveries.some((d) => referralOf(d.body) === third), {
      timeoutMs: 10_000,
      message: "the third referral's delivery after the restart",
    });
    expect(gone.deliveries).toHaveLength(1);
  });
});

describe("the gateway killed between the event and the delivery", () => {
  it("delivers after the restart with the same id, and loses nothing that happened meanwhile", async () => {
    await se.gateway("1480").stop();
    se.gateways.delete(GOTEBORG);
    const dir = join(se.stateRoot, "goteborg-process");
    const env = writeServiceFiles(
      se.country,
      GOTEBORG,
      dir,
      se.natsUrl,
      undefined,
      se.nkeySeed(GOTEBORG),
    );
    const secretFile = join(dir, "case-system.whsec");
    writeFileSync(secretFile, crashed.secret, { mode: 0o600 });
    writeFileSync(
      join(dir, "webhooks.json"),
      JSON.stringify([
        {
          name: "case-system",
          url: crashed.url,
          secretFile: "case-system.whsec",
          events: ["inbox.new", "inbox.changed"],
        },
      ]),
    );
    const processEnv = {
      ...env,
      STAFETT_WEBHOOKS: join(dir, "webhooks.json"),
      STAFETT_WEBHOOK_RETRY: "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms",
      STAFETT_WEBHOOK_TIMEOUT: "1s",
      STAFETT_SMTP_URL: mail.url,
      STAFETT_ALERT_FROM: "stafett@example.org",
      STAFETT_ALERT_TO: "jour@goteborg.example.org",
    };
    crashed.answer = () => 500;
    goteborgProcess = spawnService("gateway", processEnv);
    await goteborgProcess.ready;

    const id = await open(4, "URGENCY_IMMEDIATE");
    await waitFor(() => crashed.deliveries.some((d) => referralOf(d.body) === id), {
      timeoutMs: 10_000,
      message: "a failed attempt at the receiver",
    });
    await goteborgProcess.kill();
    const before = new Set(crashed.deliveries.map((d) => d.id));
    expect(before.size).toBe(1);
    // While it is down the origin updates the referral: an event the gateway has not taken in.
    const api = await Api.for(se, STOCKHOLM, se.gateway("0180").url);
    expect(
      (await api.post(`/v1/referrals/${id}/withdraw`, { reason: "WITHDRAW_REASON_CHILD_FOUND" }))
        .status,
    ).toBe(200);

    crashed.answer = () => 204;
    goteborgProcess = spawnService("gateway", processEnv);
    await goteborgProcess.ready;
    const taken = () => crashed.unique();
    await waitFor(
      () =>
        [...crashed.deliveries].filter((d) => d.answered === 204 && referralOf(d.body) === id)
          .length >= 2,
      { timeoutMs: 15_000, message: "both notifications delivered after the restart" },
    );
    const ok = crashed.deliveries.filter((d) => d.answered === 204);
    const types = ok.map((d) => (JSON.parse(d.body) as NotificationPayload).type).sort();
    expect(types).toEqual(["inbox.changed", "inbox.new"]);
    // The one attempted before the kill arrived with its id; every delivery verified.
    expect(ok.some((d) => before.has(d.id))).toBe(true);
    expect(crashed.deliveries.every((d) => d.verified)).toBe(true);
    expect(taken().size).toBe(2);
    // The immediate referral's alert went out by e-mail; a repeat would carry the same Message-ID.
    await waitFor(() => mail.mails.some((m) => m.text.includes(id)), {
      timeoutMs: 10_000,
      message: "the immediate referral's alert by e-mail",
    });
    const alerts = mail.mails.filter((m) => m.text.includes(id));
    expect(new Set(alerts.map((m) => m.messageId)).size).toBe(1);
    expect(alerts[0]?.to).toEqual(["jour@goteborg.example.org"]);
  });
});
