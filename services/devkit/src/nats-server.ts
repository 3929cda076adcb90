/**
 * Real nats-server processes for tests, in the manner of nats.js's `nst/src/launcher.ts`: a
 * JSON config with `port: -1` in a fresh temp dir, a ports file to learn the ports the server
 * picked, a temp JetStream `store_dir`, conditions polled with a deadline, and everything
 * killed and removed afterwards.
 *
 * Every server started here is tracked: `stopAll()` stops them (call it in `afterAll`), and
 * they are SIGKILLed when the test process exits. A small `sh` watchdog per server kills it
 * even when the test process itself is SIGKILLed, so no nats-server outlives a crashed test.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants, existsSync, rmSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, Socket, type Server } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { waitForValue } from "./wait.js";

/** A nats-server configuration, written as JSON (nats-server reads JSON config files). */
export type ServerConfig = Record<string, unknown>;

export interface StartServerOptions {
  /** Deep-merged over the defaults: objects merge key by key, arrays and scalars replace. */
  config?: ServerConfig;
  /** JetStream on (default) or off, optionally with a domain. */
  jetstream?: boolean | { domain?: string };
  /** `server_name`; required for clustering, handy in logs. */
  name?: string;
  /** Echo the server's log to this process's stderr. */
  debug?: boolean;
  /**
   * Where the client and monitoring ports listen, and where this process reaches them; default
   * 127.0.0.1. A server in a network namespace listens on its address there (`netns.ts`).
   */
  host?: string;
  /** Run the server in this network namespace (`ip netns exec`; needs root). */
  netns?: string;
}

/** The parts of `/varz` tests use; the rest is there, untyped. */
export interface VarZ {
  server_id: string;
  server_name: string;
  version: string;
  port: number;
  connections: number;
  leaf?: { host?: string; port?: number };
  cluster?: {
    name?: string;
    addr?: string;
    cluster_port?: number;
    urls?: string[];
  };
  [key: string]: unknown;
}

export interface JszStreamDetail {
  name: string;
  cluster?: {
    name?: string;
    leader?: string;
    replicas?: { name: string; current: boolean }[];
  };
  state?: {
    messages: number;
    bytes: number;
    first_seq: number;
    last_seq: number;
  };
}

/** The parts of `/jsz` tests use. */
export interface JSZ {
  server_id: string;
  config?: { store_dir: string; domain?: string };
  streams: number;
  consumers: number;
  messages: number;
  meta_cluster?: {
    name?: string;
    leader?: string;
    peer?: string;
    cluster_size?: number;
  };
  account_details?: {
    name: string;
    id: string;
    stream_detail?: JszStreamDetail[];
  }[];
  [key: string]: unknown;
}

export interface NatsServer {
  /** `server_name`, when one was configured. */
  readonly name: string | undefined;
  /** Client port; fixed for the server's lifetime, also across `restart()`. */
  readonly port: number;
  /** `nats://<host>:<port>` (host 127.0.0.1 unless started with another) */
  readonly url: string;
  /** `http://<host>:<monitoring port>` */
  readonly monitorUrl: string;
  /** Process id of the current run; -1 when not running (or in a container). */
  readonly pid: number;
  /** The temp dir holding the config, the ports file and the JetStream store (`<dir>/js`). */
  readonly dir: string;
  readonly configFile: string;
  /** The config as last written to `configFile`. */
  readonly config: ServerConfig;
  readonly running: boolean;
  /** Options to pass to `connect()`; carries credentials only in the container fallback. */
  connectOptions(): { servers: string; user?: string; pass?: string };
  /** GET a monitoring endpoint (`/leafz`, `/connz?subs=true`, ...) and parse its JSON. */
  monitor<T>(path: string): Promise<T>;
  varz(): Promise<VarZ>;
  /** `/jsz`; pass e.g. `accounts=true&streams=true` for per-stream details. */
  jsz(query?: string): Promise<JSZ>;
  /** The leafnode listen port (from `/varz`; it is not in the ports file). */
  leafPort(): Promise<number>;
  /** The last lines the server wrote to stderr (its log). */
  stderrTail(lines?: number): string;
  /** SIGTERM, SIGKILL after `timeoutMs` (default 5 000), wait for exit, remove `dir`. */
  stop(opts?: { keepDir?: boolean; timeoutMs?: number }): Promise<void>;
  /** SIGKILL, as in a crash; keeps `dir` (and so the JetStream store) for `restart()`. */
  kill(): Promise<void>;
  /**
   * Starts the server again (stopping it first if it runs) with the same config, store dir
   * and ports, so connected clients reconnect to it. Resolves to the same object.
   */
  restart(): Promise<NatsServer>;
  /**
   * Rewrites the config with `patch`'s top-level keys replaced (ports stay) and has the running
   * process reload it (SIGHUP, as `nats-server --signal reload`); resolves once it has.
   */
  reload(patch: ServerConfig): Promise<void>;
}

