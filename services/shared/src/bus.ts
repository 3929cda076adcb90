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
import { StafettError, type ErrorCode } from "./errors.js";
import type { Logger } from "./logger.js";
import { BusHealth } from "./bus-health.js";

export interface BusConfig {
  servers: string | string[];
  /** Client name shown in the server's monitoring, e.g. "stafett-hub-vast". */
  name: string;
  /** Extra connection options: credentials, TLS. */
  connection?: Partial<ConnectionOptions>;
  /** JetStream domain of the country's server, when publishing or consuming from a leafnode. */
  domain?: string;
  /**
   * Where the JetStream API is in this connection's account: an organisation's account imports
   * what it may use under `ORG_API_PREFIX` (accounts.ts). Default `$JS.API`.
   */
  apiPrefix?: string;
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

/** How often a lost consumer is looked for again. */
const REBIND_EVERY_MS = 1_000;
/** How long a pull waits on the server; an idle heartbeat is half of it. */
const PULL_EXPIRES_MS = 10_000;

export class Bus {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  /** Where the JetStream API is in this connection's account. */
  readonly apiPrefix: string;
  /** What this connection's user needs and finds missing (connection, consumers, trust bucket). */
  /** What is missing on the bus (the connection, a consumer, the stream, the trust bucket). */
  readonly health = new BusHealth();
  private readonly log: Logger;
  private jsmPromise: Promise<JetStreamManager> | undefined;
  private outgoing: (() => void)[] = [];
  private outgoingScheduled = false;

