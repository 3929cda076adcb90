/**
 * The network namespaces of `services/devkit/src/netns.ts`: a node's broker is reachable from
 * the test's namespace over its uplink and from its peer only over their link; a cut stops the
 * link (both ways, or one) and a heal restores it, the uplinks untouched; `remove` deletes
 * everything, and a crashed run's namespaces (their owner dead) go when the next run starts.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { createNetwork, netnsUnavailable, startServer, type Network } from "@stafett/devkit";

const unavailable = netnsUnavailable();
if (unavailable !== undefined) {
  if (process.env.CI === "true") throw new Error(`${unavailable}; CI must run this test`);
  process.stderr.write(`\n!!! SKIPPING the network namespace tests: ${unavailable}\n\n`);
}

const made: Network[] = [];
afterAll(() => {
  for (const net of made) net.remove();
});

const namespaces = (): string[] =>
  execFileSync("ip", ["netns", "list"], { encoding: "utf8" })
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n !== "");

/** Whether a TCP connection from inside `netns` to `host:port` opens within a second. */
function reaches(netns: string, host: string, port: number): boolean {
  const probe = `exec 3<>/dev/tcp/${host}/${port}`;
  return (
    spawnSync("ip", ["netns", "exec", netns, "timeout", "1", "bash", "-c", probe], {
      stdio: "ignore",
    }).status === 0
  );
}

describe.skipIf(unavailable !== undefined)("network namespaces for partition tests", () => {
  it("reaches a node over its uplink and its peer only over the link; cuts and heals the link", async () => {
    const net = createNetwork({ nodes: ["a", "b"], links: [["a", "b"]] });
    made.push(net);
    const link = net.link("a", "b");
    const [a, b] = [net.node("a"), net.node("b")];
    expect(a.address).toMatch(/^10\.231\./);
    expect(link.addressOf("a")).toMatch(/^10\.231\./);
    // A broker in a, its clients' port on the uplink, a leafnode listener on the link.
    const server = await startServer({
      netns: a.netns,
      host: a.address,
      config: { leafnodes: { host: link.addressOf("a"), port: -1 } },
    });
    try {
      const nc = await connect({ servers: server.url });
      await nc.flush();
      const leaf = await server.leafPort();
      expect(reaches(b.netns, link.addressOf("a"), leaf)).toBe(true);
      // b has no route to a's uplink: the link is the only way between them.
      expect(reaches(b.netns, a.address, server.port)).toBe(false);

      link.cut();
      expect(reaches(b.netns, link.addressOf("a"), leaf)).toBe(false);
      // The uplink is not cut: the client here still talks to the broker.
      await nc.flush();
      link.heal();
      expect(reaches(b.netns, link.addressOf("a"), leaf)).toBe(true);

      // One way: b's SYN arrives, a's answer is dropped.
      link.cut({ from: "a" });
      expect(reaches(b.netns, link.addressOf("a"), leaf)).toBe(false);
      link.heal();
      expect(reaches(b.netns, link.addressOf("a"), leaf)).toBe(true);
      await nc.close();
    } finally {
      await server.stop();
    }
    net.remove();
    expect(namespaces().filter((n) => n === a.netns || n === b.netns)).toEqual([]);
  });

  it("deletes a crashed run's namespaces (owner dead) and leaves a live owner's alone", () => {
    const dead = spawnSync("true").pid;
    expect(dead).toBeGreaterThan(0);
    const stale = `stafett-${dead}-1-x`;
    // This process is alive: a namespace it owns by name is kept.
    const mine = `stafett-${process.ppid}-2-x`;
    execFileSync("ip", ["netns", "add", stale]);
    execFileSync("ip", ["netns", "add", mine]);
    try {
      const net = createNetwork({ nodes: ["n"] });
      made.push(net);
      expect(namespaces()).not.toContain(stale);
      expect(namespaces()).toContain(mine);
      net.remove();
    } finally {
      for (const n of [stale, mine]) spawnSync("ip", ["netns", "del", n], { stdio: "ignore" });
    }
  });
});
