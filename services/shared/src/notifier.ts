/**
 * A party's notifier: it stores every notification its service derives from the records it
 * applies (notifications.ts), once, in a durable outbox (notify-store.ts), and delivers each
 * to the organisation's webhook endpoints (signed as Standard Webhooks), to its live event
 * stream (GET /v1/events, http-service.ts) and, for an alert, by e-mail to the people on duty.
 *
 * - Derived, not hooked: the service passes what each applied record leads to (`observe`), on
 *   replay as well as live. An id already stored is not stored again, so a crash between the
 *   journal's write and the outbox's costs nothing: the replay derives the missing one again.
 *   When the outbox is created (a party that did not notify before), what the history leads to
 *   is recorded as seen, not sent.
 * - Never in the way of the handoff: observing only queues a write; delivery runs on its own.
 * - At least once, with a stable id: a delivery is retried on the back-off schedule (`retryMs`,
 *   Standard Webhooks' by default) across restarts, with the same `webhook-id`; a receiver
 *   drops repeats by it. An endpoint that answers 410 Gone is disabled, with a coded log line
 *   and the `onOutcome` hook, and not tried again.
 * - Timers: a referral near its deadline (`deadlineShare` of the time to it, nobody accepted)
 *   and a partner link down longer than `linkDownAfterMs`.
 */
import { createTransport } from "nodemailer";
import { Webhook } from "standardwebhooks";
import { alertMail } from "./alert-mail.js";
import type { Logger } from "./logger.js";
import {
  isAlert,
  notificationId,
  payloadOf,
  type DeadlineNotice,
  type Derived,
  type Notification,
  type NotificationType,
} from "./notifications.js";
import { MAIL, NotificationStore, type PendingDelivery } from "./notify-store.js";

/** One webhook endpoint of the organisation's case system. */
export interface WebhookEndpoint {
  /** A name for logs and the outbox (the URL may hold a secret). */
  name: string;
  url: string;
  /** The Standard Webhooks secret, `whsec_` and base64 (read from a 0600 file). */
  secret: string;
  /** The notification types it wants. */
  events: readonly NotificationType[];
}

/** E-mail alerts to the people on duty, over SMTP. */
export interface MailSettings {
  host: string;
  port: number;
  /** TLS from the first byte (smtps, port 465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  /** Refuse to send unless the server offers STARTTLS. */
  requireTls: boolean;
  user?: string;
  pass?: string;
  /** PEM of the CA the server's certificate must chain to (else the system's). */
  ca?: string;
  from: string;
  to: readonly string[];
}

export interface NotifyConfig {
  /** The service's URL as the organisation's systems reach it (links); else its bound address. */
  publicUrl?: string;
  webhooks: readonly WebhookEndpoint[];
  mail?: MailSettings;
  /** Waits before the 2nd, 3rd, ... attempt of a delivery; after the last, it is given up. */
  retryMs: readonly number[];
  /** How long one webhook attempt may take. */
  timeoutMs: number;
  /** The share of the time to a deadline after which an unaccepted referral alerts (0.75). */
  deadlineShare: number;
  /** How long a partner link must be down before it alerts (the liaison). */
  linkDownAfterMs: number;
}

/**
 * Standard Webhooks' retry schedule: after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h; about
 * a day and a half of attempts before a delivery is given up.
 */
export const DEFAULT_RETRY_MS: readonly number[] = [
  5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
];

export const DEFAULT_NOTIFY_CONFIG: NotifyConfig = {
  webhooks: [],
  retryMs: DEFAULT_RETRY_MS,
  timeoutMs: 15_000,
  deadlineShare: 0.75,
  linkDownAfterMs: 300_000,
};

/** What became of one delivery attempt: for metrics (the `onOutcome` hook) and tests. */
export interface DeliveryOutcome {
  id: string;
  /** The endpoint's name, or "mail". */
  to: string;
  attempt: number;
  result: "delivered" | "retry" | "dead" | "disabled";
  /** The HTTP status, "timeout", "network", or the SMTP failure's code. */
  status: string;
  /** For "retry": when the next attempt is due (ms since the epoch). */
  next?: number;
}

export interface NotifierOptions {
  now?: () => Date;
}

/** Attempts in flight to one receiver at most. */
const PER_TARGET = 4;
/** The longest a timer waits before looking again (a timer past 2^31 ms would fire at once). */
const MAX_TIMER_MS = 60_000;

export type StreamListener = (seq: number, n: Notification) => void;

