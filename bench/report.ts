/**
 * The ideal (the per-referral sum, on one core, of the primitive and transport operations the
 * pipeline performs, all measured in this run), the targets, the printed table, and
 * bench/results.md and bench/results.json.
 */
import type { RetentionResult } from "./retention.js";
import type { CatchUpResult } from "./catch-up.js";
import { BENCH_CLIENT, type LatencyResult, type LatencyRun } from "./latency.js";
import type { Machine } from "./machine.js";
import type { Operations } from "./operations.js";
import type { PipelineResult } from "./pipeline.js";
import type { PrimitiveRates, PrimitivesResult } from "./primitives.js";
import type { ReadinessResult } from "./readiness.js";
import type { TransportResult } from "./transport.js";

export interface Results {
  machine: Machine;
  startedAt: string;
  durationSeconds: number;
  /** "full", or the parts run (`--only`) and whether the counts were reduced (`--quick`). */
  mode: string;
  transport?: TransportResult;
  primitives?: PrimitivesResult;
  pipeline?: PipelineResult;
  ideal?: Ideal;
  latency?: LatencyResult;
  handoffIdeal?: HandoffIdeal;
  catchUpIdeal?: CatchUpIdeal;
  catchUp?: CatchUpResult;
  readiness?: ReadinessResult;
  retention?: RetentionResult;
  targets: Target[];
}

export interface Ideal {
  /** Microseconds per referral for each kind of operation (count x 1/rate). */
  microsecondsPerReferral: Record<keyof Operations, number>;
  microseconds: number;
  perSecond: number;
  /** The same referral on the transport alone: 2 publishes and 2 consumes. */
  transportOnlyPerSecond: number;
  pipelineToIdeal: number;
  pipelineToTransport: number;
}

export interface Target {
  name: string;
  target: string;
  value: string;
  met: boolean;
}

export function computeIdeal(
  ops: Operations,
  node: PrimitiveRates,
  transport: TransportResult,
  pipelinePerSecond: number,
): Ideal {
  const { micro, total } = idealOf(ops, node, transport, "rate");
  const transportOnly = 1e6 / (micro.publish + micro.consume);
  return {
    microsecondsPerReferral: micro,
    microseconds: total,
    perSecond: 1e6 / total,
    transportOnlyPerSecond: transportOnly,
    pipelineToIdeal: pipelinePerSecond / (1e6 / total),
    pipelineToTransport: pipelinePerSecond / transportOnly,
  };
}

/**
 * The ideal of operations counted in the service processes (LatencyResult.operations,
 * CatchUpResult.operations), each at the cost the primitive and transport baselines measured in
 * this run, next to the CPU those processes and nats-server took per referral.
 */
export interface CountedIdeal {
  microsecondsPerReferral: Record<keyof Operations, number>;
  microseconds: number;
  /** Measured CPU per referral (the services and nats-server, not the bench) / the ideal. */
  measuredToIdeal: number;
}

/** The whole handoff of the latency part (at its offered rate). */
export interface HandoffIdeal extends CountedIdeal {
  /** ideal x offered rate / cores. */
  machineShareAtOfferedRate: number;
}

/** The hub's catch-up. */
export interface CatchUpIdeal extends CountedIdeal {
  /** ideal x the referrals queued: the catch-up on one core at the ideal. */
  secondsOnOneCore: number;
}

export function computeHandoffIdeal(
  latency: LatencyResult,
  node: PrimitiveRates,
  transport: TransportResult,
  cores: number,
): HandoffIdeal | undefined {
  if (latency.operations === undefined) return undefined;
  const { micro, total } = idealOf(latency.operations.perReferral, node, transport, "cpu");
  const measured = Object.entries(latency.cpuMillisecondsPerReferral)
    .filter(([k]) => k !== BENCH_CLIENT)
    .reduce((t, [, ms]) => t + ms * 1e3, 0);
  return {
    microsecondsPerReferral: micro,
    microseconds: total,
    measuredToIdeal: measured / total,
    machineShareAtOfferedRate: (total * latency.offeredPerSecond) / (cores * 1e6),
  };
}

