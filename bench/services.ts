/**
 * Stafett services as their own OS processes (the real entry points compiled to dist/, as
 * production runs them, with key files and environment, via @stafett/devkit's spawnService;
 * `npm run bench` builds first), with what the benchmarks read of them: the
 * HTTP address they log when ready, the time from spawn to that line, and their memory.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { JetStreamManager } from "@nats-io/jetstream";
import { consumersOf, streamName, type Logger } from "@stafett/shared";
import {
  LocalCountry,
  spawnService,
  writeServiceFiles,
  type ServiceProcess,
} from "@stafett/devkit";
import { MUNICIPALITIES } from "./sample.js";
import { registerTempDir } from "./supervisor.js";

export type ServiceKind = "hub" | "gateway" | "coordinator" | "liaison";

export interface RunningService {
  kind: ServiceKind;
  id: string;
  process: ServiceProcess;
  pid: number;
  url: string;
  /** spawn -> the "<service> ready" log line. */
  startupMs: number;
  /** RSS right after ready, MB. */
  rssAtReadyMB: number;
  env: Record<string, string>;
}

export interface Memory {
  /** Peak resident set size (VmHWM), MB (10^6 bytes). */
  peakRssMB: number;
  /** Current resident set size (VmRSS), MB. */
  rssMB: number;
}

const READY_TIMEOUT_MS = 60_000;

/** Every service process started and not yet gone: SIGKILLed if the bench exits early. */
const live = new Set<ServiceProcess>();
let exitHookInstalled = false;

function track(proc: ServiceProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", killAllServices);
  }
  live.add(proc);
  proc.child.once("exit", () => live.delete(proc));
}

/** SIGKILLs every service process still running (synchronous: usable in an exit handler). */
export function killAllServices(): void {
  for (const p of live) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  }
}

/** The environment of `id`'s service: key files, the NATS URL, and the country's token JWKS. */
export function serviceEnv(
  local: LocalCountry,
  id: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const dir = join(local.stateRoot, `process-${id.replaceAll(":", "-")}`);
  const env = writeServiceFiles(
    local.country,
    id,
    dir,
    local.natsUrl,
    undefined,
    local.nkeySeed(id),
  );
  const jwksFile = join(local.stateRoot, "auth.jwks.json");
  writeFileSync(jwksFile, JSON.stringify(local.tokens.config.jwks));
  return {
    ...env,
    // The bench mints tokens with the country's issuer (local.token), so the services trust it.
    STAFETT_AUTH_DEV: "0",
    STAFETT_AUTH_JWKS: jwksFile,
    STAFETT_AUTH_ISSUER: local.tokens.config.issuer,
    STAFETT_AUTH_AUDIENCE: local.tokens.config.audience,
    ...extra,
  };
}

export async function startService(
  kind: ServiceKind,
  id: string,
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): Promise<RunningService> {
  const t0 = performance.now();
  const proc = spawnService(kind, env, { fromDist: true, nodeArgs });
  track(proc);
  let output = "";
  let url = "";
  proc.child.stdout?.on("data", (chunk: Buffer) => {
    if (url !== "") return;
    output += chunk.toString();
    const found = /"url":"(http:\/\/[^"]+)"/.exec(output);
    if (found?.[1] !== undefined) url = found[1];
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      proc.ready,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${kind} ${id} not ready in ${READY_TIMEOUT_MS} ms`)),
          READY_TIMEOUT_MS,
        );
      }),
    ]);
  } catch (err) {
    await proc.kill();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const startupMs = performance.now() - t0;
  const pid = proc.child.pid;
  if (pid === undefined) throw new Error(`${kind} ${id} has no pid`);
  return { kind, id, process: proc, pid, url, startupMs, rssAtReadyMB: memoryOf(pid).rssMB, env };
}

/** SIGTERM (the service drains and exits), SIGKILL if it has not gone after `timeoutMs`. */
export async function stopService(s: RunningService, timeoutMs = 15_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => void s.process.kill().then(resolve), timeoutMs);
  });
  await Promise.race([s.process.stop(), killed]);
  clearTimeout(timer);
}

/**
 * Starts the process's peak RSS (VmHWM) again from its current RSS (`clear_refs` 5, Linux 4.0 and
 * later), so that a later `memoryOf` tells the peak of what happened in between. Where the
 * kernel refuses, the peak stays the process's whole life's, which can only overstate it.
 */
export function resetPeakRss(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
  } catch {
    // Not Linux, or not allowed: the peak is then cumulative.
  }
}

/** Peak and current RSS from /proc/<pid>/status (Linux). */
export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string): number =>
    Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { peakRssMB: (kib("VmHWM") * 1024) / 1e6, rssMB: (kib("VmRSS") * 1024) / 1e6 };
}

/** Linux reports process times in clock ticks of 1/100 s (sysconf(_SC_CLK_TCK) is 100 there). */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process has used so far, seconds, from /proc/<pid>/stat. */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name "(...)": state is field 3, utime 14 and stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** CPU time this process has used so far, seconds. */
export function ownCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** The durable consumer of an organisation (its first, for a liaison). */
function durableOf(id: string): string {
  const spec = consumersOf(id)[0];
  if (spec === undefined) throw new Error(`${id} has no consumer`);
  return spec.durable;
}

/** What an organisation's consumer has left: messages not yet delivered, and delivered unacked. */
export async function backlogOf(
  jsm: JetStreamManager,
  id: string,
): Promise<{ pending: number; unacked: number }> {
  const info = await jsm.consumers.info(streamName("se"), durableOf(id));
  return { pending: info.num_pending, unacked: info.num_ack_pending };
}

/** The last sequence number of the country's stream: the messages published so far. */
export async function lastSeqOf(jsm: JetStreamManager): Promise<number> {
  return (await jsm.streams.info(streamName("se"))).state.last_seq;
}

/**
 * The bench's country: its own nats-server and trust lists, no services (each part starts the
 * ones it measures as processes); its temporary directories go when the bench ends.
 */
export async function benchCountry(log: Logger): Promise<LocalCountry> {
  const local = await LocalCountry.start({
    municipalities: [...MUNICIPALITIES],
    log,
    servicesOff: true,
  });
  registerTempDir(local.stateRoot);
  registerTempDir(local.server?.dir);
  return local;
}