export class Notifier {
  readonly store: NotificationStore;
  private readonly config: NotifyConfig;
  private readonly log: Logger;
  private readonly org: string;
  private readonly now: () => Date;
  private readonly outcomes = new Set<(o: DeliveryOutcome) => void>();
  /** Until `replayed`: what is observed comes from the journal's history. */
  private replaying = true;
  private live = false;
  private stopped = false;
  private baseUrl = "";
  /** Ids the history led to, when the outbox is new: recorded as seen at `start`. */
  private readonly history: string[] = [];
  private readonly watches = new Map<string, DeadlineNotice>();
  private watchTimer: NodeJS.Timeout | undefined;
  private watchDue = Infinity;
  private pumpTimer: NodeJS.Timeout | undefined;
  private pumpDue = Infinity;
  private readonly inFlight = new Map<string, AbortController>();
  private readonly perTarget = new Map<string, number>();
  private readonly attempts = new Set<Promise<void>>();
  private readonly writes = new Set<Promise<unknown>>();
  private readonly listeners = new Set<StreamListener>();
  private readonly links = new Map<
    string,
    { since: Date; timer?: NodeJS.Timeout; told: boolean }
  >();
  private readonly mailer: ReturnType<typeof createTransport> | undefined;

  private constructor(
    store: NotificationStore,
    org: string,
    config: NotifyConfig,
    log: Logger,
    options: NotifierOptions,
  ) {
    this.store = store;
    this.org = org;
    this.config = config;
    this.log = log.child({ component: "notify" });
    this.now = options.now ?? (() => new Date());
    const m = config.mail;
    this.mailer =
      m === undefined || m.to.length === 0
        ? undefined
        : createTransport({
            host: m.host,
            port: m.port,
            secure: m.secure,
            requireTLS: m.requireTls,
            ...(m.user === undefined ? {} : { auth: { user: m.user, pass: m.pass ?? "" } }),
            ...(m.ca === undefined ? {} : { tls: { ca: m.ca } }),
            connectionTimeout: config.timeoutMs,
            greetingTimeout: config.timeoutMs,
            socketTimeout: config.timeoutMs,
          });
  }

  /** Opens the party's outbox in `stateDir`. Call before the party replays its journal. */
  static open(
    stateDir: string,
    org: string,
    config: NotifyConfig | undefined,
    log: Logger,
    options: NotifierOptions = {},
  ): Notifier {
    return new Notifier(
      NotificationStore.open(stateDir),
      org,
      config ?? DEFAULT_NOTIFY_CONFIG,
      log,
      options,
    );
  }

  get organisation(): string {
    return this.org;
  }

  /** What one applied record led to; called from the service's `apply`, on replay and live. */
  observe(derived: readonly Derived[]): void {
    for (const d of derived) {
      if ("notify" in d) this.notify(d.notify);
      else if ("watch" in d) this.watch(d.watch);
      else this.watches.delete(d.unwatch);
    }
  }

  /** The party has replayed its journal: what is observed from now on is new. */
  replayed(): void {
    if (!this.replaying) return;
    this.replaying = false;
    if (this.store.fresh) this.track(this.store.addBaseline(this.history.splice(0), true));
  }

  /**
   * Starts delivering (and the timers). `baseUrl` is the service's bound HTTP address (links
   * use `publicUrl` when configured).
   */
  start(baseUrl: string): void {
    this.replayed();
    this.baseUrl = this.config.publicUrl ?? baseUrl;
    this.live = true;
    this.armWatches();
    this.pump();
  }

  /** The item URL of a notification. */
  urlOf(n: Notification): string {
    return payloadOf(n, this.baseUrl).data.url;
  }

  /** The stream's payload of a notification. */
  payload(n: Notification): ReturnType<typeof payloadOf> {
    return payloadOf(n, this.baseUrl);
  }

  private notify(n: Notification): void {
    if (this.store.has(n.id)) return;
    if (this.replaying && this.store.fresh) {
      this.history.push(n.id);
      return;
    }
    const to = [
      ...this.config.webhooks
        .filter((w) => w.events.includes(n.type) && this.store.disabled.get(w.name) !== w.url)
        .map((w) => w.name),
      ...(this.mailer !== undefined && isAlert(n) ? [MAIL] : []),
    ];
    this.track(
      this.store.add(n, to).then((seq) => {
        for (const l of this.listeners) l(seq, n);
        this.log.info({ notification: n.id, type: n.type, seq, to }, "notification stored");
        if (this.live) this.pump();
      }),
    );
  }

  /** Keeps a write's promise until it settles; a failed write is logged, not thrown. */
  private track(p: Promise<unknown>): void {
    const w = p.catch((err: unknown) => {
      this.log.error({ err }, "the notification outbox could not be written");
    });
    this.writes.add(w);
    void w.finally(() => this.writes.delete(w));
  }

