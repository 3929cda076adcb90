/**
 * Damaged journals under real services. A repeated line and a torn tail (a crash mid-write) are
 * survived: the service starts, says so in a coded line, applies each record once, and the flow
 * goes on. A damaged line in the middle stops the start with ERR_JOURNAL_DAMAGED naming the file
 * and the byte offset, changing nothing; `stafett journal repair` keeps the damaged line aside
 * and the service starts and finishes every referral, once, nothing refused.
 */
import { readFileSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "@stafett/cli";
import { capturedIo } from "../support/cli.js";
import { LocalCountry, waitFor } from "@stafett/devkit";
import { createLogger, Journal } from "@stafett/shared";
import { expectNoRefusals, openTo } from "../support/flow.js";
import { capturedLog } from "../support/logs.js";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
let se: LocalCountry;

beforeAll(async () => {
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log, servicesOff: true });
  await se.startGateway("se:municipality:0180");
  await se.startGateway("se:municipality:1480");
  await se.startHub("se:hub:vast");
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

/** Byte ranges of the file's lines. */
function lines(path: string): { start: number; end: number; text: string }[] {
  const bytes = readFileSync(path);
  const out: { start: number; end: number; text: string }[] = [];
  let start = 0;
  while (start < bytes.length) {
    const nl = bytes.indexOf(0x0a, start);
    out.push({ start, end: nl + 1, text: bytes.toString("utf8", start, nl) });
    start = nl + 1;
  }
  return out;
}

describe("a service's journal damaged while it was down", () => {
  it(
    "survives a repeated line and a torn tail; refuses damage in the middle until repaired; loses and doubles nothing",
    { timeout: 90_000 },
    async () => {
      // The origin's gateway is restarted below: always read the running one.
      const origin = { referral: (id: string) => se.gateway("0180").gateway.referral(id) };
      const destination = se.gateway("1480").gateway;
      const ids: string[] = [];
      for (const i of [0, 1, 2, 3, 4, 5])
        ids.push(await openTo(se.gateway("0180").gateway, "1480", i));
      const types = (id: string) => origin.referral(id)?.timeline.map((e) => e.type) ?? [];
      await waitFor(() => ids.every((id) => destination.inboxItem(id) !== undefined), {
        timeoutMs: 20_000,
        message: "every referral in the destination's inbox",
      });
      for (const id of ids.slice(0, 3)) await destination.answer(id, "accepted");
      await waitFor(() => ids.slice(0, 3).every((id) => types(id).includes("closed")), {
        timeoutMs: 20_000,
        message: "the first three accepted and closed",
      });
      const hubDir = se.runtime("se:hub:vast").stateDir;
      const gwDir = se.runtime("se:municipality:0180").stateDir;
      const hubJournal = join(hubDir, "journal.jsonl");
      const gwJournal = join(gwDir, "journal.jsonl");
      const historyBefore = ids.map((id) => se.hub("vast").hub.state.referrals.get(id)?.history);
      const timelinesBefore = ids.map((id) => types(id));

      // 1. A repeated line (in the middle of each journal) and a torn tail (the hub's).
      await se.hub("vast").stop();
      await se.gateway("0180").stop();
      for (const path of [hubJournal, gwJournal]) {
        const all = lines(path);
        const plan = all.find((l) => l.text.includes('"rs":[{'));
        if (plan === undefined) throw new Error("no plan line");
        const bytes = readFileSync(path);
        writeFileSync(
          path,
          Buffer.concat([
            bytes.subarray(0, plan.end),
            bytes.subarray(plan.start, plan.end),
            bytes.subarray(plan.end),
          ]),
        );
      }
      appendFileSync(hubJournal, '99999 0badc0de {"seen":{"id":"x","se');
      const hubLog = capturedLog("hub");
      const gwLog = capturedLog("gateway");
      se.hubs.delete("se:hub:vast");
      se.gateways.delete("se:municipality:0180");
      const restartHub = async (logTo: ReturnType<typeof capturedLog>) => {
        const { start } = await import("@stafett/hub");
        const running = await start(se.runtime("se:hub:vast"), logTo.log);
        se.hubs.set("se:hub:vast", running);
        return running;
      };
      const restartGateway = async (logTo: ReturnType<typeof capturedLog>) => {
        const { start } = await import("@stafett/gateway");
        const running = await start(se.runtime("se:municipality:0180"), logTo.log);
        se.gateways.set("se:municipality:0180", running);
        return running;
      };
      let hub = await restartHub(hubLog);
      const gw = await restartGateway(gwLog);
      expect(hubLog.coded("ERR_JOURNAL_DAMAGED", "duplicate")).toHaveLength(1);
      expect(hubLog.coded("ERR_JOURNAL_DAMAGED", "torn_tail")).toHaveLength(1);
      expect(gwLog.coded("ERR_JOURNAL_DAMAGED", "duplicate")).toHaveLength(1);
      expect(ids.map((id) => hub.hub.state.referrals.get(id)?.history)).toEqual(historyBefore);
      expect(ids.map((id) => gw.gateway.referral(id)?.timeline.map((e) => e.type))).toEqual(
        timelinesBefore,
      );

      // 2. One flipped byte in the middle of the hub's journal: it will not start.
      await hub.stop();
      se.hubs.delete("se:hub:vast");
      // A line saying a plan was published: repair loses nothing that matters (the plan is
      // published again, and the stream drops the copies).
      const middle = lines(hubJournal).find(
        (l, i, all) => i > 2 && i < all.length - 2 && l.text.includes('{"done":'),
      );
      if (middle === undefined) throw new Error("no done line in the middle");
      const damagedAt = middle.start;
      const bytes = readFileSync(hubJournal);
      bytes[damagedAt + 3] = bytes[damagedAt + 3] === 0x61 ? 0x62 : 0x61;
      writeFileSync(hubJournal, bytes);
      const refusedLog = capturedLog("hub");
      await expect(restartHub(refusedLog)).rejects.toMatchObject({
        code: "ERR_JOURNAL_DAMAGED",
        field: `${hubJournal}@${damagedAt}`,
      });
      expect(refusedLog.coded("ERR_JOURNAL_DAMAGED", "checksum")).toMatchObject([
        { level: 60, file: hubJournal, at: `${hubJournal}@${damagedAt}` },
      ]);
      expect(readFileSync(hubJournal)).toEqual(bytes);

      const repair = capturedIo();
      expect(await runCli(["journal", "repair", "--state", hubDir], repair)).toBe(0);
      expect(repair.text()).toContain(`damaged at byte ${damagedAt}`);
      expect(Journal.check(hubJournal).damaged).toEqual([]);
      hub = await restartHub(capturedLog("hub"));

      // The flow goes on: the other three accepted, everything once, nothing refused.
      for (const id of ids.slice(3)) await destination.answer(id, "accepted");
      await waitFor(() => ids.every((id) => types(id).includes("closed")), {
        timeoutMs: 20_000,
        message: "every referral accepted and closed",
      });
      for (const id of ids) {
        const t = types(id);
        expect({
          id,
          n: ["opened", "received", "forwarded", "accepted", "closed"].map(
            (x) => t.filter((y) => y === x).length,
          ),
        }).toEqual({ id, n: [1, 1, 1, 1, 1] });
      }
      await expectNoRefusals({
        countries: { se: { servers: se.natsUrl, ...se.admin } },
        gateways: [gw.gateway, destination],
        hubs: [hub.hub],
      });
    },
  );
});
