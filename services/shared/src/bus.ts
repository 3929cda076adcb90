/**
 * The one adapter between Stafett and NATS: connect, publish with de-duplication and retries,
 * and consume a durable pull consumer with explicit acks. No other module talks to NATS.
 */
import {
  connect,
  MsgHdrsImpl,
  type MsgHdrs,
  type NatsConnection,
  type ConnectionOptions,
} from "@nats-io/transport-node";
import {
  jetstream,
  jetstreamManager,
  JetStreamApiError,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type PubAck,
} from "@nats-io/jetstream";
import type { Logger } from "./logger.js";

export interface BusConfig {
  servers: string | string[];
  /** Client name shown in the server's monitoring, e.g. "stafett-hub-vast". */
  name: string;
  /** Extra connection options: credentials, TLS. */
  connection?: Partial<ConnectionOptions>;
  /** JetStream domain of the country's server, when publishing or consuming from a leafnode. */
  domain?: string;
}

export interface OutgoingMessage {
  subject: string;
  bytes: Uint8Array;
  headers: Record<string, string>;
}

export interface Delivery {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
  /** Stream sequence, for logs and the quarantine copy. */
  seq: number;
  /** How many times this message has been delivered, starting at 1. */
  deliveryCount: number;
  /** True on the consumer's last delivery (max_deliver): no redelivery follows a failure. */
  lastAttempt: boolean;
  /** The consumer's back-off after this attempt (its `backoff`, else 1 s): how long a retry waits. */
  backoffMs: number;
}

/** What a handler decided: done (ack), or try again later (nak with a delay). */
export type Outcome = { ack: true } | { ack: false; retryInMs: number };

export interface ConsumeOptions {
  stream: string;
  durable: string;
  /** Messages handled at once; 1 keeps the stream's order. */
  concurrency?: number;
}

export interface Consumption {
  /** Stops pulling and waits for messages being handled to finish. */
  stop(): Promise<void>;
  readonly done: Promise<void>;
}

const RETRYABLE_PUBLISH =
  /timeout|JetStreamNotEnabled|no responders|503|not enabled|no suitable peers|leader/i;