export function computeCatchUpIdeal(
  catchUp: CatchUpResult,
  node: PrimitiveRates,
  transport: TransportResult,
): CatchUpIdeal | undefined {
  if (catchUp.operations === undefined) return undefined;
  const { micro, total } = idealOf(catchUp.operations, node, transport, "cpu");
  const cpu = catchUp.cpuMillisecondsPerReferral;
  return {
    microsecondsPerReferral: micro,
    microseconds: total,
    measuredToIdeal: ((cpu.hub + cpu.natsServer) * 1e3) / total,
    secondsOnOneCore: (total * catchUp.referrals) / 1e6,
  };
}

/**
 * Each operation's count x its measured cost, µs. A primitive costs 1 / its rate on one thread
 * (its CPU time). A message costs 1 / its rate when the ideal is a throughput to compare with
 * one (the pipeline's, as the issue defines it), and the CPU of client and nats-server together
 * when the ideal is compared with CPU time (the counted ideals).
 */
function idealOf(
  ops: Operations,
  node: PrimitiveRates,
  transport: TransportResult,
  messages: "rate" | "cpu",
): { micro: Record<keyof Operations, number>; total: number } {
  const cost: Record<keyof Operations, number> = {
    ...(Object.fromEntries(Object.entries(node).map(([k, rate]) => [k, 1e6 / rate])) as Record<
      keyof PrimitiveRates,
      number
    >),
    ...(messages === "rate"
      ? {
          publish: 1e6 / transport.publishPerSecond,
          // The services ack without confirmation (a lost ack is a redelivery they recognise).
          consume: 1e6 / transport.consumeAckPerSecond,
        }
      : {
          publish: transport.cpuMicrosecondsPerMessage.publish,
          consume: transport.cpuMicrosecondsPerMessage.consumeAck,
        }),
  };
  const micro = {} as Record<keyof Operations, number>;
  let total = 0;
  for (const key of Object.keys(ops) as (keyof Operations)[]) {
    micro[key] = ops[key] * cost[key];
    total += micro[key];
  }
  return { micro, total };
}

/** The offered rate of the latency target (p99 < 20 ms at 500 referrals/s). */
export const TARGET_RATE = 500;
/** The size of the catch-up target (50,000 queued referrals in under 30 s). */
export const TARGET_CATCH_UP = 50_000;

export function evaluateTargets(r: Omit<Results, "targets">): Target[] {
  const t: Target[] = [];
  if (r.ideal !== undefined) {
    t.push({
      name: "pipeline throughput vs ideal",
      target: ">= 0.5 x ideal",
      value: `${fmt(r.ideal.pipelineToIdeal, 2)} x`,
      met: r.ideal.pipelineToIdeal >= 0.5,
    });
  }
  if (r.latency !== undefined) {
    const l = r.latency;
    // A run at a lower rate (--latency-rate) reports its p99, but cannot meet a target set at 500/s.
    t.push({
      name: `p99 latency at ${l.offeredPerSecond}/s`,
      target: `< 20 ms at ${TARGET_RATE}/s`,
      value: `${fmt(l.receipt.p99, 1)} ms`,
      met:
        l.offeredPerSecond >= TARGET_RATE &&
        l.receipt.p99 < 20 &&
        l.receipted === l.sent &&
        l.errors === 0,
    });
    for (const s of l.footprint) {
      t.push({
        name: `peak RSS ${s.service}`,
        target: "< 150 MB",
        value: `${fmt(s.peakRssMB, 1)} MB`,
        met: s.peakRssMB < 150,
      });
    }
    for (const s of l.footprint) {
      t.push({
        name: `ready ${s.service}`,
        target: "< 1 s",
        value: `${fmt(s.startupMs)} ms`,
        met: s.startupMs < 1_000,
      });
    }
  }
  for (const s of r.readiness?.services ?? []) {
    t.push({
      name: `/readyz 200 ${s.service}`,
      target: "< 1 s",
      value: `${fmt(s.readyzMs)} ms`,
      met: s.readyzMs < 1_000,
    });
  }
  if (r.catchUp !== undefined) {
    const c = r.catchUp;
    t.push({
      name: `catch-up of ${c.referrals.toLocaleString("en")}`,
      target: `< 30 s for ${fmt(TARGET_CATCH_UP)}`,
      value: `${fmt(c.drainSeconds, 1)} s`,
      met: c.referrals >= TARGET_CATCH_UP && c.completed && c.drainSeconds < 30,
    });
  }
  return t;
}

