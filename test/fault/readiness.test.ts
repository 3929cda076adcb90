/**
 * Readiness under faults: every service of a country answers /readyz 200 while it can work, and
 * 503 naming the failing check and its reason when it cannot: the broker gone (all of them), its
 * consumer deleted, its journal's disk full. Each comes back by itself once the cause is gone.
 */
import type * as NodeFs from "node:fs";
import { readlinkSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { createRequire, syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, samplePersonal, waitFor, waitForValue } from "@stafett/devkit";
import { Bus, createLogger, provisionCountry, streamName } from "@stafett/shared";

const log = createLogger({ service: "readiness", level: process.env.LOG_LEVEL ?? "silent" });
let se: LocalCountry;

interface ReadyBody {
  ready: boolean;
  code?: string;
  failing?: string[];
  checks: Record<string, { ok: boolean; code?: string; reason?: string; message?: string }>;
}

async function readyz(url: string): Promise<{ status: number; body: ReadyBody }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as ReadyBody };
}

/** Every running service's API address, by organisation. */
function services(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, g] of se.gateways) out.set(id, g.url);
  for (const [id, h] of se.hubs) out.set(id, h.url);
  if (se.coordinator !== undefined) out.set("se:coordinator", se.coordinator.url);
  if (se.liaison !== undefined) out.set("se:liaison", se.liaison.url);
  return out;
}

beforeAll(async () => {
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log });
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

