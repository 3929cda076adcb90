/**
 * 4. Latency at a fixed offered rate, open loop: referrals are POSTed to the origin gateway's
 * real HTTP API at scheduled times (never waiting for earlier answers), through the real hub,
 * each service its own process. Latency is from the scheduled send time to the moment the
 * origin gateway verified the hub's signed receipt (the `at` of its timeline entry `received`).
 * 6. Footprint: each service's start-up time (spawn -> ready) and its peak RSS under this load.
 */
import { Bus, coordinatorId, type Logger } from "@stafett/shared";
import { HttpClient, type HttpResponse } from "./http-client.js";
import {
  cpuSecondsOf,
  backlogOf,
  lastSeqOf,
  benchCountry,
  memoryOf,
  resetPeakRss,
  ownCpuSeconds,
  serviceEnv,
  startService,
  stopService,
  type Memory,
  type RunningService,
  type ServiceKind,
} from "./services.js";
import { OperationCounter, operationsPerReferral, type Operations } from "./operations.js";
import { DESTINATION, HUB, ORIGIN, referralRequest } from "./sample.js";
import { percentiles, until, type Percentiles } from "./stats.js";

export interface ServiceFootprint {
  service: string;
  kind: ServiceKind;
  startupMs: number;
  /** RSS just after start-up, before any load: the process's floor. */
  rssAtReadyMB: number;
  peakRssMB: number;
  rssMB: number;
}

/** One open-loop run at a fixed offered rate. */
export interface LatencyRun {
  offeredPerSecond: number;
  seconds: number;
  sent: number;
  /** Answered 202. */
  accepted: number;
  /** Accepted referrals whose receipt reached the origin gateway within the wait. */
  receipted: number;
  errors: number;
  /** Scheduled send -> the receipt verified at the origin gateway, ms. */
  receipt: Percentiles;
  /** Scheduled send -> the 202 received by the client, ms. */
  http: Percentiles;
  /** How late the sender was against its own schedule, ms (the client's share). */
  sendLag: Percentiles;
  /** Referrals whose receipt arrived, per second, over the run. */
  achievedPerSecond: number;
  /** CPU time per referral over the run, by process (services, nats-server, this client). */
  cpuMillisecondsPerReferral: Record<string, number>;
  /**
   * Each service's peak RSS during this run, MB: from its start until the handoff settled, not
   * counting the bench's listing of every referral afterwards.
   */
  peakRssMB?: Record<string, number>;
}

/**
 * The run at the offered rate of the target, and shorter runs at lower rates first: where the
 * latency holds, and where the queue starts.
 */
export interface LatencyResult extends LatencyRun {
  byRate: LatencyRun[];
  footprint: ServiceFootprint[];
  /**
   * What one referral of the whole handoff cost in primitive and transport operations, counted
   * in the services (node:crypto calls, bench/op-count.mjs) and on the stream (messages
   * published; each is consumed once) over every run of this part. Absent when a service did
   * not exit cleanly and so wrote no count.
   */
  operations?: {
    perReferral: Operations;
    byService: Record<string, Operations>;
  };
}

interface Sent {
  referralId: string;
  /** Wall-clock ms (fractional) of the scheduled send. */
  scheduledAt: number;
  sentAt: number;
  answeredAt: number;
  status: number;
}

/** The load generator's key in `cpuMillisecondsPerReferral` (the others are processes it measures). */
export const BENCH_CLIENT = "bench client";

const now = (): number => performance.timeOrigin + performance.now();