export interface StartClusterOptions extends Omit<StartServerOptions, "name"> {
  /** `cluster.name`, and the prefix of each `server_name` (`<clusterName>-n1`, ...). */
  clusterName?: string;
  /** How long to wait for the nodes to agree on a meta leader; default 15 000 ms. */
  readyTimeoutMs?: number;
}

export interface NatsCluster {
  readonly servers: NatsServer[];
  readonly urls: string[];
  /** The meta leader all running nodes agree on, or undefined while they do not. */
  metaLeader(): Promise<NatsServer | undefined>;
  /** Waits (deadline) until the running nodes agree on a meta leader. */
  waitForMetaLeader(timeoutMs?: number): Promise<NatsServer>;
  /** The node that leads `stream` according to the running nodes' `/jsz`, if any. */
  streamLeader(stream: string, account?: string): Promise<NatsServer | undefined>;
  /** The node with this `server_name`. */
  server(name: string): NatsServer;
  stop(): Promise<void>;
}

/** Thrown by {@link findNatsServer} when there is no binary to run. */
export class NatsServerNotFoundError extends Error {
  override readonly name = "NatsServerNotFoundError";
  readonly code = "ERR_NATS_SERVER_NOT_FOUND";
}

/** Thrown when a server does not come up; the message ends with the server's stderr tail. */
export class NatsServerStartError extends Error {
  override readonly name = "NatsServerStartError";
  readonly code = "ERR_NATS_SERVER_START";
}

const FALLBACK_BIN = "/usr/sbin/nats-server";
const INSTALL_HINT =
  "nats-server not found (looked at $NATS_SERVER_BIN, nats-server on PATH, /usr/sbin/nats-server). " +
  "Install it: `apt-get install -y nats-server` on Debian/Ubuntu, or download a release from " +
  "https://github.com/nats-io/nats-server/releases and put it on PATH or set NATS_SERVER_BIN.";

const START_TIMEOUT_MS = 10_000;
const POLL_MS = 25;
const STDERR_TAIL_BYTES = 64 * 1024;

/**
 * The nats-server binary to run: `$NATS_SERVER_BIN`, else `nats-server` on PATH, else
 * /usr/sbin/nats-server (where Debian's package puts it, often not on a user's PATH).
 */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env["NATS_SERVER_BIN"];
  if (explicit) {
    if (!isExecutable(explicit)) {
      throw new NatsServerNotFoundError(
        `NATS_SERVER_BIN=${explicit} is not an executable file. ${INSTALL_HINT}`,
      );
    }
    return explicit;
  }
  for (const dir of (env["PATH"] ?? "").split(delimiter)) {
    const candidate = join(dir, "nats-server");
    if (dir && isExecutable(candidate)) {
      return candidate;
    }
  }
  if (isExecutable(FALLBACK_BIN)) {
    return FALLBACK_BIN;
  }
  throw new NatsServerNotFoundError(INSTALL_HINT);
}

