/**
 * Network namespaces of a test's own, to partition a network for real (`ip netns`, veth pairs;
 * needs root and iproute2). Each node gets a namespace and an uplink: a veth pair to the test's
 * own namespace, so that processes here (in-process services) reach what runs in the node (a
 * broker). A link joins two nodes' namespaces directly with a veth pair of its own, so cutting
 * it cuts only what runs between those two, not their uplinks.
 *
 *    test's namespace                 node "se"                   node "no"
 *    10.231.B.1 ── uplink veth ── 10.231.B.2 ─┐            ┌─ 10.231.B.6 ── uplink ── 10.231.B.5
 *                                             └─ link veth ─┘
 *                                        10.231.B.9      10.231.B.10
 *
 * Addresses are taken from 10.231.0.0/16 only, a /26 per run (64 addresses: a /30 per uplink
 * and per link); a namespace has no route but to its own veths, so nothing leaves the host.
 *
 * Cutting a link is silent where the kernel allows it: packets are dropped, nobody is told, no
 * connection is reset, as in a real partition. `netem loss 100%` when the kernel has netem;
 * else the `blackhole` qdisc (drops every packet it is given and reports success to the stack,
 * so TCP only sees missing acks); else the link's veths set down, which the stack does notice.
 * A qdisc drops what its own end sends: both ends for a partition, one for a one-way cut.
 *
 * Names carry the owner's pid and the run's block: `stafett-<pid>-<block>-<node>`. Everything
 * is removed by `remove()`, by a process 'exit' hook, and by a small `sh` watchdog when this
 * process is SIGKILLed; a run also removes namespaces of this prefix whose owner is dead.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { Socket } from "node:net";

const PREFIX = "stafett";
const NAME = new RegExp(`^${PREFIX}-(\\d+)-(\\d+)-`);
/** 10.231.0.0/16 in /26 blocks. */
const BLOCKS = 1024;

export type CutMethod = "netem" | "blackhole" | "link-down";

export interface NetworkOptions {
  /** One namespace per node, each with an uplink to the test's own namespace. */
  nodes: readonly string[];
  /** Direct veth links between two nodes' namespaces. */
  links?: readonly (readonly [string, string])[];
}

export interface NetnsNode {
  /** The namespace's name (for `ip netns exec` and StartServerOptions `netns`). */
  readonly netns: string;
  /** The node's address on its uplink: what processes in the test's namespace connect to. */
  readonly address: string;
}

export interface NetnsLink {
  readonly between: readonly [string, string];
  /** How a cut drops packets here (probed once per network). */
  readonly method: CutMethod;
  readonly isCut: boolean;
  /** The node's address on this link: listen here for what must cross only this link. */
  addressOf(node: string): string;
  /**
   * Drops everything on the link, both ways; with `from`, only what that node sends (its peer's
   * answers still arrive, so the node hears nothing back). A one-way cut needs a qdisc.
   */
  cut(options?: { from?: string }): void;
  /** Lets traffic through again. */
  heal(): void;
}

export interface Network {
  node(name: string): NetnsNode;
  link(a: string, b: string): NetnsLink;
  /** Deletes the namespaces (and so every veth) and stops the watchdog. */
  remove(): void;
}

/** Why network namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== "linux") return "network namespaces are Linux's";
  if (process.getuid?.() !== 0) return "making network namespaces needs root";
  try {
    execFileSync("ip", ["netns", "list"], { stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    return `ip netns does not work here (install iproute2): ${(err as Error).message}`;
  }
  return undefined;
}

const live = new Set<NetworkImpl>();
let exitHookInstalled = false;

/** Creates the namespaces, uplinks and links; everything is removed again on failure. */
export function createNetwork(options: NetworkOptions): Network {
  removeStale();
  const links = options.links ?? [];
  for (const [a, b] of links)
    if (!options.nodes.includes(a) || !options.nodes.includes(b))
      throw new Error(`link ${a}-${b} joins a node that is not in the network`);
  if (options.nodes.length + links.length > 16) throw new Error("at most 16 uplinks and links");
  for (let attempt = 0; attempt < 20; attempt++) {
    const block = freeBlock();
    const net = new NetworkImpl(block, options.nodes, links);
    // Another run that picked the same block at the same moment has made its namespaces before
    // ours or will see ours: whichever sees the other's tries another block.
    try {
      net.claim();
    } catch (err) {
      net.remove();
      if (err instanceof BlockTaken) continue;
      throw err;
    }
    try {
      net.build();
    } catch (err) {
      net.remove();
      throw err;
    }
    return net;
  }
  throw new Error("no free address block for the network namespaces");
}