export async function runLatency(
  log: Logger,
  options: {
    rate: number;
    seconds: number;
    warmUpSeconds: number;
    /** Shorter runs at these lower rates, before the main one: latency without a queue. */
    lowerRates: readonly number[];
    lowerRateSeconds: number;
    serviceEnv?: Record<string, string>;
    /** Node/V8 flags for the service processes (`--service-node-args`). */
    nodeArgs?: readonly string[];
  },
): Promise<LatencyResult> {
  const local = await benchCountry(log);
  const services: RunningService[] = [];
  const counter = new OperationCounter(local.stateRoot);
  let result: Omit<LatencyResult, "operations">;
  let operations: LatencyResult["operations"];
  let referrals = 0;
  let messages = 0;
  let client: HttpClient | undefined;
  let bus: Bus | undefined;
  try {
    bus = await Bus.connect(
      { servers: local.natsUrl, name: "bench-latency", connection: local.admin },
      log,
    );
    const jsm = await bus.manager();
    /** Every message for these parties handled and acked: the handoff has settled. */
    const settled = async (): Promise<boolean> => {
      for (const id of [HUB, ORIGIN, DESTINATION]) {
        const backlog = await backlogOf(jsm, id);
        if (backlog.pending > 0 || backlog.unacked > 0) return false;
      }
      return true;
    };
    // One at a time, so each start-up is measured without the others competing for the cores.
    const plan: [ServiceKind, string][] = [
      ["hub", HUB],
      ["gateway", DESTINATION],
      ["gateway", ORIGIN],
      ["coordinator", coordinatorId("se")],
    ];
    for (const [kind, id] of plan) {
      const { env, nodeArgs } = counter.withCounter(
        serviceEnv(local, id, options.serviceEnv),
        options.nodeArgs,
      );
      services.push(await startService(kind, id, env, nodeArgs));
    }
    const gateway = services.find((s) => s.id === ORIGIN);
    if (gateway === undefined || gateway.url === "")
      throw new Error("the origin gateway has no URL");
    client = new HttpClient(gateway.url, await local.token(ORIGIN));
    const api = client;

    const serverPid = local.server?.pid ?? -1;
    const cpu = (): Record<string, number> => ({
      ...Object.fromEntries(services.map((s) => [s.id, cpuSecondsOf(s.pid)])),
      "nats-server": cpuSecondsOf(serverPid),
      [BENCH_CLIENT]: ownCpuSeconds(),
    });
    let offset = 0;
    const run = async (
      rate: number,
      seconds: number,
    ): Promise<LatencyRun & { memory: Map<string, Memory> }> => {
      const count = Math.round(rate * seconds);
      // The peaks from here on: not the previous run's listing of every referral (receiptsOf),
      // one large answer that is the bench's doing, not the service's.
      for (const s of services) resetPeakRss(s.pid);
      const cpuBefore = cpu();
      const t0 = now();
      const sent = await openLoop(api, rate, count, offset);
      offset += count;
      // Wait on the broker, not on the origin's API: listing every referral while the queue
      // drains would make the measured gateway build large answers it would not otherwise.
      await until(settled, "the handoff to settle", 180_000, 100).catch(() => undefined);
      // Read before the bench lists every referral (receiptsOf): that listing is the bench's work.
      const cpuAfter = cpu();
      const memory = new Map(services.map((s) => [s.id, memoryOf(s.pid)]));
      const receipts = await receiptsOf(api, sent, 180_000);
      const lastReceipt = Math.max(t0 + 1, ...receipts.values());
      const ok = sent.filter((s) => s.status === 202);
      return {
        memory,
        offeredPerSecond: rate,
        seconds,
        sent: sent.length,
        accepted: ok.length,
        receipted: receipts.size,
        errors: sent.length - ok.length,
        receipt: percentiles(
          ok.flatMap((s) => {
            const at = receipts.get(s.referralId);
            return at === undefined ? [] : [at - s.scheduledAt];
          }),
        ),
        http: percentiles(ok.map((s) => s.answeredAt - s.scheduledAt)),
        sendLag: percentiles(sent.map((s) => s.sentAt - s.scheduledAt)),
        achievedPerSecond: (receipts.size * 1_000) / (lastReceipt - t0),
        cpuMillisecondsPerReferral: Object.fromEntries(
          // Per accepted referral, as the counted operations are (a refused one does little).
          Object.entries(cpuAfter).map(([k, v]) => [
            k,
            ((v - (cpuBefore[k] ?? 0)) * 1e3) / Math.max(1, ok.length),
          ]),
        ),
        peakRssMB: Object.fromEntries([...memory].map(([id, m]) => [id, m.peakRssMB])),
      };
    };

    const seqBefore = await lastSeqOf(jsm);
    const warmUp = await run(options.rate, options.warmUpSeconds);
    const byRate: LatencyRun[] = [];
    for (const rate of options.lowerRates) {
      const { memory: _memory, ...lower } = await run(rate, options.lowerRateSeconds);
      byRate.push(lower);
    }
    const { memory, ...main } = await run(options.rate, options.seconds);
    // Those answered 202: a refused one costs no crypto and publishes nothing.
    referrals = [warmUp, ...byRate, main].reduce((n, r) => n + r.accepted, 0);
    messages = (await lastSeqOf(jsm)) - seqBefore;
    // Each run's peak was read when its handoff had settled, before the bench listed every
    // referral to collect the receipts; the footprint's peak is the highest of them.
    const footprint = services.map((s) => {
      const m: Memory = memory.get(s.id) ?? memoryOf(s.pid);
      const peaks = [warmUp, ...byRate, main].map((r) => r.peakRssMB?.[s.id] ?? 0);
      return {
        service: s.id,
        kind: s.kind,
        startupMs: s.startupMs,
        rssAtReadyMB: s.rssAtReadyMB,
        peakRssMB: Math.max(...peaks),
        rssMB: m.rssMB,
      };
    });
    result = { ...main, byRate, footprint };
  } finally {
    await bus?.close();
    client?.close();
    await Promise.all(services.map((s) => stopService(s)));
    // The counts were written as the services exited.
    const counted = counter.read();
    // Only when the runs completed (else their error is what the bench reports).
    if (referrals > 0 && counted.length !== services.length) {
      console.warn(
        `operation counts: ${counted.length} of ${services.length} services wrote theirs; the handoff's ideal is left out`,
      );
    } else if (referrals > 0) {
      const each = (n: number) => ({ publish: n, consume: n });
      operations = {
        perReferral: operationsPerReferral(
          counted.map((c) => c.counts),
          referrals,
          each(messages / referrals),
        ),
        byService: Object.fromEntries(
          counted.map((c) => [c.service, operationsPerReferral([c.counts], referrals, each(0))]),
        ),
      };
    }
    await local.stop();
  }
  return { ...result, ...(operations === undefined ? {} : { operations }) };
}