export function fmt(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return "n/a";
  return n.toLocaleString("en", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

type Row = [string, string, string?];

/** The rows of the summary table: what, measured, and a note. */
export function tableRows(r: Results): Row[] {
  const rows: Row[] = [];
  const m = r.machine;
  rows.push([
    "machine",
    `${m.cores} cores, ${m.cpu}`,
    `Node ${m.node}, nats-server ${m.natsServer}`,
  ]);
  if (r.transport !== undefined) {
    const x = r.transport;
    rows.push([
      "transport: publish (msg id, ack awaited)",
      `${fmt(x.publishPerSecond)} msg/s`,
      `${x.messageBytes} B, ${x.publishWindow} in flight; CPU ${fmt(x.cpuMicrosecondsPerMessage.publish)} µs per message, client and nats-server`,
    ]);
    rows.push([
      "transport: pull-consume + ack",
      `${fmt(x.consumeAckPerSecond)} msg/s`,
      `what the services do; CPU ${fmt(x.cpuMicrosecondsPerMessage.consumeAck)} µs per message, client and nats-server`,
    ]);
    rows.push([
      "transport: pull-consume + confirmed ack",
      `${fmt(x.consumeAckAckPerSecond)} msg/s`,
      "for comparison: each ack a request",
    ]);
  }
  if (r.primitives !== undefined) {
    const p = r.primitives.node;
    rows.push([
      "node:crypto Ed25519 sign",
      `${fmt(p.ed25519Sign)} /s`,
      `${r.primitives.signedBytes} B event`,
    ]);
    rows.push(["node:crypto Ed25519 verify", `${fmt(p.ed25519Verify)} /s`]);
    rows.push([
      "node:crypto X25519 key generation",
      `${fmt(p.x25519KeyGen)} /s`,
      "one ephemeral key per recipient",
    ]);
    rows.push(["node:crypto X25519 agreement + Concat KDF", `${fmt(p.x25519Agree)} /s`]);
    rows.push([
      "node:crypto AES-256-KW wrap / unwrap",
      `${fmt(p.aesKwWrap)} / ${fmt(p.aesKwUnwrap)} /s`,
    ]);
    rows.push([
      "node:crypto AES-256-GCM encrypt / decrypt",
      `${fmt(p.aesGcmEncrypt)} / ${fmt(p.aesGcmDecrypt)} /s`,
      `${r.primitives.personalBytes} B personal part`,
    ]);
    const j = r.primitives.joseLayer;
    const pair = (name: string, lib: number, jose: number): Row => [
      `JOSE ${name}: library / jose`,
      `${fmt(lib)} / ${fmt(jose)} /s`,
      `${fmt(lib / jose, 1)} x`,
    ];
    rows.push(pair("sign (detached JWS)", j.library.sign, j.jose.sign));
    rows.push(pair("verify (detached JWS)", j.library.verify, j.jose.verify));
    rows.push(pair("seal (JWE, 2 recipients)", j.library.seal2, j.jose.seal2));
    rows.push(pair("open (JWE)", j.library.open, j.jose.open));
    rows.push([
      "seal / open as bare node:crypto steps",
      `${fmt(j.bare.seal2)} / ${fmt(j.bare.open)} /s`,
      "the same primitives without JSON or base64: the JOSE layer's floor",
    ]);
  }
  if (r.pipeline !== undefined) {
    rows.push([
      "pipeline: issue -> hub receive -> receipt -> origin receive",
      `${fmt(r.pipeline.perSecond)} referrals/s`,
      `${fmt(r.pipeline.referrals)} referrals, window ${r.pipeline.window}, consumers x${r.pipeline.consumerConcurrency}` +
        (r.pipeline.wholeRunPerSecond === undefined
          ? ""
          : `; best quarter, ${fmt(r.pipeline.wholeRunPerSecond)}/s over the whole run`),
    ]);
  }
  if (r.pipeline !== undefined) {
    const c = r.pipeline.cpuMicrosecondsPerReferral;
    rows.push([
      "pipeline CPU per referral: its process / nats-server",
      `${fmt(c.pipeline)} / ${fmt(c.natsServer)} µs`,
      "CPU time: less exposed to other load than a rate, not immune to it on a shared VM",
    ]);
  }
  if (r.ideal !== undefined) {
    rows.push([
      "ideal (primitives + transport, one core)",
      `${fmt(r.ideal.perSecond)} referrals/s`,
      `${fmt(r.ideal.microseconds)} µs per referral`,
    ]);
    rows.push(["pipeline / ideal", `${fmt(r.ideal.pipelineToIdeal, 2)}`]);
    rows.push([
      "transport alone (2 publishes + 2 consumes)",
      `${fmt(r.ideal.transportOnlyPerSecond)} referrals/s`,
    ]);
    rows.push(["pipeline / transport alone", `${fmt(r.ideal.pipelineToTransport, 2)}`]);
  }
  if (r.latency !== undefined) {
    const l = r.latency;
    rows.push([
      `latency POST -> receipt verified, ${l.offeredPerSecond}/s x ${l.seconds} s`,
      `p50 ${fmt(l.receipt.p50, 1)} / p95 ${fmt(l.receipt.p95, 1)} / p99 ${fmt(l.receipt.p99, 1)} / max ${fmt(l.receipt.max, 1)} ms`,
      `${fmt(l.receipted)} of ${fmt(l.sent)} receipted, ${l.errors} errors`,
    ]);
    rows.push([
      "latency POST -> 202",
      `p50 ${fmt(l.http.p50, 1)} / p95 ${fmt(l.http.p95, 1)} / p99 ${fmt(l.http.p99, 1)} / max ${fmt(l.http.max, 1)} ms`,
      `sender lag p99 ${fmt(l.sendLag.p99, 1)} ms`,
    ]);
    rows.push([
      "achieved rate (receipts)",
      `${fmt(l.achievedPerSecond)} referrals/s`,
      peaksOf(l).replace(/^; /, ""),
    ]);
    for (const b of l.byRate) {
      rows.push([
        `latency at a lower rate, ${b.offeredPerSecond}/s x ${b.seconds} s`,
        `p50 ${fmt(b.receipt.p50, 1)} / p95 ${fmt(b.receipt.p95, 1)} / p99 ${fmt(b.receipt.p99, 1)} / max ${fmt(b.receipt.max, 1)} ms`,
        `achieved ${fmt(b.achievedPerSecond)}/s; POST -> 202 p99 ${fmt(b.http.p99, 1)} ms; ${fmt(b.receipted)} of ${fmt(b.sent)} receipted, ${b.errors} errors; CPU ${fmt(cpuSum(b), 2)} ms per referral` +
          peaksOf(b),
      ]);
    }
    const holds = [...l.byRate, l]
      .filter((b) => b.receipt.p99 < 20 && b.receipted === b.sent)
      .map((b) => b.offeredPerSecond);
    rows.push([
      "highest rate tried with p99 < 20 ms",
      holds.length === 0 ? "none" : `${fmt(Math.max(...holds))} referrals/s`,
      "of the rates run above, on this machine",
    ]);
    rows.push([
      `CPU per referral at ${l.offeredPerSecond}/s`,
      `${fmt(cpuSum(l), 2)} ms in all`,
      Object.entries(l.cpuMillisecondsPerReferral)
        .map(([k, v]) => `${k} ${fmt(v, 2)}`)
        .join(", "),
    ]);
    const h = r.handoffIdeal;
    if (h !== undefined) {
      rows.push([
        "handoff ideal (its counted primitives and messages, CPU)",
        `${fmt(h.microseconds)} µs per referral`,
        `${fmt(h.machineShareAtOfferedRate * 100)} % of this machine at ${l.offeredPerSecond}/s; the handoff took ${fmt(h.measuredToIdeal, 1)} x the ideal in CPU (services and nats-server)`,
      ]);
    }
    for (const s of l.footprint) {
      rows.push([
        `footprint ${s.service}`,
        `ready ${fmt(s.startupMs)} ms, peak RSS ${fmt(s.peakRssMB, 1)} MB`,
        `RSS at ready ${fmt(s.rssAtReadyMB, 1)} MB`,
      ]);
    }
  }
  if (r.catchUp !== undefined) {
    const c = r.catchUp;
    rows.push([
      `catch-up of ${fmt(c.referrals)} queued referrals`,
      `${fmt(c.perSecond)} referrals/s`,
      `${fmt(c.drainSeconds, 1)} s${c.completed ? "" : ` (incomplete: ${fmt(c.drained)} drained)`}, restart ${fmt(c.restartMs)} ms, hub peak RSS ${fmt(c.hubPeakRssMB, 1)} MB`,
    ]);
    rows.push([
      "catch-up CPU per referral: hub / nats-server",
      `${fmt(c.cpuMillisecondsPerReferral.hub, 2)} / ${fmt(c.cpuMillisecondsPerReferral.natsServer, 2)} ms`,
    ]);
    const ci = r.catchUpIdeal;
    if (ci !== undefined) {
      rows.push([
        "catch-up ideal (the hub's counted primitives and messages, CPU)",
        `${fmt(ci.microseconds)} µs per referral`,
        `${fmt(ci.secondsOnOneCore, 1)} s for the ${fmt(c.referrals)} on one core; the hub and nats-server took ${fmt(ci.measuredToIdeal, 1)} x the ideal in CPU`,
      ]);
    }
    rows.push([
      "catch-up preparation (issue + publish)",
      `${fmt(c.preparedPerSecond)} referrals/s`,
      `${fmt(c.prepareSeconds, 1)} s`,
    ]);
  }
  for (const s of r.readiness?.services ?? []) {
    rows.push([
      `start-up to ready (built output) ${s.service}`,
      `/readyz 200 after ${fmt(s.readyzMs)} ms`,
      `"${s.kind} ready" logged after ${fmt(s.logReadyMs)} ms; median of ${r.readiness?.runs ?? 0} starts, slowest ${fmt(s.readyzMaxMs)} ms`,
    ]);
  }
  return rows;
}

export function printTable(r: Results): string {
  const rows = tableRows(r);
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length));
  const lines = rows.map(([a, b, c]) => `${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c ?? ""}`.trimEnd());
  lines.push("");
  for (const t of r.targets) {
    lines.push(`${t.met ? "met   " : "MISSED"}  ${t.name}: ${t.value} (target ${t.target})`);
  }
  return lines.join("\n");
}

