/**
 * A full disk under the journals, mid-flow: the hub's and the origin gateway's state directories
 * are on a small tmpfs, filled to ENOSPC while referrals flow and freed again. While it is full
 * the gateway answers 503 with Retry-After (nothing accepted), both report not ready with
 * ERR_JOURNAL_WRITE disk_full and log it, the hub's messages wait; once it is freed both recover
 * by themselves and every referral is accepted and closed, once, nothing refused. And a message
 * whose last delivery still finds the journal failing is quarantined with that reason and its
 * sender told.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, waitFor } from "@stafett/devkit";
import { start as startGateway, type RunningGateway } from "@stafett/gateway";
import { start as startHub, type RunningHub } from "@stafett/hub";
import { createLogger, Journal } from "@stafett/shared";
import { samplePersonal } from "@stafett/devkit";
import { Api } from "../e2e/api.js";
import { expectNoRefusals, refusals } from "../support/flow.js";
import { capturedLog } from "../support/logs.js";
import { mountSmallFs, type SmallFs } from "../support/small-fs.js";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
const mounted = mountSmallFs(8 * 1024 * 1024);
if (typeof mounted === "string")
  process.stderr.write(`\n!!! SKIPPING the full-disk fault tests: ${mounted}\n\n`);
const fs: SmallFs | undefined = typeof mounted === "string" ? undefined : mounted;

afterAll(() => {
  fs?.unmount();
});

/** A country whose hub and origin gateway keep their journals on the small filesystem. */
async function country(
  provision: { backoffMs: number[]; maxDeliver: number },
  sub: string,
): Promise<{
  se: LocalCountry;
  hub: RunningHub;
  origin: RunningGateway;
  hubLog: ReturnType<typeof capturedLog>;
  originLog: ReturnType<typeof capturedLog>;
}> {
  const se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    servicesOff: true,
    provision,
  });
  await se.startGateway("se:municipality:1480");
  const hubLog = capturedLog("hub");
  const originLog = capturedLog("gateway");
  const hub = await startHub(
    // Reporting to the coordinator as a production hub does: its small report lines meet the
    // full disk too.
    {
      ...se.runtime("se:hub:vast"),
      stateDir: join(fs?.dir ?? "", sub, "hub"),
      reportEveryMs: 300_000,
    },
    hubLog.log,
  );
  const origin = await startGateway(
    { ...se.runtime("se:municipality:0180"), stateDir: join(fs?.dir ?? "", sub, "gateway") },
    originLog.log,
  );
  return { se, hub, origin, hubLog, originLog };
}

