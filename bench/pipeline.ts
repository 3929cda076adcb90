/**
 * 3. Pipeline: the library's whole first leg of a handoff, in one process on one thread:
 * `issue` (validate, seal to the hub and the destination municipality, sign) -> publish ->
 * the hub's `receive` (verify, trust checks, decode, validate, open) -> a signed `received`
 * issued back -> publish -> the origin's `receive` of the receipt. Consumers handle as many
 * messages at once as a Party does (`DEFAULT_CONCURRENCY`); the origin keeps a bounded window of
 * referrals in flight.
 */
import { startServer, type Country } from "@stafett/devkit";
import {
  Bus,
  consumersOf,
  DEFAULT_CONCURRENCY,
  derivedId,
  issue,
  provisionCountry,
  receive,
  streamName,
  type Logger,
} from "@stafett/shared";
import type { Operations } from "./operations.js";
import { HUB, openedInput, ORIGIN } from "./sample.js";
import { cpuSecondsOf, ownCpuSeconds } from "./services.js";
import { Semaphore, until } from "./stats.js";
import { registerTempDir } from "./supervisor.js";

export interface PipelineResult {
  referrals: number;
  warmUp: number;
  window: number;
  consumerConcurrency: number;
  seconds: number;
  /**
   * The best of the run's four quarters, as each primitive's rate is the best of four rounds
   * (`bestRates`): a burst of other work on a shared machine spoils a quarter, not the result.
   */
  perSecond: number;
  /** Over the whole measured run. */
  wholeRunPerSecond?: number;
  /** Per referral: what the ideal counts. */
  operations: Operations;
  /** CPU time per referral over the measured part: this process (all of the pipeline's own work) and nats-server. */
  cpuMicrosecondsPerReferral: { pipeline: number; natsServer: number };
}

/** opened: sealed to 2 recipients and signed; received: signed; each verified once, one opening. */
export const PIPELINE_OPERATIONS: Operations = {
  ed25519Sign: 2,
  ed25519Verify: 2,
  x25519KeyGen: 2,
  x25519Agree: 3,
  aesKwWrap: 2,
  aesKwUnwrap: 1,
  aesGcmEncrypt: 1,
  aesGcmDecrypt: 1,
  publish: 2,
  consume: 2,
};

export async function runPipeline(
  country: Country,
  log: Logger,
  options: { referrals: number; warmUp?: number; window?: number; concurrency?: number },
): Promise<PipelineResult> {
  const warmUp = options.warmUp ?? 500;
  const window = options.window ?? 64;
  const concurrency = options.concurrency ?? DEFAULT_CONCURRENCY;
  const total = warmUp + options.referrals;
  const server = await startServer();
  registerTempDir(server.dir);
  const buses: Bus[] = [];
  try {
    const admin = await Bus.connect({ servers: server.url, name: "bench-provision" }, log);
    buses.push(admin);
    await provisionCountry(
      admin.nc,
      await admin.manager(),
      country.trustList,
      country.trustListJws,
    );
    const originBus = await Bus.connect({ servers: server.url, name: "bench-origin" }, log);
    const hubBus = await Bus.connect({ servers: server.url, name: "bench-hub" }, log);
    buses.push(originBus, hubBus);
    const origin = country.identity(ORIGIN);
    const hub = country.identity(HUB);
    const trust = country.trust;
    const stream = streamName("se");
    const durableOf = (id: string): string => {
      const spec = consumersOf(id)[0];
      if (spec === undefined) throw new Error(`${id} has no consumer`);
      return spec.durable;
    };

    let failures = 0;
    let done = 0;
    let warmEndedAt = 0;
    let cpuAtWarmEnd = { own: 0, server: 0 };
    const quarter = Math.max(1, Math.floor(options.referrals / 4));
    /** When each quarter of the measured referrals was done (the first is the warm-up's end). */
    const marks: number[] = [];
    const slots = new Semaphore(window);
    const hubConsumption = await hubBus.consume(
      { stream, durable: durableOf(HUB), concurrency },
      async (d) => {
        const r = await receive(d.data, { identity: hub, trust, subject: d.subject });
        if (!r.ok || r.personal === undefined) {
          failures += 1;
          return { ack: true };
        }
        const receipt = await issue(
          {
            type: "received",
            addressee: r.issuer.id,
            referralId: r.event.referralId,
            id: derivedId(hub.id, "received", r.event.id),
            body: { ofEventId: r.event.id, digest: r.digest },
          },
          { identity: hub, trust },
        );
        await hubBus.publish(receipt);
        return { ack: true };
      },
    );
    const originConsumption = await originBus.consume(
      { stream, durable: durableOf(ORIGIN), concurrency },
      async (d) => {
        const r = await receive(d.data, { identity: origin, trust, subject: d.subject });
        if (!r.ok || r.event.type !== "received") failures += 1;
        done += 1;
        if (done === warmUp) {
          warmEndedAt = performance.now();
          cpuAtWarmEnd = { own: ownCpuSeconds(), server: cpuSecondsOf(server.pid) };
        }
        if (done >= warmUp && (done - warmUp) % quarter === 0) marks.push(performance.now());
        slots.release();
        return { ack: true };
      },
    );

    let next = 0;
    const producers = Array.from({ length: 4 }, async () => {
      while (next < total) {
        const i = next++;
        await slots.acquire();
        const opened = await issue(openedInput(i), { identity: origin, trust });
        await originBus.publish(opened);
      }
    });
    await Promise.all(producers);
    await until(() => done >= total, "every receipt verified at the origin", 600_000, 5);
    const endedAt = performance.now();
    const cpuAtEnd = { own: ownCpuSeconds(), server: cpuSecondsOf(server.pid) };
    await hubConsumption.stop();
    await originConsumption.stop();
    if (failures > 0) throw new Error(`${failures} messages were refused in the pipeline`);
    const seconds = (endedAt - warmEndedAt) / 1_000;
    const quarterRates = marks
      .slice(1, 5)
      .map((at, i) => quarter / ((at - (marks[i] ?? warmEndedAt)) / 1_000));
    return {
      referrals: options.referrals,
      warmUp,
      window,
      consumerConcurrency: concurrency,
      seconds,
      perSecond: Math.max(options.referrals / seconds, ...quarterRates),
      wholeRunPerSecond: options.referrals / seconds,
      operations: PIPELINE_OPERATIONS,
      cpuMicrosecondsPerReferral: {
        pipeline: ((cpuAtEnd.own - cpuAtWarmEnd.own) * 1e6) / options.referrals,
        natsServer: ((cpuAtEnd.server - cpuAtWarmEnd.server) * 1e6) / options.referrals,
      },
    };
  } finally {
    for (const b of buses) await b.close();
    await server.stop();
  }
}