class BlockTaken extends Error {}

function ip(args: readonly string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function namespaces(): string[] {
  return ip(["netns", "list"])
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name !== "");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Deletes namespaces of this prefix whose owner process is dead (a crashed earlier run). */
function removeStale(): void {
  for (const name of namespaces()) {
    const pid = Number(NAME.exec(name)?.[1]);
    if (pid > 0 && pid !== process.pid && !alive(pid)) deleteNamespace(name);
  }
}

function deleteNamespace(name: string): void {
  try {
    ip(["netns", "del", name]);
  } catch {
    // already gone
  }
}

function freeBlock(): number {
  const taken = new Set(namespaces().map((name) => Number(NAME.exec(name)?.[2])));
  const free = Array.from({ length: BLOCKS }, (_, b) => b).filter((b) => !taken.has(b));
  const block = free[Math.floor(Math.random() * free.length)];
  if (block === undefined) throw new Error("every address block is in use");
  return block;
}

/** The address `host` (0..63) of block `block` in 10.231.0.0/16. */
function address(block: number, host: number): string {
  const offset = block * 64 + host;
  return `10.231.${Math.floor(offset / 256)}.${offset % 256}`;
}

/** The qdisc that drops everything its device sends, per silent method. */
const QDISC = {
  netem: ["netem", "loss", "100%"],
  blackhole: ["blackhole"],
} as const;

function tc(ns: string, args: readonly string[]): void {
  execFileSync("ip", ["netns", "exec", ns, "tc", ...args], { stdio: ["ignore", "ignore", "pipe"] });
}

/** The first silent method the kernel has, tried on the link's device itself. */
function probeCut(ns: string, dev: string): CutMethod {
  for (const method of ["netem", "blackhole"] as const) {
    try {
      tc(ns, ["qdisc", "add", "dev", dev, "root", ...QDISC[method]]);
      tc(ns, ["qdisc", "del", "dev", dev, "root"]);
      return method;
    } catch {
      // not in this kernel: try the next
    }
  }
  return "link-down";
}

class NetworkImpl implements Network {
  readonly #names: Map<string, string>;
  readonly #links: LinkImpl[] = [];
  #watchdog: ChildProcess | undefined;
  #removed = false;

  constructor(
    private readonly block: number,
    private readonly nodes: readonly string[],
    private readonly pairs: readonly (readonly [string, string])[],
  ) {
    this.#names = new Map(nodes.map((n) => [n, `${PREFIX}-${process.pid}-${block}-${n}`]));
  }

  claim(): void {
    live.add(this);
    installExitHook();
    this.armWatchdog();
    for (const name of this.#names.values()) {
      ip(["netns", "add", name]);
    }
    const rivals = namespaces().filter(
      (name) =>
        Number(NAME.exec(name)?.[2]) === this.block &&
        !name.startsWith(`${PREFIX}-${process.pid}-`),
    );
    if (rivals.length > 0) throw new BlockTaken();
  }

  build(): void {
    this.nodes.forEach((node, i) => {
      const ns = this.netnsOf(node);
      const outside = `st${this.block}u${i}`;
      ip(["link", "add", outside, "type", "veth", "peer", "name", "uplink", "netns", ns]);
      ip(["addr", "add", `${address(this.block, 4 * i + 1)}/30`, "dev", outside]);
      ip(["link", "set", outside, "up"]);
      ip(["-n", ns, "addr", "add", `${address(this.block, 4 * i + 2)}/30`, "dev", "uplink"]);
      ip(["-n", ns, "link", "set", "uplink", "up"]);
      ip(["-n", ns, "link", "set", "lo", "up"]);
    });
    let method: CutMethod | undefined;
    this.pairs.forEach(([a, b], k) => {
      const base = 4 * (this.nodes.length + k);
      const [nsA, nsB] = [this.netnsOf(a), this.netnsOf(b)];
      const dev = `link${k}`;
      // Made in the namespaces directly: no name is ever taken in the test's own namespace.
      ip(["link", "add", dev, "netns", nsA, "type", "veth", "peer", "name", dev, "netns", nsB]);
      const ends = [
        { node: a, ns: nsA, address: address(this.block, base + 1) },
        { node: b, ns: nsB, address: address(this.block, base + 2) },
      ] as const;
      for (const end of ends) {
        ip(["-n", end.ns, "addr", "add", `${end.address}/30`, "dev", dev]);
        ip(["-n", end.ns, "link", "set", dev, "up"]);
      }
      method ??= probeCut(nsA, dev);
      this.#links.push(new LinkImpl([a, b], dev, ends, method));
    });
  }

  private netnsOf(node: string): string {
    const name = this.#names.get(node);
    if (name === undefined) throw new Error(`no node ${node} in this network`);
    return name;
  }

  node(name: string): NetnsNode {
    const i = this.nodes.indexOf(name);
    return { netns: this.netnsOf(name), address: address(this.block, 4 * i + 2) };
  }

  link(a: string, b: string): NetnsLink {
    const found = this.#links.find(
      (l) =>
        (l.between[0] === a && l.between[1] === b) || (l.between[0] === b && l.between[1] === a),
    );
    if (found === undefined) throw new Error(`no link between ${a} and ${b}`);
    return found;
  }

  remove(): void {
    if (this.#removed) return;
    this.#removed = true;
    for (const name of this.#names.values()) deleteNamespace(name);
    const watchdog = this.#watchdog;
    if (watchdog && watchdog.exitCode === null && watchdog.signalCode === null)
      watchdog.kill("SIGKILL");
    live.delete(this);
  }

  /**
   * A shell that deletes the namespaces once our end of its stdin closes, which happens however
   * this process ends, SIGKILL included. (The brokers in them have watchdogs of their own.)
   */
  private armWatchdog(): void {
    const names = [...this.#names.values()];
    const script = 'read _; for ns in "$@"; do ip netns del "$ns" 2>/dev/null; done';
    const watchdog = spawn("/bin/sh", ["-c", script, "sh", ...names], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    watchdog.on("error", () => undefined); // no /bin/sh: the exit hook and removeStale remain
    watchdog.unref();
    if (watchdog.stdin instanceof Socket) watchdog.stdin.unref();
    this.#watchdog = watchdog;
  }
}

class LinkImpl implements NetnsLink {
  /** The namespaces whose end is cut now. */
  readonly #cut: string[] = [];

  constructor(
    readonly between: readonly [string, string],
    private readonly dev: string,
    private readonly ends: readonly { node: string; ns: string; address: string }[],
    readonly method: CutMethod,
  ) {}

  get isCut(): boolean {
    return this.#cut.length > 0;
  }

  addressOf(node: string): string {
    const end = this.ends.find((e) => e.node === node);
    if (end === undefined) throw new Error(`${node} is not on this link`);
    return end.address;
  }

  cut(options: { from?: string } = {}): void {
    if (this.#cut.length > 0) throw new Error("the link is cut already");
    const from = options.from;
    if (from !== undefined) this.addressOf(from); // is on this link
    if (from !== undefined && this.method === "link-down")
      throw new Error("a one-way cut needs netem or the blackhole qdisc; this kernel has neither");
    // A qdisc drops what its device sends: cutting one direction is cutting one end.
    const ends = this.ends.filter((e) => from === undefined || e.node === from);
    for (const { ns } of ends) {
      this.apply(ns, true);
      this.#cut.push(ns);
    }
  }

  heal(): void {
    for (const ns of this.#cut.splice(0)) this.apply(ns, false);
  }

  private apply(ns: string, cut: boolean): void {
    const dev = this.dev;
    if (this.method === "link-down") ip(["-n", ns, "link", "set", dev, cut ? "down" : "up"]);
    else if (cut) tc(ns, ["qdisc", "add", "dev", dev, "root", ...QDISC[this.method]]);
    else tc(ns, ["qdisc", "del", "dev", dev, "root"]);
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' allows only synchronous work, which is all `remove` does.
  process.on("exit", () => {
    for (const net of live) net.remove();
  });
}
