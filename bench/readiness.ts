/**
 * Part 7: how long each service takes from spawn to ready, run as production runs it (the
 * compiled dist/main.js with key files and environment): to its "<service> ready" log line
 * (HTTP listening), and to its first `GET /readyz` 200 (connected to NATS, its consumer found,
 * its journal writable, its trust list and keys checked). Each service is started `runs` times
 * on a fresh state directory against the bench's provisioned country; the medians are reported.
 */
import { join } from "node:path";
import type { Logger } from "@stafett/shared";
import {
  benchCountry,
  serviceEnv,
  startService,
  stopService,
  type ServiceKind,
} from "./services.js";
import { percentiles } from "./stats.js";

export interface ReadinessTiming {
  service: string;
  kind: ServiceKind;
  /** Median spawn -> "ready" log line, ms. */
  logReadyMs: number;
  /** Median spawn -> first /readyz 200, ms. */
  readyzMs: number;
  /** Slowest spawn -> /readyz 200 of the runs, ms. */
  readyzMaxMs: number;
}

export interface ReadinessResult {
  runs: number;
  services: ReadinessTiming[];
}

const SERVICES: readonly { kind: ServiceKind; id: string }[] = [
  { kind: "gateway", id: "se:municipality:0180" },
  { kind: "hub", id: "se:hub:vast" },
  { kind: "coordinator", id: "se:coordinator" },
  { kind: "liaison", id: "se:liaison" },
];

/** Polls `url` until it answers 200; returns when, against performance.now(). */
async function firstOk(url: string, timeoutMs = 30_000): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return performance.now();
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`${url} not 200 in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function runReadiness(
  log: Logger,
  options: { runs: number; serviceEnv: Record<string, string>; nodeArgs: readonly string[] },
): Promise<ReadinessResult> {
  const local = await benchCountry(log);
  try {
    const services: ReadinessTiming[] = [];
    for (const { kind, id } of SERVICES) {
      const logReady: number[] = [];
      const readyz: number[] = [];
      for (let i = 0; i < options.runs; i++) {
        const env = serviceEnv(local, id, {
          ...options.serviceEnv,
          STAFETT_STATE_DIR: join(local.stateRoot, `readiness-${kind}-${i}`),
        });
        const t0 = performance.now();
        const s = await startService(kind, id, env, options.nodeArgs);
        try {
          const at = await firstOk(`${s.url}/readyz`);
          logReady.push(s.startupMs);
          readyz.push(at - t0);
        } finally {
          await stopService(s);
        }
      }
      services.push({
        service: id,
        kind,
        logReadyMs: percentiles(logReady).p50,
        readyzMs: percentiles(readyz).p50,
        readyzMaxMs: Math.max(...readyz),
      });
    }
    return { runs: options.runs, services };
  } finally {
    await local.stop();
  }
}
