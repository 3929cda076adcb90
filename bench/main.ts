/**
 * `npm run bench`: how close the whole handoff gets to the machine's limit, in one run.
 *   1. transport baseline   2. primitive baseline   3. pipeline (and its ideal)
 *   4. latency at a fixed offered rate, open loop    5. catch-up after a hub restart
 *   6. footprint of each service process (start-up, peak RSS)
 *   7. start-up to ready from the built output, per service (log line, first /readyz 200)
 *   8. what a hub keeps: RSS and journal after N closed and N open referrals, against a fresh hub
 * Prints a table and writes bench/results.md and bench/results.json. Targets are reported
 * as met or missed, never asserted.
 *
 * Options: --only=transport,primitives,pipeline,latency,catch-up,readiness,retention (results go to bench/out/),
 * --render-only (rewrite bench/results.md from bench/results.json and bench/findings.md),
 * --deadline-s=N (kill the run after N seconds instead of 10 minutes),
 * --quick (smaller counts, for trying changes), --profile (service processes write V8 CPU
 * profiles to bench/out/profiles/ when stopped; run the bench itself under `node --cpu-prof`
 * to profile parts 1-3), --service-node-args="<flags>" (Node/V8 flags for the service
 * processes, after the ones they always run with, devkit's SERVICE_NODE_FLAGS; e.g.
 * "--max-semi-space-size=4 --heap-growing-percent=30"; the run then counts as not the recorded
 * one and writes to bench/out/), --latency-rate=N (part 4 offers N referrals/s instead of 500,
 * after the lower of its usual rates; also not the recorded run).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { stopAll, createCountry } from "@stafett/devkit";
import { createLogger, issue } from "@stafett/shared";
import { runCatchUp, type CatchUpResult } from "./catch-up.js";
import { runLatency, type LatencyResult } from "./latency.js";
import { describeMachine } from "./machine.js";
import { runPipeline, type PipelineResult } from "./pipeline.js";
import { runPrimitives, type PrimitivesResult } from "./primitives.js";
import { runReadiness, type ReadinessResult } from "./readiness.js";
import { retentionLines, runRetention, type RetentionResult } from "./retention.js";
import {
  computeCatchUpIdeal,
  computeHandoffIdeal,
  computeIdeal,
  evaluateTargets,
  markdown,
  printTable,
  TARGET_CATCH_UP,
  TARGET_RATE,
  type Results,
} from "./report.js";
import { killAllServices } from "./services.js";
import { isSupervised, supervise } from "./supervisor.js";
import { MUNICIPALITIES, openedInput, ORIGIN } from "./sample.js";
import { runTransport, type TransportResult } from "./transport.js";

const PARTS = [
  "transport",
  "primitives",
  "pipeline",
  "latency",
  "catch-up",
  "readiness",
  "retention",
] as const;
type Part = (typeof PARTS)[number];
/** The whole run must end on its own: past this, everything is killed and the bench fails. */
const DEADLINE_MS = 10 * 60_000;