  private constructor(nc: NatsConnection, js: JetStreamClient, log: Logger, apiPrefix: string) {
    this.nc = nc;
    this.js = js;
    this.log = log;
    this.apiPrefix = apiPrefix;
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
    const js = jetstream(nc, {
      ...(config.domain === undefined ? {} : { domain: config.domain }),
      ...(config.apiPrefix === undefined ? {} : { apiPrefix: config.apiPrefix }),
    });
    const busLog = log.child({ component: "bus" });
    const bus = new Bus(nc, js, busLog, config.apiPrefix ?? "$JS.API");
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error")
          busLog.info({ status: s.type }, "nats connection status");
        if (s.type === "disconnect")
          bus.health.fail("connection", "ERR_UNAVAILABLE", "disconnected");
        if (s.type === "reconnect") bus.health.ok("connection");
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
    // A failed attempt (the broker was down) is not kept: the next call tries again. No account
    // info check ($JS.API.INFO): an organisation's account does not import it.
    this.jsmPromise ??= jetstreamManager(this.nc, {
      apiPrefix: this.apiPrefix,
      checkAPI: false,
    }).catch((err: unknown) => {
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
   *
   * The consumer must exist when this is called. If it (or its stream) disappears later (an
   * operator's mistake, an attack before the accounts existed), the loss is logged with a code
   * (ERR_BUS_CONSUMER_MISSING, ERR_BUS_STREAM_MISSING), `health` reports it, and the consumer
   * is looked for again every second; once provisioning has re-created it, pulling resumes. It
   * learns of a loss from the deletion advisories, and without them from the pull's own status.
   * The max-deliveries advisory of the consumer is logged as ERR_MAX_DELIVERIES.
   */
  async consume(
    options: ConsumeOptions,
    handler: (d: Delivery) => Promise<Outcome>,
  ): Promise<Consumption> {
    const { stream, durable } = options;
    const component = `consumer:${stream}.${durable}`;
    const log = this.log.child({ stream, consumer: durable });
    let consumer = await this.js.consumers.get(stream, durable);
    let { maxDeliver, backoffMs } = limitsOf((await consumer.info(true)).config);
    const concurrency = Math.max(1, options.concurrency ?? 1);
    const inFlight = new Set<Promise<void>>();
    /** Resolves the pull loop's wait for a free handler slot. */
    let slotFree: (() => void) | undefined;
    let stopped = false;
    let current: ConsumerMessages | undefined;
    /** Wakes the wait between two looks for a lost consumer. */
    let wake: (() => void) | undefined;

    const lose = (code: ErrorCode, reason: string): void => {
      if (this.health.fail(component, code, reason))
        log.error(
          { err: new StafettError(code, "a consumer this service reads is gone", { reason }) },
          code === "ERR_BUS_STREAM_MISSING"
            ? "the stream is gone; not ready until it is provisioned again"
            : "the consumer is gone; not ready until it is provisioned again",
        );
      current?.stop();
    };
    const advisories = [
      this.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.DELETED.${stream}.${durable}`, {
        callback: () => lose("ERR_BUS_CONSUMER_MISSING", "deleted"),
      }),
      this.nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.DELETED.${stream}`, {
        callback: () => lose("ERR_BUS_STREAM_MISSING", "deleted"),
      }),
      this.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${durable}`, {
        callback: (_err, m) => {
          let seq: number | undefined;
          let deliveries: number | undefined;
          try {
            const a = m.json<{ stream_seq?: number; deliveries?: number }>();
            seq = a.stream_seq;
            deliveries = a.deliveries;
          } catch {
            // an advisory that does not parse is still worth its log line
          }
          log.error(
            {
              err: new StafettError("ERR_MAX_DELIVERIES", "a message ran out of deliveries", {
                reason: "max_deliveries",
              }),
              seq,
              deliveries,
            },
            "a message reached the consumer's max deliveries without being acked",
          );
        },
      }),
    ];

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

    /** Pulls until stopped or until the consumer is lost. */
    const pull = async (messages: ConsumerMessages): Promise<void> => {
      void (async () => {
        for await (const s of messages.status()) {
          if (s.type === "consumer_deleted" || s.type === "consumer_not_found")
            lose(
              "ERR_BUS_CONSUMER_MISSING",
              s.type === "consumer_deleted" ? "deleted" : "not_found",
            );
          else if (s.type === "stream_not_found") lose("ERR_BUS_STREAM_MISSING", "not_found");
        }
      })().catch(() => undefined);
      for await (const m of messages) {
        const p = handle(m).finally(() => {
          inFlight.delete(p);
          const free = slotFree;
          slotFree = undefined;
          free?.();
        });
        inFlight.add(p);
        // Not Promise.race over the handlers: that adds a reaction to every one of them per
        // message, garbage that grows with the concurrency.
        if (inFlight.size >= concurrency) await new Promise<void>((r) => (slotFree = r));
      }
    };

    /** Looks for the consumer every second until it answers again (or the caller stops). */
    const rebind = async (): Promise<boolean> => {
      while (!stopped) {
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, REBIND_EVERY_MS).unref();
        });
        wake = undefined;
        if (stopped || this.nc.isClosed()) return false;
        try {
          consumer = await this.js.consumers.get(stream, durable);
          ({ maxDeliver, backoffMs } = limitsOf((await consumer.info(true)).config));
          return true;
        } catch (err) {
          const message = err instanceof Error ? err.message : "";
          if (/stream not found/i.test(message)) lose("ERR_BUS_STREAM_MISSING", "not_found");
          else if (/consumer not found/i.test(message))
            lose("ERR_BUS_CONSUMER_MISSING", "not_found");
          // Anything else (disconnected, a timeout): the connection's own state says so; look again.
        }
      }
      return false;
    };

    const done = (async () => {
      while (!stopped) {
        let messages: ConsumerMessages | undefined;
        try {
          messages = await consumer.consume({
            // One message per pull request. An organisation pulls through its account's import,
            // and nats-server 2.9 ends a streamed response there at the first message of length
            // zero: with a batch, everything the server delivered after an empty message (which
            // anyone who may address this party can publish) was lost in transit, redelivered
            // only after the ack wait, and after max_deliver such losses gone. The client asks
            // again as soon as the loop takes a message, so handlers still run `concurrency` at
            // once; it costs a pull request per message (about 25 µs of client CPU here).
            max_messages: 1,
            expires: PULL_EXPIRES_MS,
          });
        } catch (err) {
          log.warn({ err }, "could not start pulling; looking for the consumer again");
        }
        if (messages !== undefined) {
          current = messages;
          await pull(messages);
          current = undefined;
        }
        if (stopped || !(await rebind())) break;
        if (this.health.ok(component)) log.info({}, "the consumer is back; consuming again");
      }
      await Promise.all(inFlight);
      // The acks (started on the next turn, with the publishes) are written before stop() returns.
      await new Promise<void>((r) => setImmediate(r));
      if (!this.nc.isClosed()) await this.nc.flush().catch(() => undefined);
    })();
    return {
      done,
      async stop() {
        stopped = true;
        wake?.();
        for (const sub of advisories) sub.unsubscribe();
        await current?.close();
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

/** A consumer's delivery limits: its max deliveries (-1: none) and back-off, in ms. */
function limitsOf(config: { max_deliver?: number; backoff?: number[] }): {
  maxDeliver: number;
  backoffMs: number[];
} {
  return {
    maxDeliver: config.max_deliver ?? -1,
    backoffMs: (config.backoff ?? []).map((ns) => Math.round(ns / 1_000_000)),
  };
}
