/**
 * 1. Transport baseline: raw JetStream publish (with message ids, publish acks awaited) and
 * pull-consume with acks, for messages the size of a real SignedEvent, on a stream configured
 * as the real one (work-queue retention, file storage, the provisioning defaults) in its own
 * nats-server.
 */
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { startServer } from "@stafett/devkit";
import {
  consumerConfig,
  consumersOf,
  PROVISION_DEFAULTS,
  streamConfig,
  streamName,
  type ProvisionOptions,
} from "@stafett/shared";
import { cpuSecondsOf, ownCpuSeconds } from "./services.js";
import { boundedAll } from "./stats.js";
import { registerTempDir } from "./supervisor.js";
import { HUB } from "./sample.js";

export interface TransportResult {
  messageBytes: number;
  messages: number;
  /** Publishes in flight at once. */
  publishWindow: number;
  publishPerSecond: number;
  /** Pull-consume, each message acked with a plain ack (no confirmation): what the services do. */
  consumeAckPerSecond: number;
  /** Pull-consume, each ack confirmed by the server (a request per ack), for comparison. */
  consumeAckAckPerSecond: number;
  /**
   * CPU time per message, µs, of this client and nats-server together: the rates above are of
   * the two working at once, on two cores, so 1/rate is not what a message costs in CPU.
   */
  cpuMicrosecondsPerMessage: { publish: number; consumeAck: number };
}

const STREAM = streamName("se");
const SUBJECT = "stafett.se.vast.hub.opened";

export async function runTransport(options: {
  messageBytes: number;
  messages: number;
  publishWindow?: number;
}): Promise<TransportResult> {
  const { messageBytes, messages } = options;
  const window = options.publishWindow ?? 256;
  const server = await startServer();
  registerTempDir(server.dir);
  const nc = await connect({ servers: server.url, name: "bench-transport" });
  try {
    const jsm = await jetstreamManager(nc);
    const o: Required<ProvisionOptions> = {
      ...PROVISION_DEFAULTS,
      backoffMs: [...PROVISION_DEFAULTS.backoffMs],
    };
    await jsm.streams.add(streamConfig("se", o));
    const spec = consumersOf(HUB)[0];
    if (spec === undefined) throw new Error("the hub has no consumer");
    await jsm.consumers.add(STREAM, consumerConfig(spec.durable, spec.filter, o));
    const js = jetstream(nc);
    const payload = new Uint8Array(messageBytes).fill(0x2a);

    /** CPU seconds so far of this process and the server. */
    const cpu = (): number => ownCpuSeconds() + cpuSecondsOf(server.pid);
    const cpuPerMessage: number[] = [];
    const publish = async (round: string): Promise<number> => {
      const c0 = cpu();
      const t0 = performance.now();
      await boundedAll(messages, window, async (i) => {
        await js.publish(SUBJECT, payload, { msgID: `${round}-${i}`, timeout: 10_000 });
      });
      const ms = performance.now() - t0;
      cpuPerMessage.push(((cpu() - c0) * 1e6) / messages);
      return ms;
    };
    const consume = async (confirm: boolean): Promise<number> => {
      const consumer = await js.consumers.get(STREAM, spec.durable);
      const t0 = performance.now();
      const iterator = await consumer.consume({ max_messages: 512 });
      const confirmations: Promise<unknown>[] = [];
      let n = 0;
      for await (const m of iterator) {
        if (confirm) confirmations.push(m.ackAck());
        else m.ack();
        n += 1;
        if (n === messages) break;
      }
      await Promise.all(confirmations);
      await nc.flush();
      const ms = performance.now() - t0;
      await iterator.close();
      return ms;
    };

    await warmUp(js, payload);
    const publishMs = await publish("a");
    const c0 = cpu();
    const ackMs = await consume(false);
    const consumeAckCpu = ((cpu() - c0) * 1e6) / messages;
    const publishMs2 = await publish("b");
    const ackAckMs = await consume(true);
    const rate = (ms: number): number => (messages * 1_000) / ms;
    return {
      messageBytes,
      messages,
      publishWindow: window,
      // Two publish rounds measured; their mean.
      publishPerSecond: (rate(publishMs) + rate(publishMs2)) / 2,
      consumeAckPerSecond: rate(ackMs),
      consumeAckAckPerSecond: rate(ackAckMs),
      cpuMicrosecondsPerMessage: {
        publish: cpuPerMessage.reduce((t, v) => t + v, 0) / cpuPerMessage.length,
        consumeAck: consumeAckCpu,
      },
    };
  } finally {
    await nc.close();
    await server.stop();
  }
}

/** A few hundred round trips on a subject the consumer does not take, so connection set-up is not measured. */
async function warmUp(js: JetStreamClient, payload: Uint8Array): Promise<void> {
  await boundedAll(500, 64, async (i) => {
    await js.publish("stafett.se.stockholm.hub.opened", payload, { msgID: `warm-${i}` });
  });
}