/**
 * Sends `count` referrals at `rate` per second on a fixed schedule: the i-th is due at
 * start + i/rate whatever happened to the earlier ones (open loop).
 */
async function openLoop(
  api: HttpClient,
  rate: number,
  count: number,
  offset: number,
): Promise<Sent[]> {
  const bodies = Array.from({ length: count }, (_, i) => referralRequest(offset + i));
  const texts = bodies.map((b) => JSON.stringify(b));
  const sent: Sent[] = [];
  const answers: Promise<void>[] = [];
  const interval = 1_000 / rate;
  const start = now() + 20;
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const t = now();
      while (i < count && start + i * interval <= t) {
        const body = bodies[i];
        const text = texts[i];
        if (body === undefined || text === undefined) break;
        const record: Sent = {
          referralId: body.referralId,
          scheduledAt: start + i * interval,
          sentAt: now(),
          answeredAt: 0,
          status: 0,
        };
        sent.push(record);
        answers.push(
          api.request("POST", "/v1/referrals", text).then(
            (res: HttpResponse) => {
              record.answeredAt = now();
              record.status = res.status;
            },
            () => {
              record.answeredAt = now();
              record.status = -1;
            },
          ),
        );
        i += 1;
      }
      if (i >= count) resolve();
      else setTimeout(tick, Math.max(0, start + i * interval - now()));
    };
    setTimeout(tick, Math.max(0, start - now()));
  });
  await Promise.all(answers);
  return sent;
}

interface TimelineView {
  referralId: string;
  timeline: { type: string; at: string }[];
}

/** Waits until every accepted referral has its receipt; returns referralId -> receipt time. */
async function receiptsOf(
  api: HttpClient,
  sent: readonly Sent[],
  timeoutMs: number,
): Promise<Map<string, number>> {
  const wanted = new Set(sent.filter((s) => s.status === 202).map((s) => s.referralId));
  const found = new Map<string, number>();
  const poll = until(
    async () => {
      const res = await api.request("GET", "/v1/referrals");
      if (res.status !== 200) return false;
      for (const r of JSON.parse(res.body) as TimelineView[]) {
        if (!wanted.has(r.referralId) || found.has(r.referralId)) continue;
        const received = r.timeline.find((e) => e.type === "received");
        if (received !== undefined) found.set(r.referralId, Date.parse(received.at));
      }
      return found.size === wanted.size;
    },
    `${wanted.size} receipts at the origin gateway`,
    timeoutMs,
    1_000,
  );
  // A run that misses receipts is reported with what arrived (receipted < accepted), not lost.
  await poll.catch(() => undefined);
  return found;
}