export class Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  private readonly log: Logger;
  private jsmPromise: Promise<JetStreamManager> | undefined;
  private outgoing: (() => void)[] = [];
  private outgoingScheduled = false;
  /** False from a disconnect until the client reconnected. */
  connected = true;

  private constructor(nc: NatsConnection, js: JetStreamClient, log: Logger) {
    this.nc = nc;
    this.js = js;
    this.log = log;
  }

  static async connect(config: BusConfig, log: Logger): Promise<Bus> {
    const nc = await connect({
      servers: config.servers,
      name: config.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      // Every request (each JetStream publish is one) would otherwise build two Error objects
      // with stack traces up front, in case it fails: about 6% of a busy service's CPU.
      noAsyncTraces: true,
      ...config.connection,
    });
    const js = jetstream(nc, config.domain === undefined ? {} : { domain: config.domain });
    const busLog = log.child({ component: "bus" });
    const bus = new Bus(nc, js, busLog);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error")
          busLog.info({ status: s.type }, "nats connection status");
        if (s.type === "disconnect") bus.connected = false;
        if (s.type === "reconnect") bus.connected = true;
      }
    })();
    return bus;
  }

  /**
   * Runs `start` together with the other publishes and acks asked for in this turn of the event
   * loop. The client writes what is queued at once, so concurrent handlers share one socket
   * write instead of one each (on a small VM a loopback write costs tens of microseconds, and a
   * hub makes four per referral).
   */
  private soon(start: () => void): void {
    this.outgoing.push(start);
    if (this.outgoingScheduled) return;
    this.outgoingScheduled = true;
    setImmediate(() => {
      const batch = this.outgoing;
      this.outgoing = [];
      this.outgoingScheduled = false;
      for (const s of batch) {
        // One that throws (an ack on a connection that has just closed) must not strand the
        // publishes after it, whose handlers would wait for ever.
        try {
          s();
        } catch (err) {
          this.log.warn({ err }, "could not start a publish or an ack");
        }
      }
    });
  }

  /** `request`, started with the others of this turn (`soon`); settles as it does. */
  private together<T>(request: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.soon(() => request().then(resolve, reject));
    });
  }

  manager(): Promise<JetStreamManager> {
    // A failed attempt (the broker was down) is not kept: the next call tries again.
    this.jsmPromise ??= jetstreamManager(this.nc).catch((err: unknown) => {
      this.jsmPromise = undefined;
      throw err;
    });
    return this.jsmPromise;
  }

  /**
   * Publishes to JetStream with the event id as message id, so a retry after a lost ack (or
   * during a leader election) is de-duplicated by the stream. Retries transient failures with
   * the same id until `deadlineMs`.
   */
  async publish(
    msg: OutgoingMessage,
    options: { deadlineMs?: number; expectStream?: string } = {},
  ): Promise<PubAck> {
    // The de-duplication id goes in through `msgID`, which sets that header.
    const { "Nats-Msg-Id": msgID, ...rest } = msg.headers;
    const h = natsHeadersOf(rest);
    const deadline = Date.now() + (options.deadlineMs ?? 10_000);
    let attempt = 0;
    for (;;) {
      try {
        return await this.together(() =>
          this.js.publish(msg.subject, msg.bytes, {
            headers: h,
            ...(msgID === undefined ? {} : { msgID }),
            ...(options.expectStream === undefined
              ? {}
              : { expect: { streamName: options.expectStream } }),
            timeout: 2_000,
          }),
        );
      } catch (err) {
        attempt += 1;
        const retryable = isRetryablePublishError(err);
        if (!retryable || Date.now() >= deadline) throw err;
        this.log.warn(
          { subject: msg.subject, attempt },
          "publish failed, retrying with the same message id",
        );
        await sleep(Math.min(1_000, 50 * 2 ** attempt));
      }
    }
  }

  /** Core NATS publish, for advisories and tests; not stored unless a stream captures it. */
  publishCore(subject: string, data: Uint8Array, headers?: Record<string, string>): void {
    if (headers === undefined) {
      this.nc.publish(subject, data);
      return;
    }
    const h = natsHeadersOf(headers);
    this.nc.publish(subject, data, { headers: h });
  }

  /**
   * Pulls from a durable consumer and hands each message to `handler`. The message is acked
   * only after the handler resolved with `ack`; a handler that throws gets the message back
   * later (nak with a delay), up to the consumer's max_deliver.
   */
  async consume(
    options: ConsumeOptions,
    handler: (d: Delivery) => Promise<Outcome>,
  ): Promise<Consumption> {
    const consumer = await this.js.consumers.get(options.stream, options.durable);
    const config = (await consumer.info(true)).config;
    const maxDeliver = config.max_deliver ?? -1;
    const backoffMs = (config.backoff ?? []).map((ns) => Math.round(ns / 1_000_000));
    const messages: ConsumerMessages = await consumer.consume({
      // Pulled ahead: enough to keep every handler busy, few enough that buffered messages
      // (which get no `working()` heartbeat) are not redelivered while a broker stall lasts.
      max_messages: Math.max(16, (options.concurrency ?? 1) * 2),
    });
    const concurrency = Math.max(1, options.concurrency ?? 1);
    const inFlight = new Set<Promise<void>>();
    /** Resolves the pull loop's wait for a free handler slot. */
    let slotFree: (() => void) | undefined;
    const log = this.log;
    const handle = async (m: JsMsg): Promise<void> => {
      let headers: Record<string, string> | undefined;
      const delivery: Delivery = {
        subject: m.subject,
        data: m.data,
        // Read on demand: most handlers never look at the headers.
        get headers() {
          headers ??= headersOf(m);
          return headers;
        },
        seq: m.info.streamSequence,
        deliveryCount: m.info.deliveryCount,
        lastAttempt: maxDeliver > 0 && m.info.deliveryCount >= maxDeliver,
        backoffMs: backoffMs[Math.min(m.info.deliveryCount, backoffMs.length) - 1] ?? 1_000,
      };
      let outcome: Outcome;
      // While the handler works (a liaison waiting for a partner's link), tell the server, so the
      // message is not redelivered to another handler meanwhile.
      const heartbeat = setInterval(() => m.working(), 2_000);
      try {
        outcome = await handler(delivery);
      } catch (err) {
        log.error(
          { subject: m.subject, seq: delivery.seq, err },
          "handler failed; message will be redelivered",
        );
        outcome = { ack: false, retryInMs: 1_000 };
      } finally {
        clearInterval(heartbeat);
      }
      if (outcome.ack) {
        // A plain ack, not a confirmed one: the handler's outcome is journaled before it, and an
        // ack the broker never got means a redelivery that the party recognises as handled (the
        // same stream sequence) and acks again. A confirmation would cost a request and its
        // reply per message and decide nothing.
        this.soon(() => m.ack());
      } else {
        const delay = outcome.retryInMs;
        this.soon(() => m.nak(delay));
      }
    };
    const done = (async () => {
      for await (const m of messages) {
        const p = handle(m).finally(() => {
          inFlight.delete(p);
          const wake = slotFree;
          slotFree = undefined;
          wake?.();
        });
        inFlight.add(p);
        // Not Promise.race over the handlers: that adds a reaction to every one of them per
        // message, garbage that grows with the concurrency.
        if (inFlight.size >= concurrency) await new Promise<void>((r) => (slotFree = r));
      }
      await Promise.all(inFlight);
      // The acks (started on the next turn, with the publishes) are written before stop() returns.
      await new Promise<void>((r) => setImmediate(r));
      if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
    })();
    return {
      done,
      async stop() {
        await messages.close();
        await done;
      },
    };
  }

  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    await this.nc.drain().catch(() => this.nc.close());
  }
}

const HEADER_NAME = /^[!-9;-~]+$/;
const CR_OR_LF = /[\r\n]/;

/**
 * NATS headers from a record: the checks nats-core's `append` makes (a field name of printable
 * ASCII without a colon, no CR or LF in a value), without the lists of keys it builds on every
 * call, which made headers the largest single source of garbage per publish.
 */
export function natsHeadersOf(record: Record<string, string>): MsgHdrs {
  const values: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(record)) {
    if (!HEADER_NAME.test(k)) throw new Error(`not a valid header name: ${JSON.stringify(k)}`);
    if (CR_OR_LF.test(v)) throw new Error(`header ${k}: values cannot contain CR or LF`);
    // nats-core trims values when it appends them; so do we, for the same bytes on the wire.
    values[k] = [v.trim()];
  }
  return MsgHdrsImpl.fromRecord(values);
}

export function headersOf(m: {
  headers?: { keys(): string[]; get(k: string): string } | undefined;
}): Record<string, string> {
  const out: Record<string, string> = {};
  if (m.headers === undefined) return out;
  for (const k of m.headers.keys()) out[k] = m.headers.get(k);
  return out;
}

export function isRetryablePublishError(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.code === 10039 || err.status === 503;
  if (!(err instanceof Error)) return false;
  return RETRYABLE_PUBLISH.test(`${err.name} ${err.message}`);
}

export function isNotFound(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10059 || err.code === 10014);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