const here = dirname(fileURLToPath(import.meta.url));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: "string" },
      quick: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      "render-only": { type: "boolean", default: false },
      "service-node-args": { type: "string" },
      "latency-rate": { type: "string" },
      // Read by the supervisor (below); accepted here so that parsing is strict.
      "deadline-s": { type: "string" },
    },
  });
  if (values["render-only"]) {
    // bench/results.md again from bench/results.json and bench/findings.md, without measuring.
    const results = JSON.parse(readFileSync(join(here, "results.json"), "utf8")) as Results;
    writeFileSync(
      join(here, "results.md"),
      markdown(results, readFileSync(join(here, "findings.md"), "utf8")),
    );
    console.log(`\n${printTable(results)}\n\nwritten: ${join(here, "results.md")}`);
    return;
  }
  const only = values.only === undefined ? undefined : values.only.split(",").map((s) => s.trim());
  for (const p of only ?? []) {
    if (!(PARTS as readonly string[]).includes(p))
      throw new Error(`unknown part ${p}; parts: ${PARTS.join(", ")}`);
  }
  const runs = (p: Part): boolean => only === undefined || only.includes(p);
  const quick = values.quick;
  const latencyRate = Number(values["latency-rate"] ?? TARGET_RATE);
  if (!(Number.isInteger(latencyRate) && latencyRate > 0 && latencyRate <= 10_000))
    throw new Error(`--latency-rate must be a number of referrals per second (1 to 10000)`);
  const profileDir = join(here, "out", "profiles");
  const serviceEnv: Record<string, string> = {};
  if (values.profile) {
    mkdirSync(profileDir, { recursive: true });
    serviceEnv["NODE_OPTIONS"] = `--import=${join(here, "cpu-profile.mjs")}`;
    serviceEnv["STAFETT_BENCH_PROFILE_DIR"] = profileDir;
  }
  const nodeArgs = (values["service-node-args"] ?? "").split(" ").filter((a) => a !== "");
  const counts = {
    transportMessages: quick ? 5_000 : 20_000,
    pipelineReferrals: quick ? 2_000 : 20_000,
    latencySeconds: quick ? 5 : 30,
    latencyRate,
    catchUpReferrals: quick ? 5_000 : TARGET_CATCH_UP,
    retentionReferrals: quick ? 10_000 : 100_000,
  };

  const started = new Date();
  const t0 = performance.now();
  const log = createLogger({ service: "bench", level: "warn" });
  const step = (what: string): void =>
    console.log(`[${((performance.now() - t0) / 1_000).toFixed(1)} s] ${what}`);
  const machine = describeMachine();
  const country = await createCountry({ code: "se", municipalities: [...MUNICIPALITIES] });
  const sample = await issue(openedInput(0), {
    identity: country.identity(ORIGIN),
    trust: country.trust,
  });
  step(
    `machine: ${machine.cores} cores, Node ${machine.node}, nats-server ${machine.natsServer}; a SignedEvent is ${sample.bytes.byteLength} bytes`,
  );

  let transport: TransportResult | undefined;
  let primitives: PrimitivesResult | undefined;
  let pipeline: PipelineResult | undefined;
  let latency: LatencyResult | undefined;
  let catchUp: CatchUpResult | undefined;
  let readiness: ReadinessResult | undefined;
  let retention: RetentionResult | undefined;
  // The transport and primitive baselines price the ideals of parts 3 to 5.
  const priced = runs("pipeline") || runs("latency") || runs("catch-up");
  if (runs("transport") || priced) {
    step("1. transport baseline");
    transport = await runTransport({
      messageBytes: sample.bytes.byteLength,
      messages: counts.transportMessages,
    });
  }
  if (runs("primitives") || priced) {
    step("2. primitive baseline");
    primitives = await runPrimitives(country);
  }
  if (runs("pipeline")) {
    step(`3. pipeline, ${counts.pipelineReferrals} referrals`);
    pipeline = await runPipeline(country, log, { referrals: counts.pipelineReferrals });
  }
  if (runs("latency")) {
    step(`4. latency at ${counts.latencyRate}/s for ${counts.latencySeconds} s, and 6. footprint`);
    latency = await runLatency(log, {
      rate: counts.latencyRate,
      seconds: counts.latencySeconds,
      warmUpSeconds: quick ? 1 : 3,
      lowerRates: (quick ? [100, 300] : [100, 200, 300, 400]).filter((r) => r < counts.latencyRate),
      lowerRateSeconds: quick ? 3 : 10,
      serviceEnv,
      nodeArgs,
    });
  }
  if (runs("catch-up")) {
    step(`5. catch-up of ${counts.catchUpReferrals} referrals`);
    catchUp = await runCatchUp(log, {
      referrals: counts.catchUpReferrals,
      serviceEnv,
      nodeArgs,
    });
  }
  if (runs("readiness")) {
    step("7. start-up to ready, each service from the built output");
    readiness = await runReadiness(log, { runs: quick ? 2 : 5, serviceEnv, nodeArgs });
  }
  if (runs("retention")) {
    step(`8. what a hub keeps: ${counts.retentionReferrals} referrals closed, open, and none`);
    retention = await runRetention(log, {
      referrals: counts.retentionReferrals,
      opened: Buffer.from(sample.bytes).toString("base64"),
      nodeArgs,
    });
    for (const line of retentionLines(retention)) step(`   ${line}`);
  }
  const ideal =
    pipeline !== undefined && primitives !== undefined && transport !== undefined
      ? computeIdeal(pipeline.operations, primitives.node, transport, pipeline.perSecond)
      : undefined;
  const handoffIdeal =
    latency !== undefined && primitives !== undefined && transport !== undefined
      ? computeHandoffIdeal(latency, primitives.node, transport, machine.cores)
      : undefined;
  const catchUpIdeal =
    catchUp !== undefined && primitives !== undefined && transport !== undefined
      ? computeCatchUpIdeal(catchUp, primitives.node, transport)
      : undefined;
  const defaultRate = latencyRate === TARGET_RATE;
  const full = only === undefined && !quick && nodeArgs.length === 0 && defaultRate;
  const partial: Omit<Results, "targets"> = {
    machine,
    startedAt: started.toISOString(),
    durationSeconds: (performance.now() - t0) / 1_000,
    mode: full
      ? "full"
      : `${only?.join(",") ?? "all parts"}${quick ? ", quick" : ""}${defaultRate ? "" : `, latency at ${counts.latencyRate}/s`}${nodeArgs.length === 0 ? "" : `, services run with ${nodeArgs.join(" ")}`}`,
    ...(transport === undefined ? {} : { transport }),
    ...(primitives === undefined ? {} : { primitives }),
    ...(pipeline === undefined ? {} : { pipeline }),
    ...(ideal === undefined ? {} : { ideal }),
    ...(latency === undefined ? {} : { latency }),
    ...(handoffIdeal === undefined ? {} : { handoffIdeal }),
    ...(catchUp === undefined ? {} : { catchUp }),
    ...(catchUpIdeal === undefined ? {} : { catchUpIdeal }),
    ...(readiness === undefined ? {} : { readiness }),
    ...(retention === undefined ? {} : { retention }),
  };
  const results: Results = { ...partial, targets: evaluateTargets(partial) };
  step("done");
  console.log(`\n${printTable(results)}\n`);

  const outDir = full ? here : join(here, "out");
  mkdirSync(outDir, { recursive: true });
  const findings = readFileSync(join(here, "findings.md"), "utf8");
  writeFileSync(join(outDir, "results.json"), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, "results.md"), markdown(results, findings));
  console.log(`written: ${join(outDir, "results.md")}, ${join(outDir, "results.json")}`);
}

if (!isSupervised()) {
  // The supervisor: runs the bench below as its child and kills it past the deadline.
  mkdirSync(join(here, "out"), { recursive: true });
  const manifest = join(here, "out", `cleanup-${process.pid}.txt`);
  const deadline = /^--deadline-s=(\d+)$/.exec(
    process.argv.find((a) => a.startsWith("--deadline-s=")) ?? "",
  );
  const deadlineMs = deadline?.[1] === undefined ? DEADLINE_MS : Number(deadline[1]) * 1_000;
  process.exitCode = await supervise(fileURLToPath(import.meta.url), manifest, deadlineMs);
} else {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.error(`bench: ${signal}; stopping everything`);
      killAllServices();
      void stopAll().finally(() => process.exit(130));
    });
  }
  try {
    await main();
    await stopAll();
    process.exit(0);
  } catch (err) {
    console.error("bench failed:", err);
    killAllServices();
    await stopAll();
    process.exit(1);
  }
}