/** CPU time per referral of every process in a latency run, ms. */
function cpuSum(run: LatencyRun): number {
  return Object.values(run.cpuMillisecondsPerReferral).reduce((t, v) => t + v, 0);
}

/** "; peak RSS vast 150, 1480 130, … MB": each service's peak during one latency run. */
function peaksOf(run: { peakRssMB?: Record<string, number> }): string {
  const peaks = Object.entries(run.peakRssMB ?? {});
  if (peaks.length === 0) return "";
  const short = (id: string): string => id.split(":").at(-1) ?? id;
  return `; peak RSS ${peaks.map(([id, mb]) => `${short(id)} ${fmt(mb)}`).join(", ")} MB`;
}

/** The catch-up's column in the table of counted operations (the others are services). */
const CATCH_UP_HUB = "catch-up: hub";

export function markdown(r: Results, findings: string): string {
  const out: string[] = [];
  out.push("# Benchmark results");
  out.push("");
  out.push(
    `Generated by \`npm run bench\` (bench/main.ts) on ${r.startedAt}, in ${fmt(r.durationSeconds)} s (${r.mode}). ` +
      "Every number in the tables was measured in that one run (bench/results.json has them all); the findings after them compare it with a run of the code before the changes.",
  );
  out.push("");
  out.push(
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB, ${r.machine.os}; Node ${r.machine.node}; nats-server ${r.machine.natsServer}.`,
  );
  out.push("");
  out.push("| measured | value | note |");
  out.push("|---|---|---|");
  for (const [a, b, c] of tableRows(r)) out.push(`| ${a} | ${b} | ${c ?? ""} |`);
  out.push("");
  out.push("## Targets");
  out.push("");
  out.push("| target | measured | wanted | |");
  out.push("|---|---|---|---|");
  for (const t of r.targets)
    out.push(`| ${t.name} | ${t.value} | ${t.target} | ${t.met ? "met" : "**missed**"} |`);
  out.push("");
  if (r.ideal !== undefined) {
    out.push("## The ideal, per referral of the pipeline");
    out.push("");
    out.push(
      "The pipeline (part 3) signs 2 events and verifies 2, seals one personal part to 2 recipients " +
        "(2 ephemeral X25519 keys, 2 agreements, 2 AES-KW wraps, 1 AES-GCM encryption) and opens it once " +
        "(1 agreement, 1 unwrap, 1 decryption), and publishes and consumes 2 messages. The ideal is the " +
        "sum of those operations' costs on one core, each measured above (1 / rate):",
    );
    out.push("");
    out.push("| operation | per referral | µs |");
    out.push("|---|---|---|");
    const ops = r.pipeline?.operations;
    for (const [k, v] of Object.entries(r.ideal.microsecondsPerReferral)) {
      out.push(`| ${k} | ${ops?.[k as keyof Operations] ?? ""} | ${fmt(v, 1)} |`);
    }
    out.push(
      `| **total** | | **${fmt(r.ideal.microseconds, 1)}** (${fmt(r.ideal.perSecond)} referrals/s) |`,
    );
    out.push("");
  }
  const ops = r.latency?.operations;
  if (r.handoffIdeal !== undefined && ops !== undefined && r.latency !== undefined) {
    const h = r.handoffIdeal;
    out.push("## The ideal, per referral of the whole handoff and of the catch-up");
    out.push("");
    out.push(
      "What the latency part's services did for one referral (POST, the hub, the destination, the " +
        "receipt back at the origin), counted in the services themselves (node:crypto calls, " +
        "bench/op-count.mjs) and on the stream (messages published, each consumed once), averaged " +
        "over every referral accepted in that part (a count that is not a whole number would show " +
        "work that varies with load); and what the restarted hub did for each referral of the " +
        "catch-up. Each primitive is priced at 1 / its rate above, as in the pipeline's ideal; each " +
        "message at the CPU that client and nats-server spent on it in part 1, because these " +
        "ideals are compared with CPU time (part 1's messages are the size of an opened event, " +
        "256 in flight: a forward is larger, and the services batch less). The handoff's ideal is " +
        `${fmt(h.microseconds)} µs per referral: ${fmt(h.machineShareAtOfferedRate * 100)} % of this ` +
        `machine's ${r.machine.cores} cores at ${r.latency.offeredPerSecond}/s, before any HTTP, ` +
        "JSON, schema, journal or scheduling. The handoff took " +
        `${fmt(h.measuredToIdeal, 1)} x that in CPU.`,
    );
    out.push("");
    const columns: [string, Partial<Operations>][] = Object.entries(ops.byService).sort(
      ([a], [b]) => a.localeCompare(b),
    );
    if (r.catchUp?.operations !== undefined) columns.push([CATCH_UP_HUB, r.catchUp.operations]);
    out.push(`| operation | ${columns.map(([name]) => name).join(" | ")} | handoff | µs |`);
    out.push(`|---|${columns.map(() => "---|").join("")}---|---|`);
    for (const [k, v] of Object.entries(h.microsecondsPerReferral)) {
      const key = k as keyof Operations;
      // The handoff's messages are counted on the stream, not by service.
      const each = columns.map(([name, o]) =>
        (key === "publish" || key === "consume") && name !== CATCH_UP_HUB
          ? ""
          : fmt(o[key] ?? 0, 2),
      );
      out.push(`| ${k} | ${each.join(" | ")} | ${fmt(ops.perReferral[key], 2)} | ${fmt(v, 1)} |`);
    }
    out.push(
      `| **total µs** |${columns.map(([name]) => (name === CATCH_UP_HUB && r.catchUpIdeal !== undefined ? ` ${fmt(r.catchUpIdeal.microseconds, 1)} |` : " |")).join("")} | **${fmt(h.microseconds, 1)}** |`,
    );
    out.push("");
  }
  out.push(findings.trim());
  out.push("");
  return out.join("\n");
}