describe.skipIf(fs === undefined)("the journals' disk full mid-flow, then freed", () => {
  let c: Awaited<ReturnType<typeof country>>;
  beforeAll(async () => {
    // Messages wait and come again (every second) for as long as the disk is full.
    c = await country({ backoffMs: [500, 1_000], maxDeliver: 100 }, "flow");
  }, 60_000);
  afterAll(async () => {
    await c?.origin.stop();
    await c?.hub.stop();
    await c?.se.stop();
  });

  it(
    "503 with Retry-After and not ready while full, by itself ready again, nothing lost, doubled or refused",
    { timeout: 90_000 },
    async () => {
      const { se, hub, origin, hubLog, originLog } = c;
      const destination = se.gateway("1480").gateway;
      const api = await Api.for(se, "se:municipality:0180", origin.url);
      let accepting = true;
      const acceptor = (async () => {
        while (accepting) {
          for (const item of destination.state.inbox.values())
            if (item.status === "pending")
              await destination.answer(item.referralId, "accepted").catch(() => undefined);
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      const post = (key: string, i: number) =>
        api.post<{ referralId: string; code?: string; reason?: string }>(
          "/v1/referrals",
          {
            urgency: "URGENCY_NORMAL",
            reason: "REASON_CATEGORY_MOVED",
            destination: { country: "se", municipality: "1480" },
            personal: samplePersonal(i),
          },
          { "idempotency-key": key },
        );
      const accepted = new Map<string, string>();
      try {
        for (let i = 0; i < 10; i++) {
          const r = await post(`k${i}`, i);
          expect(r.status).toBe(202);
          accepted.set(`k${i}`, r.body.referralId);
        }
        fs?.fill();
        // The gateway's journal may still fit a few small lines in its last block; then 503.
        let i = 10;
        let refused: Awaited<ReturnType<typeof post>> | undefined;
        while (refused === undefined && i < 200) {
          const r = await post(`k${i}`, i);
          if (r.status === 202) accepted.set(`k${i}`, r.body.referralId);
          else refused = r;
          i += 1;
        }
        expect(refused?.status).toBe(503);
        expect(refused?.headers.get("retry-after")).toBe("5");
        // Whichever write meets the full disk first refuses: the access audit's or the journal's.
        expect([
          { code: "ERR_JOURNAL_WRITE", reason: "disk_full" },
          { code: "ERR_UNAVAILABLE", reason: "audit" },
        ]).toContainEqual({ code: refused?.body.code, reason: refused?.body.reason });
        const refusedKey = `k${i - 1}`;
        await waitFor(
          () =>
            hub.hub.readiness().problems.some((p) => p.reason === "disk_full") &&
            origin.gateway.readiness().problems.some((p) => p.reason === "disk_full"),
          { timeoutMs: 20_000, message: "hub and gateway not ready: disk full" },
        );
        expect(hub.hub.readiness()).toMatchObject({
          ready: false,
          problems: [{ code: "ERR_JOURNAL_WRITE", reason: "disk_full" }],
        });
        expect(hubLog.coded("ERR_JOURNAL_WRITE", "disk_full").length).toBeGreaterThan(0);
        expect(originLog.coded("ERR_JOURNAL_WRITE", "disk_full").length).toBeGreaterThan(0);
        // While full: messages wait (redelivered), none quarantined.
        expect(
          (await refusals({ countries: { se: { servers: se.natsUrl, ...se.admin } } })).quarantined,
        ).toEqual([]);

        fs?.free();
        await waitFor(() => hub.hub.readiness().ready && origin.gateway.readiness().ready, {
          timeoutMs: 20_000,
          message: "both ready again after the disk was freed",
        });
        expect(hubLog.coded("ERR_JOURNAL_WRITE", "recovered").length).toBeGreaterThan(0);
        // The case system retries the refused request with its key.
        const retried = await post(refusedKey, 999);
        expect(retried.status).toBe(202);
        accepted.set(refusedKey, retried.body.referralId);

        const types = (id: string) =>
          origin.gateway.referral(id)?.timeline.map((e) => e.type) ?? [];
        const done = (id: string) =>
          (["received", "forwarded", "accepted", "closed"] as const).every((t) =>
            types(id).includes(t),
          );
        await waitFor(() => [...accepted.values()].every(done), {
          timeoutMs: 45_000,
          message: "every accepted referral accepted and closed",
        });
        for (const id of accepted.values()) {
          const t = types(id);
          expect({
            id,
            n: ["opened", "received", "forwarded", "accepted", "closed"].map(
              (x) => t.filter((y) => y === x).length,
            ),
          }).toEqual({ id, n: [1, 1, 1, 1, 1] });
        }
        expect(destination.state.inbox.size).toBe(accepted.size);
        await expectNoRefusals({
          countries: { se: { servers: se.natsUrl, ...se.admin } },
          gateways: [origin.gateway, destination],
          hubs: [hub.hub],
        });
      } finally {
        accepting = false;
        await acceptor;
        fs?.free();
      }
    },
  );
});

describe.skipIf(fs === undefined)("the journal still failing on a message's last delivery", () => {
  let c: Awaited<ReturnType<typeof country>>;
  beforeAll(async () => {
    c = await country({ backoffMs: [300, 300], maxDeliver: 3 }, "last");
  }, 60_000);
  afterAll(async () => {
    await c?.origin.stop();
    await c?.hub.stop();
    await c?.se.stop();
    fs?.free();
  });

  it(
    "is quarantined with the journal's reason, and its sender told",
    { timeout: 60_000 },
    async () => {
      const { se, hub, origin, hubLog } = c;
      const { referralId } = await origin.gateway.openReferral(
        {
          urgency: "URGENCY_NORMAL",
          reason: "REASON_CATEGORY_MOVED",
          destination: { country: "se", municipality: "1480" },
          personal: samplePersonal(1),
        },
        "last-1",
      );
      await waitFor(() => hub.hub.state.referrals.has(referralId), {
        timeoutMs: 10_000,
        message: "the first referral at the hub",
      });
      // The hub's disk fills; the origin's gateway still has room in its journal's last block.
      fs?.fill();
      const second = await origin.gateway.openReferral(
        {
          urgency: "URGENCY_NORMAL",
          reason: "REASON_CATEGORY_MOVED",
          destination: { country: "se", municipality: "1480" },
          personal: samplePersonal(2),
        },
        "last-2",
      );
      const rejected = () =>
        origin.gateway.referral(second.referralId)?.timeline.find((e) => e.type === "rejected");
      await waitFor(() => rejected() !== undefined, {
        timeoutMs: 20_000,
        message: "the sender told of the refusal",
      });
      expect(rejected()).toMatchObject({ code: "ERR_JOURNAL_WRITE", reason: "disk_full" });
      const { quarantined } = await refusals({
        countries: { se: { servers: se.natsUrl, ...se.admin } },
      });
      expect(quarantined).toMatchObject([
        { code: "ERR_JOURNAL_WRITE", reason: "disk_full", consumer: "se-hub-vast" },
      ]);
      expect(hubLog.coded("ERR_JOURNAL_WRITE", "disk_full").length).toBeGreaterThan(0);
      expect(hub.hub.state.referrals.has(second.referralId)).toBe(false);
    },
  );
});

describe.skipIf(fs === undefined)("a disk with a few kilobytes that come and go", () => {
  afterAll(() => fs?.free());

  it("keeps the journal unhealthy until there is room again, not ready and unready by turns", async () => {
    const path = join(fs?.dir ?? "", "headroom", "journal.jsonl");
    const { journal } = Journal.open<{ n: string }>(path, { probeMs: 100 });
    try {
      await journal.append({ n: "before" });
      fs?.fill();
      // A small line (larger than what is left of the file's last page) meets the full disk.
      await expect(journal.append({ n: "x".repeat(8_000) })).rejects.toMatchObject({
        code: "ERR_JOURNAL_WRITE",
        reason: "disk_full",
      });
      // Another writer's write is taken back: a few kilobytes, more than the failed line needed.
      fs?.release(16 * 1_024);
      await new Promise((r) => setTimeout(r, 1_000));
      expect(journal.health).toMatchObject({ ok: false, reason: "disk_full" });
      fs?.free();
      await waitFor(() => journal.health.ok, { timeoutMs: 5_000, message: "healthy once freed" });
      await journal.append({ n: "after" });
    } finally {
      await journal.close();
    }
  });
});
