/**
 * A Stafett service as its own OS process, started from its real entry point with key files and
 * environment, as in production: for tests that kill a service with SIGKILL mid-flow.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseOrgId } from "@stafett/shared";
import type { Country } from "./country.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * Writes an organisation's private keys (0600), its NATS nkey seed (0600) when given, and the
 * anchor's public key; returns the service's environment.
 */
export function writeServiceFiles(
  country: Country,
  id: string,
  dir: string,
  natsUrl: string,
  auth?: { jwksFile: string; issuer: string; audience: string },
  nkeySeed?: Uint8Array,
): Record<string, string> {
  const keys = country.keys.get(id);
  if (keys === undefined) throw new Error(`no keys for ${id}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const stem = join(dir, id.replaceAll(":", "-"));
  writeFileSync(`${stem}.sig.jwk.json`, JSON.stringify(keys.signing.privateJwk), { mode: 0o600 });
  writeFileSync(`${stem}.enc.jwk.json`, JSON.stringify(keys.encryption.privateJwk), {
    mode: 0o600,
  });
  writeFileSync(join(dir, "anchor.pub.jwk.json"), JSON.stringify(country.anchorPublicJwk));
  if (nkeySeed !== undefined) writeFileSync(`${stem}.nk`, nkeySeed, { mode: 0o600 });
  // Each organisation keeps its own state directory beside its keys.
  return {
    STAFETT_ORG: id,
    NATS_URL: natsUrl,
    STAFETT_SIGNING_KEY: `${stem}.sig.jwk.json`,
    STAFETT_ENCRYPTION_KEY: `${stem}.enc.jwk.json`,
    STAFETT_TRUST_ANCHORS: join(dir, "anchor.pub.jwk.json"),
    STAFETT_STATE_DIR: join(dir, `${id.replaceAll(":", "-")}-state`),
    STAFETT_HTTP_PORT: "0",
    STAFETT_METRICS_PORT: "0",
    // No regional reports, as in LocalCountry: tests count what reaches the coordinator.
    ...(parseOrgId(id).role === "hub" ? { STAFETT_REPORT_EVERY: "0s" } : {}),
    ...(nkeySeed === undefined ? {} : { NATS_NKEY_FILE: `${stem}.nk` }),
    ...(auth === undefined
      ? { STAFETT_AUTH_DEV: "1" }
      : {
          STAFETT_AUTH_JWKS: auth.jwksFile,
          STAFETT_AUTH_ISSUER: auth.issuer,
          STAFETT_AUTH_AUDIENCE: auth.audience,
        }),
  };
}

export interface ServiceProcess {
  child: ChildProcess;
  /** Resolves when the service logged that it is ready. */
  ready: Promise<void>;
  /** The HTTP address it logged when ready. */
  url(): string;
  /** The /metrics address it logged when ready ("" when it serves none). */
  metricsUrl(): string;
  /** SIGKILL, like a crash; resolves when the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM; resolves when the process has drained and exited. */
  stop(): Promise<void>;
}

/**
 * The Node flags a service runs with (README, "Run a service"). A 512 MB ceiling on the old
 * generation is three times the 150 MB a service is meant to stay under, and it is what keeps
 * it there: V8 scales how far it lets the heap grow between full collections with that ceiling
 * (1.4 times the live heap at 512 MB, against 4 times with the default of several GB; see
 * `MaxGrowingFactor` in V8's heap-controller.cc). In the bench it cut the busiest services' peak
 * RSS by about a third, for more frequent full collections: about 6 % more CPU in the hub's
 * catch-up and a longer p99 at 300/s (bench/results.md, third round, item 8).
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ["--max-old-space-size=512"];

/**
 * Starts `service`'s entry point with `SERVICE_NODE_FLAGS`: by default its TypeScript sources
 * through tsx (what the tests change is what runs), or with `fromDist` the compiled
 * `dist/main.js` as production runs it (`npm run build` first): no loader thread, no
 * transpiling at start-up; `packageDir` runs that of a copy of the package elsewhere. `nodeArgs`
 * go to node after those flags (a V8 flag given twice takes the later value), before the entry
 * point. `cwd` is the process's working directory (default: this one's).
 */
export function spawnService(
  service: "hub" | "gateway" | "coordinator" | "liaison",
  env: Record<string, string>,
  options: {
    fromDist?: boolean;
    packageDir?: string;
    nodeArgs?: readonly string[];
    cwd?: string;
  } = {},
): ServiceProcess {
  const args = [
    ...SERVICE_NODE_FLAGS,
    ...(options.nodeArgs ?? []),
    ...(options.fromDist === true
      ? [join(options.packageDir ?? join(root, `services/${service}`), "dist/main.js")]
      : [
          "--conditions=source",
          "--import",
          join(root, "node_modules/tsx/dist/esm/index.mjs"),
          join(root, `services/${service}/src/main.ts`),
        ]),
  ];
  const child = spawn(process.execPath, args, {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let url = "";
  let metricsUrl = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let started = false;
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      // Once ready, the output is only drained: a service logs a line per HTTP request, and
      // keeping (and splitting) all of it would grow without bound in a long run.
      if (started) return;
      output += chunk.toString();
      const line = output.split("\n").find((l) => l.includes(`"${service} ready"`));
      if (line !== undefined) {
        const fields = JSON.parse(line) as { url?: string; metricsUrl?: string };
        url = fields.url ?? "";
        metricsUrl = fields.metricsUrl ?? "";
        started = true;
        output = "";
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exited.then(() =>
      reject(new Error(`${service} exited before it was ready: ${output.slice(-2_000)}`)),
    );
  });
  ready.catch(() => undefined);
  const signal = async (s: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(s);
    await exited;
  };
  return {
    child,
    ready,
    url: () => url,
    metricsUrl: () => metricsUrl,
    kill: () => signal("SIGKILL"),
    stop: () => signal("SIGTERM"),
  };
}
