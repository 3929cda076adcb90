import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { afterAll, describe, expect, it } from "vitest";
import {
  findNatsServer,
  mergeConfig,
  NatsServerNotFoundError,
  NatsServerStartError,
  startCluster,
  startServer,
  stopAll,
} from "./nats-server.js";
import { waitFor, WaitTimeoutError } from "./wait.js";

afterAll(stopAll);

/** True while `pid` is a live process (a zombie awaiting its reaper counts as gone). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

describe("findNatsServer", () => {
  it("finds a binary on this machine", () => {
    expect(existsSync(findNatsServer())).toBe(true);
  });

  it("rejects a NATS_SERVER_BIN that does not exist, saying how to install one", () => {
    const err = catchError(() => findNatsServer({ NATS_SERVER_BIN: "/nonexistent/nats-server" }));
    expect(err).toBeInstanceOf(NatsServerNotFoundError);
    expect((err as NatsServerNotFoundError).code).toBe("ERR_NATS_SERVER_NOT_FOUND");
    expect((err as Error).message).toContain("apt-get install -y nats-server");
  });
});

describe("mergeConfig", () => {
  it("merges objects deeply and lets arrays and scalars replace", () => {
    const merged = mergeConfig(
      { port: -1, jetstream: { store_dir: "/a", domain: "se" }, tags: ["x"] },
      { jetstream: { domain: "no" }, tags: ["y"], debug: true },
    );
    expect(merged).toEqual({
      port: -1,
      jetstream: { store_dir: "/a", domain: "no" },
      tags: ["y"],
      debug: true,
    });
  });
});

describe("waitFor", () => {
  it("resolves once the condition holds", async () => {
    let calls = 0;
    await waitFor(() => ++calls >= 3, { timeoutMs: 1_000, intervalMs: 1 });
    expect(calls).toBe(3);
  });

  it("throws a WaitTimeoutError naming what it waited for, with the last error as cause", async () => {
    const boom = new Error("not listening");
    const err = await waitFor(
      () => {
        throw boom;
      },
      { timeoutMs: 60, intervalMs: 10, message: "the moon" },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as Error).message).toMatch(/waiting for the moon; last error: not listening/);
    expect((err as Error).cause).toBe(boom);
  });
});

describe("startServer", () => {
  it("runs JetStream: stream, idempotent publish, durable pull consumer, ack", async () => {
    const srv = await startServer({ name: "single" });
    expect(srv.url).toBe(`nats://127.0.0.1:${srv.port}`);
    expect(isAlive(srv.pid)).toBe(true);
    expect((await srv.varz()).server_name).toBe("single");
    expect((await srv.jsz()).config?.store_dir).toContain(srv.dir);

    const nc = await connect({ servers: srv.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "LAUNCH", subjects: ["launch.>"], storage: StorageType.File });
      const js = jetstream(nc);
      const ack = await js.publish("launch.opened", "hello", { msgID: "evt-1" });
      expect(ack).toMatchObject({ stream: "LAUNCH", seq: 1, duplicate: false });
      const again = await js.publish("launch.opened", "hello", { msgID: "evt-1" });
      expect(again).toMatchObject({ seq: 1, duplicate: true });

      await jsm.consumers.add("LAUNCH", { durable_name: "reader", ack_policy: AckPolicy.Explicit });
      const consumer = await js.consumers.get("LAUNCH", "reader");
      const msg = await consumer.next({ expires: 2_000 });
      expect(msg?.string()).toBe("hello");
      expect(msg?.headers?.get("Nats-Msg-Id")).toBe("evt-1");
      expect(await msg?.ackAck()).toBe(true);
      expect((await consumer.info()).num_ack_pending).toBe(0);
    } finally {
      await nc.close();
    }

    const { pid, dir } = srv;
    await srv.stop();
    expect(srv.running).toBe(false);
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });

  it("kill() keeps the file store; restart() reuses port and store, and clients reconnect", async () => {
    const srv = await startServer({ config: { leafnodes: { listen: "127.0.0.1:-1" } } });
    const { port, dir } = srv;
    const leafPort = await srv.leafPort();
    expect(leafPort).not.toBe(port);

    const nc = await connect({ servers: srv.url, reconnectTimeWait: 50, maxReconnectAttempts: -1 });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({
        name: "DURABLE",
        subjects: ["durable.>"],
        storage: StorageType.File,
      });
      await jetstream(nc).publish("durable.x", "kept", { msgID: "evt-kept" });

      const oldPid = srv.pid;
      await srv.kill();
      expect(isAlive(oldPid)).toBe(false);
      expect(existsSync(dir)).toBe(true);

      await srv.restart();
      expect(srv.pid).not.toBe(oldPid);
      expect(srv.port).toBe(port);
      expect(srv.dir).toBe(dir);
      expect(await srv.leafPort()).toBe(leafPort);

      // The same connection comes back to the same port.
      await waitFor(async () => (await srv.varz()).connections === 1, {
        timeoutMs: 5_000,
        message: "the client to reconnect",
      });
      const info = await jsm.streams.info("DURABLE");
      expect(info.state.messages).toBe(1);
      expect((await jsm.streams.getMessage("DURABLE", { seq: 1 }))?.string()).toBe("kept");
      // The dedupe window survived the crash as well.
      const dup = await jetstream(nc).publish("durable.x", "kept", { msgID: "evt-kept" });
      expect(dup.duplicate).toBe(true);
    } finally {
      await nc.close();
    }
    await srv.stop();
    expect(existsSync(dir)).toBe(false);
  });

  it("fails fast with the server's stderr when the config is bad, and cleans up", async () => {
    const err = await startServer({ config: { jetstream: { max_file_store: "lots" } } }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NatsServerStartError);
    const message = (err as Error).message;
    expect(message).toMatch(/nats-server stderr/);
    const configFile = /config (\S+nats-server\.json)/.exec(message)?.[1];
    expect(configFile).toBeDefined();
    expect(existsSync(configFile ?? "/")).toBe(false);
  });

  it("leaves no nats-server behind when the test process is SIGKILLed", async () => {
    const launcher = fileURLToPath(
      new URL("../../services/devkit/src/nats-server.ts", import.meta.url),
    );
    const code = [
      `const { startServer } = await import(${JSON.stringify(launcher)});`,
      `const s = await startServer({ jetstream: false });`,
      `process.stdout.write(JSON.stringify({ pid: s.pid, dir: s.dir }) + "\\n");`,
      `setInterval(() => {}, 1000);`,
    ].join("\n");
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes("\n")) resolve(out.trim());
      });
      child.once("exit", (code) => reject(new Error(`child exited early (${code})`)));
    });
    const { pid, dir } = JSON.parse(line) as { pid: number; dir: string };
    expect(isAlive(pid)).toBe(true);

    child.kill("SIGKILL");
    await waitFor(() => !isAlive(pid) && !existsSync(dir), {
      timeoutMs: 5_000,
      message: `orphaned nats-server ${pid} to be killed and ${dir} removed`,
    });
  });
});

describe("startCluster", () => {
  it("forms a 3-node JetStream cluster that stores an R3 stream", async () => {
    const cluster = await startCluster(3);
    const dirs = cluster.servers.map((s) => s.dir);
    try {
      const leader = await cluster.metaLeader();
      expect(cluster.servers).toContain(leader);

      const nc = await connect({ servers: cluster.urls });
      try {
        const jsm = await jetstreamManager(nc);
        const si = await jsm.streams.add({
          name: "REPLICATED",
          subjects: ["replicated.>"],
          num_replicas: 3,
          storage: StorageType.File,
        });
        expect(si.cluster?.replicas).toHaveLength(2);
        const ack = await jetstream(nc).publish("replicated.x", "r3", { msgID: "evt-r3" });
        expect(ack).toMatchObject({ stream: "REPLICATED", seq: 1 });
        const streamLeader = await cluster.streamLeader("REPLICATED");
        expect(streamLeader?.name).toBe(si.cluster?.leader);
      } finally {
        await nc.close();
      }
    } finally {
      await cluster.stop();
    }
    expect(cluster.servers.every((s) => !s.running)).toBe(true);
    expect(dirs.some((d) => existsSync(d))).toBe(false);
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}
