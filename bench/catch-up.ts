/**
 * 5. Catch-up: the hub (its own process) is stopped while 50,000 referrals queue for it; after
 * its restart it drains them. Measured from the restarted hub's "ready" until every referral
 * is receipted and forwarded: the hub's consumer has nothing pending or unacknowledged, and the
 * stream holds a receipt and a notice for the origin and a forward for the destination per
 * referral (no gateway runs meanwhile, so the hub has the machine to itself).
 */
import { Bus, issue, type Logger } from "@stafett/shared";
import {
  OperationCounter,
  operationsPerReferral,
  type OperationCounts,
  type Operations,
} from "./operations.js";
import {
  cpuSecondsOf,
  backlogOf,
  lastSeqOf,
  benchCountry,
  memoryOf,
  serviceEnv,
  startService,
  stopService,
  type RunningService,
} from "./services.js";
import { DESTINATION, HUB, openedInput, ORIGIN } from "./sample.js";
import { boundedAll, until } from "./stats.js";

export interface CatchUpResult {
  referrals: number;
  /** Issuing (validate, seal to 2, sign) and publishing the queue, per second. */
  preparedPerSecond: number;
  prepareSeconds: number;
  /** Restart: spawn -> ready. */
  restartMs: number;
  /** Ready -> all receipted and forwarded. */
  drainSeconds: number;
  perSecond: number;
  /** Referrals drained when the wait ended (== referrals unless it timed out). */
  drained: number;
  completed: boolean;
  hubPeakRssMB: number;
  /** CPU time per referral while draining: the hub and nats-server. */
  cpuMillisecondsPerReferral: { hub: number; natsServer: number };
  /**
   * The restarted hub's operations per referral drained: its node:crypto calls, counted in it
   * (bench/op-count.mjs), and the messages it published (on the stream) and consumed (one each).
   * Absent when the hub did not exit cleanly and so wrote no count.
   */
  operations?: Operations;
}

export async function runCatchUp(
  log: Logger,
  options: {
    referrals: number;
    concurrency?: number;
    drainTimeoutMs?: number;
    serviceEnv?: Record<string, string>;
    /** Node/V8 flags for the hub process (`--service-node-args`). */
    nodeArgs?: readonly string[];
  },
): Promise<CatchUpResult> {
  const local = await benchCountry(log);
  const counter = new OperationCounter(local.stateRoot);
  let hub: RunningService | undefined;
  let bus: Bus | undefined;
  let result: Omit<CatchUpResult, "operations">;
  let published = 0;
  let counts: { counts: OperationCounts }[] = [];
  try {
    bus = await Bus.connect(
      { servers: local.natsUrl, name: "bench-catch-up", connection: local.admin },
      log,
    );
    const jsm = await bus.manager();
    const pending = (id: string) => backlogOf(jsm, id);
    const origin = local.country.identity(ORIGIN);
    const trust = local.country.trust;
    const send = async (i: number): Promise<void> => {
      const opened = await issue(openedInput(i), { identity: origin, trust });
      await bus?.publish(opened);
    };
    const hubIdle = async (): Promise<boolean> => {
      const p = await pending(HUB);
      return p.pending === 0 && p.unacked === 0;
    };

    // A hub that has been running: start it, let it handle a few, stop it.
    const env = serviceEnv(local, HUB, options.serviceEnv);
    hub = await startService("hub", HUB, env, options.nodeArgs);
    await boundedAll(200, 16, send);
    await until(hubIdle, "the hub to handle the first referrals", 60_000, 50);
    await stopService(hub);
    hub = undefined;

    const t0 = performance.now();
    await boundedAll(options.referrals, options.concurrency ?? 64, (i) => send(1_000 + i));
    const prepareSeconds = (performance.now() - t0) / 1_000;
    const before = {
      destination: (await pending(DESTINATION)).pending,
      origin: (await pending(ORIGIN)).pending,
    };
    const queued = (await pending(HUB)).pending;
    if (queued !== options.referrals)
      throw new Error(`${queued} queued for the hub, expected ${options.referrals}`);

    const seqBefore = await lastSeqOf(jsm);
    const counted = counter.withCounter(env, options.nodeArgs);
    hub = await startService("hub", HUB, counted.env, counted.nodeArgs);
    const readyAt = performance.now();
    const serverPid = local.server?.pid ?? -1;
    const cpuAtReady = { hub: cpuSecondsOf(hub.pid), server: cpuSecondsOf(serverPid) };
    let drained = 0;
    const allDone = async (): Promise<boolean> => {
      const h = await pending(HUB);
      drained = options.referrals - h.pending - h.unacked;
      if (drained < options.referrals) return false;
      const d = (await pending(DESTINATION)).pending - before.destination;
      const o = (await pending(ORIGIN)).pending - before.origin;
      return d === options.referrals && o === 2 * options.referrals;
    };
    const completed = await until(
      allDone,
      "the hub to drain its queue",
      options.drainTimeoutMs ?? 180_000,
      100,
    ).then(
      () => true,
      () => false,
    );
    const drainSeconds = (performance.now() - readyAt) / 1_000;
    const cpuAtEnd = { hub: cpuSecondsOf(hub.pid), server: cpuSecondsOf(serverPid) };
    const hubPeakRssMB = memoryOf(hub.pid).peakRssMB;
    published = (await lastSeqOf(jsm)) - seqBefore;
    result = {
      referrals: options.referrals,
      preparedPerSecond: options.referrals / prepareSeconds,
      prepareSeconds,
      restartMs: hub.startupMs,
      drainSeconds,
      perSecond: drained / drainSeconds,
      drained,
      completed,
      hubPeakRssMB,
      cpuMillisecondsPerReferral: {
        hub: ((cpuAtEnd.hub - cpuAtReady.hub) * 1e3) / Math.max(1, drained),
        natsServer: ((cpuAtEnd.server - cpuAtReady.server) * 1e3) / Math.max(1, drained),
      },
    };
  } finally {
    if (hub !== undefined) await stopService(hub);
    await bus?.close();
    // The restarted hub wrote its counts as it exited.
    counts = counter.read();
    await local.stop();
  }
  const { drained } = result;
  if (counts.length !== 1)
    console.warn(
      `operation counts: ${counts.length} written, 1 expected (the restarted hub's); the catch-up's ideal is left out`,
    );
  const operations =
    counts.length === 1 && drained > 0
      ? operationsPerReferral(
          counts.map((c) => c.counts),
          drained,
          { publish: published / drained, consume: 1 },
        )
      : undefined;
  return { ...result, ...(operations === undefined ? {} : { operations }) };
}