  /** Calls `listener` after every delivery attempt (a metric hook; tests). */
  onOutcome(listener: (o: DeliveryOutcome) => void): () => void {
    this.outcomes.add(listener);
    return () => this.outcomes.delete(listener);
  }

  // --- the live event stream --------------------------------------------------------------

  /** Calls `listener` with every notification stored from now on, once it is on disk. */
  subscribe(listener: StreamListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The notifications after `seq` that are on disk, in order. */
  *since(seq: number): Generator<[number, Notification]> {
    const last = this.store.lastSeq;
    for (let s = Math.max(seq, 0) + 1; s <= last; s++) {
      const n = this.store.bySeq(s);
      if (n !== undefined) yield [s, n];
    }
  }

  // --- deadlines --------------------------------------------------------------------------

  private watch(w: DeadlineNotice): void {
    if (this.store.has(w.notification.id)) return;
    this.watches.set(w.key, w);
    if (this.live) this.armWatches();
  }

  private dueOf(w: DeadlineNotice): number {
    const start = Date.parse(w.start);
    const deadline = Date.parse(w.deadline);
    return start + Math.max(0, deadline - start) * this.config.deadlineShare;
  }

  private armWatches(): void {
    if (this.stopped) return;
    let next = Infinity;
    for (const w of this.watches.values()) next = Math.min(next, this.dueOf(w));
    if (next === Infinity || next >= this.watchDue) return;
    clearTimeout(this.watchTimer);
    this.watchDue = next;
    const wait = Math.min(Math.max(next - this.now().getTime(), 0), MAX_TIMER_MS);
    this.watchTimer = setTimeout(() => {
      this.watchDue = Infinity;
      this.fireWatches();
    }, wait);
  }

  private fireWatches(): void {
    const now = this.now();
    const t = now.getTime();
    for (const [key, w] of this.watches) {
      if (this.dueOf(w) > t) continue;
      this.watches.delete(key);
      // Past the deadline itself the escalation tells (a service that was down meanwhile).
      if (Date.parse(w.deadline) <= t) continue;
      this.notify({ ...w.notification, at: now.toISOString() });
    }
    this.armWatches();
  }

  // --- partner links ----------------------------------------------------------------------

  /**
   * A partner country's link went down or came back. The liaison learns it from its store and
   * forward: the first publish to the partner that fails, and the first that succeeds again.
   */
  linkState(partner: string, up: boolean): void {
    const known = this.links.get(partner);
    if (!up) {
      if (known !== undefined) return;
      const since = this.now();
      const state: { since: Date; timer?: NodeJS.Timeout; told: boolean } = { since, told: false };
      state.timer = setTimeout(() => {
        state.told = true;
        this.notify(this.linkNotification("link.down", partner, since));
      }, this.config.linkDownAfterMs);
      this.links.set(partner, state);
      return;
    }
    if (known === undefined) return;
    clearTimeout(known.timer);
    this.links.delete(partner);
    if (known.told) this.notify(this.linkNotification("link.up", partner, known.since));
  }

  private linkNotification(
    type: "link.down" | "link.up",
    partner: string,
    since: Date,
  ): Notification {
    return {
      id: notificationId(this.org, type, partner, since.toISOString()),
      type,
      at: this.now().toISOString(),
      data: { org: this.org, partner, since: since.toISOString(), path: "/healthz" },
    };
  }

  // --- delivery ---------------------------------------------------------------------------

  private pump(): void {
    if (this.stopped || !this.live) return;
    const now = this.now().getTime();
    let next = Infinity;
    for (const d of this.store.pending.values()) {
      const key = `${d.to}\u001f${d.id}`;
      if (this.inFlight.has(key)) continue;
      if (d.due > now) {
        next = Math.min(next, d.due);
        continue;
      }
      if ((this.perTarget.get(d.to) ?? 0) >= PER_TARGET) continue;
      if (d.to !== MAIL && !this.endpointOf(d.to)) continue;
      if (d.to === MAIL && this.mailer === undefined) continue;
      this.attempt(key, { ...d });
    }
    if (next < this.pumpDue) {
      clearTimeout(this.pumpTimer);
      this.pumpDue = next;
      this.pumpTimer = setTimeout(
        () => {
          this.pumpDue = Infinity;
          this.pump();
        },
        Math.min(Math.max(next - now, 0), MAX_TIMER_MS),
      );
    }
  }

  private endpointOf(name: string): WebhookEndpoint | undefined {
    const w = this.config.webhooks.find((e) => e.name === name);
    return w === undefined || this.store.disabled.get(name) === w.url ? undefined : w;
  }

  private attempt(key: string, d: PendingDelivery): void {
    const abort = new AbortController();
    this.inFlight.set(key, abort);
    this.perTarget.set(d.to, (this.perTarget.get(d.to) ?? 0) + 1);
    const run = (async () => {
      const n = this.store.byId(d.id);
      if (n === undefined) return;
      const status = d.to === MAIL ? await this.sendMail(n) : await this.post(d.to, n, abort);
      if (this.stopped && status !== "2xx") return;
      await this.settle(d, status);
    })()
      .catch((err: unknown) => {
        this.log.error({ err, to: d.to }, "a delivery could not be recorded");
      })
      .finally(() => {
        this.inFlight.delete(key);
        this.perTarget.set(d.to, (this.perTarget.get(d.to) ?? 1) - 1);
        this.attempts.delete(run);
        this.pump();
      });
    this.attempts.add(run);
  }

  /** Posts a signed delivery; "2xx", "410", another status, "timeout" or "network". */
  private async post(name: string, n: Notification, abort: AbortController): Promise<string> {
    const endpoint = this.endpointOf(name);
    if (endpoint === undefined) return "disabled";
    const body = JSON.stringify(this.payload(n));
    const at = this.now();
    const signature = new Webhook(endpoint.secret).sign(n.id, at, body);
    const timeout = AbortSignal.timeout(this.config.timeoutMs);
    try {
      const res = await fetch(endpoint.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "stafett-webhooks",
          "webhook-id": n.id,
          "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
          "webhook-signature": signature,
        },
        body,
        redirect: "manual",
        signal: AbortSignal.any([abort.signal, timeout]),
      });
      await res.body?.cancel().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? "2xx" : String(res.status);
    } catch {
      return timeout.aborted ? "timeout" : "network";
    }
  }

  /** Sends an alert's e-mail; "2xx" when the server took it, else the failure's code. */
  private async sendMail(n: Notification): Promise<string> {
    const m = this.config.mail;
    if (m === undefined || this.mailer === undefined) return "disabled";
    const mail = alertMail(n, this.urlOf(n));
    try {
      await this.mailer.sendMail({
        from: m.from,
        to: [...m.to],
        subject: mail.subject,
        text: mail.text,
        messageId: mail.messageId,
        headers: { "X-Stafett-Notification": n.id, "X-Stafett-Type": n.type },
      });
      return "2xx";
    } catch (err) {
      const code = (err as { code?: unknown; responseCode?: unknown } | undefined) ?? {};
      return typeof code.responseCode === "number"
        ? String(code.responseCode)
        : typeof code.code === "string"
          ? code.code
          : "network";
    }
  }

  private async settle(d: PendingDelivery, status: string): Promise<void> {
    const outcome = (result: DeliveryOutcome["result"], next?: number): void => {
      const o: DeliveryOutcome = {
        id: d.id,
        to: d.to,
        attempt: d.attempt,
        result,
        status,
        ...(next === undefined ? {} : { next }),
      };
      for (const l of this.outcomes) l(o);
    };
    if (status === "disabled") return;
    if (status === "2xx") {
      await this.store.delivered(d);
      outcome("delivered");
      return;
    }
    if (status === "410" && d.to !== MAIL) {
      const endpoint = this.endpointOf(d.to);
      if (endpoint !== undefined) await this.store.disable(d.to, endpoint.url, 410);
      this.log.warn(
        { code: "ERR_WEBHOOK_GONE", reason: "gone", endpoint: d.to, notification: d.id },
        "webhook endpoint answered 410 Gone; it is disabled",
      );
      outcome("disabled");
      return;
    }
    const wait = this.config.retryMs[d.attempt - 1];
    if (wait === undefined) {
      await this.store.gaveUp(d);
      this.log.error(
        {
          code: "ERR_DELIVERY_FAILED",
          reason: status,
          to: d.to,
          notification: d.id,
          attempts: d.attempt,
        },
        "delivery given up after the last retry",
      );
      outcome("dead");
      return;
    }
    const next = this.now().getTime() + wait;
    await this.store.failed(d, next, status);
    this.log.warn(
      {
        code: "ERR_DELIVERY_FAILED",
        reason: status,
        to: d.to,
        notification: d.id,
        attempt: d.attempt,
        retry_in_ms: wait,
      },
      "delivery failed; it will be retried",
    );
    outcome("retry", next);
  }

  /** Stops timers and attempts (an attempt cut short is made again after a restart), then the outbox. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.watchTimer);
    clearTimeout(this.pumpTimer);
    for (const l of this.links.values()) clearTimeout(l.timer);
    for (const a of this.inFlight.values()) a.abort();
    await Promise.allSettled([...this.attempts]);
    await Promise.allSettled([...this.writes]);
    this.listeners.clear();
    this.mailer?.close();
    await this.store.close();
  }
}