describe("readiness", () => {
  it("every service is ready, with each of its checks named and passing", async () => {
    const all = services();
    expect([...all.keys()].sort()).toEqual([
      "se:coordinator",
      "se:hub:stockholm",
      "se:hub:vast",
      "se:liaison",
      "se:municipality:0180",
      "se:municipality:1480",
    ]);
    for (const [id, url] of all) {
      const { status, body } = await readyz(url);
      expect({ id, status, ready: body.ready }).toEqual({ id, status: 200, ready: true });
      expect(Object.keys(body.checks).sort()).toEqual([
        "bus",
        "clock",
        "consumer",
        "journal",
        "keys",
        "nats",
        "trust",
      ]);
    }
  });

  it(
    "the broker stopped: every service answers 503 naming nats, and 200 again once it is back",
    { timeout: 60_000 },
    async () => {
      await se.server?.kill();
      for (const [id, url] of services()) {
        const body = await waitForValue(
          async () => {
            const r = await readyz(url);
            return r.status === 503 ? r.body : undefined;
          },
          { timeoutMs: 10_000, message: `${id} to report not ready` },
        );
        expect(body.ready).toBe(false);
        expect(body.code).toBe("ERR_UNAVAILABLE");
        expect(body.failing).toContain("nats");
        expect(body.checks.nats).toMatchObject({
          ok: false,
          code: "ERR_UNAVAILABLE",
          reason: "disconnected",
        });
        // The liveness probe still answers: the process is fine, its broker is not.
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
      }
      await se.server?.restart();
      for (const [id, url] of services())
        await waitFor(async () => (await readyz(url)).status === 200, {
          timeoutMs: 30_000,
          intervalMs: 200,
          message: `${id} to be ready again after the broker returned`,
        });
    },
  );

  it(
    "a deleted consumer fails its service's consumer check, and provisioning again mends it",
    { timeout: 30_000 },
    async () => {
      const bus = await Bus.connect(
        { servers: [se.natsUrl], name: "test-admin", connection: se.admin },
        log,
      );
      try {
        const jsm = await bus.manager();
        await jsm.consumers.delete(streamName("se"), "se-municipality-1480");
        const url = se.gateway("1480").url;
        const body = await waitForValue(
          async () => {
            const r = await readyz(url);
            return r.status === 503 ? r.body : undefined;
          },
          { timeoutMs: 10_000, message: "1480 to notice its consumer is gone" },
        );
        expect(body.failing).toEqual(["consumer"]);
        expect(body.checks.consumer).toMatchObject({
          code: "ERR_NOT_FOUND",
          reason: "consumer_missing",
        });
        // The other services are not affected.
        expect((await readyz(se.gateway("0180").url)).status).toBe(200);
        // What an operator does: `stafett provision` again (idempotent).
        await provisionCountry(bus.nc, jsm, se.country.trustList, se.country.trustListJws);
        await waitFor(async () => (await readyz(url)).status === 200, {
          timeoutMs: 10_000,
          message: "1480 ready once its consumer is back",
        });
      } finally {
        await bus.close();
      }
    },
  );

  it(
    "a state directory on a full disk fails the journal check, and passes once it has room",
    { timeout: 30_000 },
    async () => {
      const running = se.gateway("0180");
      const probe = join(se.stateRoot, "se-municipality-0180", ".readyz-probe");
      // As root, file modes do not stop a write; a full device does (ENOSPC), as a full disk would.
      rmSync(probe, { force: true });
      symlinkSync("/dev/full", probe);
      try {
        const body = await waitForValue(
          async () => {
            const r = await readyz(running.url);
            return r.status === 503 ? r.body : undefined;
          },
          { timeoutMs: 10_000, message: "0180 to report its journal unwritable" },
        );
        expect(body.failing).toEqual(["journal"]);
        expect(body.checks.journal).toMatchObject({
          code: "ERR_JOURNAL_WRITE",
          reason: "not_writable",
        });
        expect(body.checks.journal?.message).toContain("ENOSPC");
      } finally {
        rmSync(probe, { force: true });
      }
      await waitFor(async () => (await readyz(running.url)).status === 200, {
        timeoutMs: 10_000,
        message: "0180 ready once the disk has room",
      });
    },
  );

  it(
    "a journal whose write fails (its disk full under the open file) fails readiness until the disk takes writes",
    { timeout: 30_000 },
    async () => {
      const id = "se:municipality:0180";
      const journal = realpathSync(join(se.stateRoot, "se-municipality-0180", "journal.jsonl"));
      // The fault: node:fs's write answers ENOSPC for the journal's file descriptor only, as the
      // kernel does when the disk is full (the journal writes with O_DSYNC, so this is the sync).
      const fs = createRequire(import.meta.url)("node:fs") as typeof NodeFs;
      const realWrite = fs.write;
      const faulty = ((fd: number, ...rest: unknown[]) => {
        let path = "";
        try {
          path = readlinkSync(`/proc/self/fd/${fd}`);
        } catch {
          // not a descriptor of ours
        }
        const callback = rest[rest.length - 1] as (err: NodeJS.ErrnoException | null) => void;
        if (path === journal) {
          const err: NodeJS.ErrnoException = new Error("ENOSPC: no space left on device");
          err.code = "ENOSPC";
          process.nextTick(() => callback(err));
          return;
        }
        return (realWrite as (...a: unknown[]) => void)(fd, ...rest);
      }) as typeof fs.write;
      fs.write = faulty;
      syncBuiltinESMExports();
      try {
        const token = await se.token(id);
        const res = await fetch(`${se.gateway("0180").url}/v1/referrals`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({
            urgency: "URGENCY_NORMAL",
            reason: "REASON_CATEGORY_MOVED",
            destination: { country: "se", municipality: "1480" },
            personal: samplePersonal(),
          }),
        });
        // Nothing was accepted: the referral was not written, so it was not sent either; the
        // case system is told to come back.
        expect(res.status).toBe(503);
        expect(res.headers.get("retry-after")).not.toBeNull();
        expect(await res.json()).toMatchObject({ code: "ERR_JOURNAL_WRITE", reason: "disk_full" });
        const body = await waitForValue(
          async () => {
            const r = await readyz(se.gateway("0180").url);
            return r.status === 503 ? r.body : undefined;
          },
          { timeoutMs: 10_000, message: "0180 to report its journal failed" },
        );
        expect(body.failing).toEqual(["journal"]);
        expect(body.checks.journal).toMatchObject({
          code: "ERR_JOURNAL_WRITE",
          reason: "disk_full",
        });
      } finally {
        fs.write = realWrite;
        syncBuiltinESMExports();
      }
      // The disk takes writes again: the journal's own probe finds it, with no restart.
      await waitFor(async () => (await readyz(se.gateway("0180").url)).status === 200, {
        timeoutMs: 10_000,
        message: "0180 ready again once its disk takes writes",
      });
    },
  );
});