/** Starts one nats-server (JetStream on unless `jetstream: false`) and waits until it is healthy. */
export async function startServer(opts: StartServerOptions = {}): Promise<NatsServer> {
  let bin: string;
  try {
    bin = findNatsServer();
  } catch (err) {
    if (err instanceof NatsServerNotFoundError && hasContainerEngine()) {
      return startContainerServer(opts, err);
    }
    throw err;
  }
  const dir = await mkdtemp(join(tmpdir(), "stafett-nats-"));
  const config = mergeConfig(defaultConfig(dir, opts), opts.config ?? {});
  const server = new ServerProcess(bin, dir, config, opts.debug ?? false, opts.netns);
  live.add(server);
  try {
    await server.launch();
  } catch (err) {
    live.delete(server);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return server;
}

/**
 * Starts a JetStream cluster of `size` nodes with explicit routes (cluster ports are picked
 * up front) and waits until every node reports the same meta leader in `/jsz`.
 */
export async function startCluster(size = 3, opts: StartClusterOptions = {}): Promise<NatsCluster> {
  findNatsServer(); // a cluster needs a local binary; fail with the install hint first
  const clusterName = opts.clusterName ?? "stafett";
  const clusterPorts = await freePorts(size);
  const routes = clusterPorts.map((p) => `nats-route://127.0.0.1:${p}`);
  const started = await Promise.allSettled(
    clusterPorts.map((clusterPort, i) =>
      startServer({
        ...opts,
        name: `${clusterName}-n${i + 1}`,
        config: mergeConfig(
          {
            cluster: {
              name: clusterName,
              listen: `127.0.0.1:${clusterPort}`,
              routes: routes.filter((_, j) => j !== i),
            },
          },
          opts.config ?? {},
        ),
      }),
    ),
  );
  const servers = started.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  const cluster = new Cluster(servers);
  try {
    await cluster.waitForMetaLeader(opts.readyTimeoutMs ?? 15_000);
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}

/** Stops every server this process started that is not stopped yet and removes its dir. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((s) => s.stop()));
}

/**
 * Deep merge for server configs: plain objects merge key by key, anything else in `override`
 * (arrays, scalars, null) replaces; `undefined` leaves the base value.
 */
export function mergeConfig(base: ServerConfig, override: ServerConfig): ServerConfig {
  const out: ServerConfig = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = out[key];
    if (value === undefined) {
      continue;
    }
    out[key] = isPlainObject(current) && isPlainObject(value) ? mergeConfig(current, value) : value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/** Servers not yet stopped-and-removed; killed ones stay, their dirs still need removing. */
const live = new Set<{
  stop(): Promise<void>;
  killNow(): void;
}>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) {
    return;
  }
  exitHookInstalled = true;
  // 'exit' allows only synchronous work: SIGKILL and rmSync.
  process.on("exit", () => {
    for (const server of live) {
      server.killNow();
    }
  });
}

function defaultConfig(dir: string, opts: StartServerOptions): ServerConfig {
  const host = opts.host ?? "127.0.0.1";
  const config: ServerConfig = {
    host,
    port: -1,
    http: `${host}:-1`,
    ports_file_dir: dir,
  };
  if (opts.name) {
    config["server_name"] = opts.name;
  }
  const js = opts.jetstream ?? true;
  if (js !== false) {
    config["jetstream"] = {
      store_dir: join(dir, "js"),
      ...(typeof js === "object" && js.domain !== undefined ? { domain: js.domain } : {}),
    };
  }
  return config;
}

interface Ports {
  client: number;
  monitor: number;
  cluster: number | undefined;
}

class ServerProcess implements NatsServer {
  readonly configFile: string;
  #config: ServerConfig;
  #child: ChildProcess | undefined;
  #watchdog: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stderr = "";
  /** How many times the process has logged that it reloaded its configuration, or failed to. */
  #reloads = 0;
  #reloadFailures = 0;
  #ports: Ports = { client: 0, monitor: 0, cluster: undefined };
  #leafPort: number | undefined;
  #removed = false;

  constructor(
    private readonly bin: string,
    readonly dir: string,
    config: ServerConfig,
    private readonly debug: boolean,
    private readonly netns: string | undefined,
  ) {
    this.configFile = join(dir, "nats-server.json");
    this.#config = config;
  }

  get name(): string | undefined {
    const name = this.#config["server_name"];
    return typeof name === "string" ? name : undefined;
  }
  get config(): ServerConfig {
    return this.#config;
  }
  get port(): number {
    return this.#ports.client;
  }
  /** The address the client and monitoring ports listen on (`host` in the config). */
  get host(): string {
    const host = this.#config["host"];
    return typeof host === "string" && host !== "0.0.0.0" ? host : "127.0.0.1";
  }
  get url(): string {
    return `nats://${this.host}:${this.#ports.client}`;
  }
  get monitorUrl(): string {
    return `http://${this.host}:${this.#ports.monitor}`;
  }
  get pid(): number {
    return this.running ? (this.#child?.pid ?? -1) : -1;
  }
  get running(): boolean {
    const child = this.#child;
    // pid is undefined when the spawn itself failed (EACCES, ENOEXEC, ...)
    return child?.pid !== undefined && child.exitCode === null && child.signalCode === null;
  }

  connectOptions(): { servers: string } {
    return { servers: this.url };
  }

  async monitor<T>(path: string): Promise<T> {
    const res = await fetch(`${this.monitorUrl}${path}`, {
      signal: AbortSignal.timeout(2_000),
    });
    if (!res.ok) {
      throw new Error(`GET ${path} on ${this.label()}: HTTP ${res.status} ${await res.text()}`);
    }
    return (await res.json()) as T;
  }

  varz(): Promise<VarZ> {
    return this.monitor<VarZ>("/varz");
  }

  jsz(query?: string): Promise<JSZ> {
    return this.monitor<JSZ>(query ? `/jsz?${query}` : "/jsz");
  }

  async leafPort(): Promise<number> {
    const port = (await this.varz()).leaf?.port;
    if (!port || port < 0) {
      throw new Error(`${this.label()} has no leafnode listener (configure leafnodes.listen)`);
    }
    return port;
  }

  stderrTail(lines = 30): string {
    return this.#stderr.trimEnd().split("\n").slice(-lines).join("\n");
  }

  /** Writes the config and spawns the server; resolves once it answers on its monitor port. */
  async launch(): Promise<void> {
    installExitHook();
    await writeFile(this.configFile, `${JSON.stringify(this.#config, null, 2)}\n`, "utf8");
    this.#stderr = "";
    // `ip netns exec` execs the server in place (no fork): the child's pid is the server's.
    const [command, args] =
      this.netns === undefined
        ? [this.bin, ["-c", this.configFile]]
        : ["ip", ["netns", "exec", this.netns, this.bin, "-c", this.configFile]];
    const child = spawn(command, args, {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.#child = child;
    let spawnError: Error | undefined;
    this.#exited = new Promise<void>((resolve) => {
      child.once("error", (err) => {
        spawnError = err;
        resolve();
      });
      child.once("close", () => {
        this.disarmWatchdog();
        resolve();
      });
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => this.capture(chunk));
    // A forgotten server must not keep the test process alive; the exit hook kills it.
    child.unref();
    if (child.stderr instanceof Socket) {
      child.stderr.unref();
    }
    if (child.pid !== undefined) {
      this.armWatchdog(child.pid);
    }

    const deadline = Date.now() + START_TIMEOUT_MS;
    try {
      const portsFile = join(this.dir, `nats-server_${child.pid ?? "?"}.ports`);
      const ports = await waitForValue(
        async () => {
          if (!this.running) {
            return "exited" as const;
          }
          return parsePortsFile(await readFile(portsFile, "utf8"));
        },
        {
          timeoutMs: deadline - Date.now(),
          intervalMs: POLL_MS,
          message: `the ports file ${portsFile}`,
        },
      );
      if (ports === "exited") {
        throw new Error(spawnError ? spawnError.message : "nats-server exited during startup");
      }
      this.#ports = ports;
      // A clustered JetStream node reports 503 on /healthz until it has found a meta leader;
      // startCluster waits for that separately, so for such nodes the HTTP listener suffices.
      const probe = "cluster" in this.#config ? "/varz" : "/healthz";
      const healthy = await waitForValue(
        async () => {
          if (!this.running) {
            return "exited" as const;
          }
          const res = await fetch(`${this.monitorUrl}${probe}`, {
            signal: AbortSignal.timeout(1_000),
          });
          await res.body?.cancel();
          return res.ok ? ("ok" as const) : undefined;
        },
        {
          timeoutMs: Math.max(deadline - Date.now(), 1),
          intervalMs: POLL_MS,
          message: probe,
        },
      );
      if (healthy === "exited") {
        throw new Error("nats-server exited during startup");
      }
      if (hasLeafListener(this.#config)) {
        this.#leafPort = await this.leafPort();
      }
    } catch (err) {
      this.killNowProcess();
      await this.waitExit();
      const reason = err instanceof Error ? err.message : String(err);
      throw new NatsServerStartError(
        `nats-server did not start (${reason}); config ${this.configFile}\n` +
          `--- nats-server stderr (tail) ---\n${this.stderrTail(20)}`,
        { cause: err },
      );
    }
  }

  async stop(opts: { keepDir?: boolean; timeoutMs?: number } = {}): Promise<void> {
    await this.halt(opts.timeoutMs ?? 5_000);
    if (opts.keepDir) {
      live.delete(this); // the caller wants the dir: nobody removes it behind their back
      return;
    }
    if (!this.#removed) {
      await rm(this.dir, { recursive: true, force: true });
      this.#removed = true;
    }
    live.delete(this);
  }

  async kill(): Promise<void> {
    this.killNowProcess();
    await this.waitExit();
  }

  async restart(): Promise<NatsServer> {
    if (this.#removed) {
      throw new Error(`${this.label()} was stopped and its dir removed; it cannot restart`);
    }
    await this.halt(5_000);
    this.#config = pinPorts(this.#config, this.#ports, this.#leafPort);
    live.add(this);
    // Drop the previous run's ports file (a SIGKILLed server leaves it behind).
    const stale = this.#child?.pid;
    if (stale !== undefined) {
      await rm(join(this.dir, `nats-server_${stale}.ports`), { force: true });
    }
    await this.launch();
    return this;
  }

  async reload(patch: ServerConfig): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) throw new Error(`${this.label()} is not running`);
    // The ports as the running process was given them (-1 stays -1): a reload refuses changes.
    this.#config = { ...this.#config, ...patch };
    await writeFile(this.configFile, `${JSON.stringify(this.#config, null, 2)}\n`, "utf8");
    const before = { reloads: this.#reloads, failures: this.#reloadFailures };
    child.kill("SIGHUP");
    await waitForValue(
      () => {
        if (this.#reloadFailures > before.failures)
          throw new Error(`${this.label()} refused the new config:\n${this.stderrTail(3)}`);
        return this.#reloads > before.reloads ? true : undefined;
      },
      { timeoutMs: 5_000, intervalMs: POLL_MS, message: `${this.label()} to reload its config` },
    );
  }

  /** Synchronous SIGKILL and removal, for the process 'exit' hook. */
  killNow(): void {
    this.killNowProcess();
    if (!this.#removed) {
      rmSync(this.dir, { recursive: true, force: true });
      this.#removed = true;
    }
  }

  private async halt(timeoutMs: number): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) {
      return;
    }
    this.disarmWatchdog();
    child.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const stopped = await Promise.race([
      this.#exited.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    if (!stopped) {
      child.kill("SIGKILL");
    }
    await this.waitExit();
  }

  /** The child is unref'd (see launch); hold a ref while someone awaits its exit. */
  private async waitExit(): Promise<void> {
    const child = this.#child;
    child?.ref();
    try {
      await this.#exited;
    } finally {
      child?.unref();
    }
  }

  private killNowProcess(): void {
    this.disarmWatchdog();
    if (this.running) {
      this.#child?.kill("SIGKILL");
    }
  }

  /**
   * A shell that SIGKILLs the server and removes its dir once our end of its stdin closes,
   * which happens however this process ends, SIGKILL included. Disarmed (killed first) before
   * any deliberate stop or kill, so it never signals a recycled pid.
   */
  private armWatchdog(pid: number): void {
    const script = [
      "read _",
      'kill -9 "$1" 2>/dev/null',
      // A write in flight while the kill lands can make the first rm find a new file.
      'for _ in 1 2 3 4 5; do rm -rf "$2" 2>/dev/null && break; sleep 0.1; done',
    ].join("; ");
    const watchdog = spawn("/bin/sh", ["-c", script, "sh", `${pid}`, this.dir], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    watchdog.on("error", () => undefined); // no /bin/sh: the exit hook still covers most cases
    watchdog.unref();
    if (watchdog.stdin instanceof Socket) {
      watchdog.stdin.unref();
    }
    this.#watchdog = watchdog;
  }

  private disarmWatchdog(): void {
    const watchdog = this.#watchdog;
    this.#watchdog = undefined;
    if (watchdog && watchdog.exitCode === null && watchdog.signalCode === null) {
      watchdog.kill("SIGKILL");
    }
  }

  private capture(chunk: string): void {
    this.#reloads += chunk.split("Reloaded server configuration").length - 1;
    this.#reloadFailures += chunk.split("Failed to reload server configuration").length - 1;
    this.#stderr += chunk;
    if (this.#stderr.length > STDERR_TAIL_BYTES) {
      this.#stderr = this.#stderr.slice(-STDERR_TAIL_BYTES);
    }
    if (this.debug) {
      const prefix = `[nats ${this.name ?? this.#child?.pid ?? ""}] `;
      process.stderr.write(
        chunk
          .split("\n")
          .filter((line) => line.length > 0)
          .map((line) => `${prefix}${line}\n`)
          .join(""),
      );
    }
  }

  private label(): string {
    return `nats-server ${this.name ?? ""}${this.#ports.client ? ` on port ${this.#ports.client}` : ""}`.trim();
  }
}

class Cluster implements NatsCluster {
  constructor(readonly servers: NatsServer[]) {}

  get urls(): string[] {
    return this.servers.map((s) => s.url);
  }

  server(name: string): NatsServer {
    const found = this.servers.find((s) => s.name === name);
    if (!found) {
      throw new Error(`no cluster node named ${name}`);
    }
    return found;
  }

  async metaLeader(): Promise<NatsServer | undefined> {
    const running = this.servers.filter((s) => s.running);
    const leaders = await Promise.all(
      running.map(async (s) => (await s.jsz()).meta_cluster?.leader),
    );
    const first = leaders[0];
    if (!first || leaders.some((l) => l !== first)) {
      return undefined;
    }
    return running.find((s) => s.name === first);
  }

  waitForMetaLeader(timeoutMs = 15_000): Promise<NatsServer> {
    return waitForValue(() => this.metaLeader(), {
      timeoutMs,
      intervalMs: 50,
      message: `the nodes of ${this.servers.map((s) => s.name).join(", ")} to agree on a meta leader`,
    });
  }

  async streamLeader(stream: string, account?: string): Promise<NatsServer | undefined> {
    for (const s of this.servers.filter((n) => n.running)) {
      const jsz = await s.jsz("accounts=true&streams=true");
      for (const acc of jsz.account_details ?? []) {
        if (account !== undefined && acc.name !== account) {
          continue;
        }
        const leader = acc.stream_detail?.find((d) => d.name === stream)?.cluster?.leader;
        const node = leader ? this.servers.find((n) => n.name === leader && n.running) : undefined;
        if (node) {
          return node;
        }
      }
    }
    return undefined;
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
  }
}

function parsePortsFile(text: string): Ports {
  const parsed: unknown = JSON.parse(text);
  if (!isPlainObject(parsed)) {
    throw new Error("ports file is not a JSON object");
  }
  const client = portOf(parsed["nats"]);
  const monitor = portOf(parsed["monitoring"]);
  if (client === undefined || monitor === undefined) {
    throw new Error(`ports file lacks nats or monitoring: ${text}`);
  }
  return { client, monitor, cluster: portOf(parsed["cluster"]) };
}

/** `["nats://127.0.0.1:4222", ...]` → 4222 */
function portOf(urls: unknown): number | undefined {
  if (!Array.isArray(urls) || typeof urls[0] !== "string") {
    return undefined;
  }
  const port = Number(new URL(urls[0]).port);
  return port > 0 ? port : undefined;
}

/** The same config with every `-1` port replaced by the port the server picked. */
function pinPorts(config: ServerConfig, ports: Ports, leafPort: number | undefined): ServerConfig {
  const host = typeof config["host"] === "string" ? config["host"] : "127.0.0.1";
  const pinned: ServerConfig = {
    ...config,
    port: ports.client,
    http: `${host}:${ports.monitor}`,
  };
  const cluster = config["cluster"];
  if (isPlainObject(cluster) && ports.cluster !== undefined) {
    pinned["cluster"] = { ...cluster, listen: `127.0.0.1:${ports.cluster}` };
  }
  const leafnodes = config["leafnodes"];
  if (isPlainObject(leafnodes) && leafPort !== undefined) {
    const { port: _port, host: leafHost, ...rest } = leafnodes;
    const listenHost = typeof leafHost === "string" ? leafHost : "127.0.0.1";
    pinned["leafnodes"] = { ...rest, listen: `${listenHost}:${leafPort}` };
  }
  return pinned;
}

function hasLeafListener(config: ServerConfig): boolean {
  const leafnodes = config["leafnodes"];
  return isPlainObject(leafnodes) && ("listen" in leafnodes || "port" in leafnodes);
}

/** Ports that were free a moment ago: all bound at once (so distinct), then released. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((resolve, reject) => {
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => resolve());
      });
      const address = srv.address();
      if (address === null || typeof address === "string") {
        throw new Error("could not read a bound port");
      }
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// --- container fallback --------------------------------------------------------------------

function hasContainerEngine(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env["DOCKER_HOST"]) || existsSync("/var/run/docker.sock");
}

/** The slice of `@testcontainers/nats` used here (the package is optional, not installed). */
interface NatsContainerModule {
  NatsContainer: new (image?: string) => {
    withArg(name: string, value: string): unknown;
    withCopyContentToContainer(files: { content: string; target: string }[]): unknown;
    withExposedPorts(...ports: number[]): unknown;
    start(): Promise<{
      getHost(): string;
      getMappedPort(port: number): number;
      stop(): Promise<unknown>;
      username?: string;
      password?: string;
    }>;
  };
}

const CONTAINER_IMAGE = "nats:2.9.10-alpine";
const CONTAINER_CONFIG = "/etc/stafett/nats-server.json";

/**
 * Fallback when there is no nats-server binary but a Docker-API engine: one server in a
 * container via @testcontainers/nats, with the same config. The module always passes
 * `--user test --pass test`, so use `connectOptions()`; configs with accounts, clusters,
 * `kill()` and `restart()` need a local nats-server.
 */
async function startContainerServer(
  opts: StartServerOptions,
  notFound: NatsServerNotFoundError,
): Promise<NatsServer> {
  let mod: NatsContainerModule;
  try {
    const specifier = "@testcontainers/nats";
    const loaded: unknown = await import(/* @vite-ignore */ specifier);
    if (!isPlainObject(loaded) || typeof loaded["NatsContainer"] !== "function") {
      throw new Error("@testcontainers/nats has no NatsContainer export");
    }
    mod = loaded as unknown as NatsContainerModule;
  } catch (err) {
    throw new NatsServerNotFoundError(
      `${notFound.message} (A container engine is present, but the fallback needs ` +
        "`npm install --no-save @testcontainers/nats`.)",
      { cause: err },
    );
  }
  const dir = await mkdtemp(join(tmpdir(), "stafett-nats-"));
  const config = mergeConfig(defaultConfig("/data", opts), opts.config ?? {});
  config["host"] = "0.0.0.0";
  config["port"] = 4222;
  config["http"] = "0.0.0.0:8222";
  delete config["ports_file_dir"];
  if (hasLeafListener(config)) {
    config["leafnodes"] = {
      ...(config["leafnodes"] as ServerConfig),
      listen: "0.0.0.0:7422",
    };
    delete (config["leafnodes"] as ServerConfig)["port"];
  }
  const configFile = join(dir, "nats-server.json");
  const content = JSON.stringify(config, null, 2);
  await writeFile(configFile, content, "utf8");
  const builder = new mod.NatsContainer(CONTAINER_IMAGE);
  builder.withArg("-c", CONTAINER_CONFIG);
  builder.withCopyContentToContainer([{ content, target: CONTAINER_CONFIG }]);
  builder.withExposedPorts(7422); // the module already exposes 4222, 6222 and 8222
  const container = await builder.start();
  const host = container.getHost();
  const url = `nats://${host}:${container.getMappedPort(4222)}`;
  const monitorUrl = `http://${host}:${container.getMappedPort(8222)}`;
  let running = true;
  const unsupported = (what: string) =>
    Promise.reject(new Error(`${what} needs a local nats-server. ${INSTALL_HINT}`));
  const monitor = async <T>(path: string): Promise<T> =>
    (await (await fetch(`${monitorUrl}${path}`)).json()) as T;
  const server: NatsServer = {
    name: opts.name,
    port: container.getMappedPort(4222),
    url,
    monitorUrl,
    pid: -1,
    dir,
    configFile,
    config,
    get running() {
      return running;
    },
    connectOptions: () => ({
      servers: url,
      ...(container.username ? { user: container.username } : {}),
      ...(container.password ? { pass: container.password } : {}),
    }),
    monitor,
    varz: () => monitor<VarZ>("/varz"),
    jsz: (query) => monitor<JSZ>(query ? `/jsz?${query}` : "/jsz"),
    leafPort: () => Promise.resolve(container.getMappedPort(7422)),
    stderrTail: () => "",
    stop: async () => {
      if (running) {
        running = false;
        await container.stop();
      }
      await rm(dir, { recursive: true, force: true });
      live.delete(handle);
    },
    kill: () => unsupported("kill()"),
    restart: () => unsupported("restart()"),
    reload: () => unsupported("reload()"),
  };
  const handle = {
    stop: () => server.stop(),
    killNow: () => rmSync(dir, { recursive: true, force: true }),
  };
  live.add(handle);
  return server;
}

/** One client connection as the broker sees it (`/connz?auth=true`). */
export interface BrokerConnection {
  /** The client's name (services name theirs `stafett-<organisation>`). */
  name: string;
  account: string;
  /** The nkey the client logged in with, or the user name. */
  nkey: string;
  /** "TLS 1.3", or "plaintext". */
  tls: string;
}

/** The client connections of a broker, with the account and credentials each logged in with. */
export async function brokerConnections(server: NatsServer): Promise<BrokerConnection[]> {
  const connz = await server.monitor<{
    connections?: {
      name?: string;
      account?: string;
      authorized_user?: string;
      nkey?: string;
      tls_version?: string;
    }[];
  }>("/connz?auth=true&limit=1024&sort=cid");
  return (connz.connections ?? []).map((c) => ({
    name: c.name ?? "",
    account: c.account ?? "",
    nkey: c.nkey ?? c.authorized_user ?? "",
    tls: c.tls_version === undefined ? "plaintext" : `TLS ${c.tls_version}`,
  }));
}
