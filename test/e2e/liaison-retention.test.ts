/**
 * Retention and erasure at the liaison (the national contact point), on two real nats-servers
 * joined by a federation link: Norway's contact point refers children to Sweden. Once the
 * clock passes the retention period after their handling ended (answered by the contact point,
 * or taken by the hub it routed one to), none of their ciphertext is left anywhere in the Swedish
 * liaison's state directory (a byte search of every file), the inbound list still shows them,
 * and the personal read answers 410. Erasure on request: only a person of the contact point
 * granted `eraser`, for a referral it holds; recorded in the access audit before it is done.
 * The liaison that sent a referral abroad (Norway's) lets go of what it sent and of what came
 * back once its contact point withdrew it and the period passed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalCountry } from "@stafett/devkit";
import {
  samplePersonal,
  startSwedenNorway,
  type SwedenNorway,
  waitFor,
  waitForValue,
  type Federation,
} from "@stafett/devkit";
import { start as startLiaison, type Liaison, type RunningLiaison } from "@stafett/liaison";
import {
  createLogger,
  DEFAULT_RETENTION,
  decodeEvent,
  decodeSignedEvent,
  fromBase64,
  type AuditRecord,
} from "@stafett/shared";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { holding, needlesOf } from "../support/byte-search.js";
import { stafett } from "../support/cli.js";
import { Api } from "./api.js";

const log = createLogger({ service: "e2e-liaison-ret", level: process.env.LOG_LEVEL ?? "silent" });
const SE_LIAISON = "se:liaison";
const GOTEBORG = "1480";
const DAY_MS = 86_400_000;
let fed: Federation;
let pair: SwedenNorway;
let se: LocalCountry;
let no: LocalCountry;
/** Liaisons this file started itself (with a clock of its own), stopped at the end. */
const own: RunningLiaison[] = [];

beforeAll(async () => {
  pair = await startSwedenNorway({ log, municipalities: [GOTEBORG] });
  ({ fed, se, no } = pair);
}, 60_000);

afterAll(async () => {
  await Promise.all(own.map((l) => l.stop().catch(() => undefined)));
  await se?.stop().catch(() => undefined);
  await no?.stop();
  await fed?.stop();
});

const noLiaison = (): Liaison => {
  const l = no.liaison?.liaison;
  if (l === undefined) throw new Error("no Norwegian liaison");
  return l;
};
const seRunning = (): RunningLiaison => {
  const l = se.liaison;
  if (l === undefined) throw new Error("no Swedish liaison");
  return l;
};

/** Norway's contact point refers a child to Sweden (to `municipality`, when given). */
async function referToSweden(municipality: string | undefined, n: number): Promise<string> {
  const sent = await noLiaison().referAbroad({
    partner: "se",
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_UNACCOMPANIED_MINOR",
    ...(municipality === undefined ? {} : { destination: { municipality } }),
    deadline: new Date(Date.now() + 3_600_000).toISOString(),
    personal: samplePersonal(n),
  });
  return sent.referralId;
}

/** The ciphertext of the personal part sealed to the liaison, from the partner's referral it holds. */
function ciphertextOf(liaison: Liaison, referralId: string): string {
  const item = liaison.state.inbound.get(referralId);
  if (item === undefined) throw new Error("no inbound item");
  const opened = decodeEvent(decodeSignedEvent(fromBase64(item.opened)).event);
  const jwe = JSON.parse(opened.opened?.personal ?? "{}") as { ciphertext?: string };
  if (jwe.ciphertext === undefined) throw new Error("no ciphertext");
  return jwe.ciphertext;
}

const inboundAt = (referralId: string) =>
  waitForValue(() => seRunning().liaison.state.inbound.get(referralId), {
    timeoutMs: 15_000,
    message: "the partner's referral at Sweden's liaison",
  });

async function officer(org: string, url: string, roles: string[] = []): Promise<Api> {
  return new Api(url, await se.tokens.mint(org, "officer-1", 600, { roles }));
}

/** Restarts a country's liaison with its clock `aheadMs` ahead (no broker clock check, no timer sweep). */
async function restartAhead(aheadMs: number, country = se): Promise<RunningLiaison> {
  if (country.liaison !== undefined) {
    await country.liaison.stop();
    country.liaison = undefined;
  }
  const org = `${country.country.code}:liaison`;
  const l = await startLiaison(
    {
      ...country.runtime(org),
      now: () => new Date(Date.now() + aheadMs),
      clock: false,
      sweepMs: 0,
    },
    log.child({ org }),
  );
  own.push(l);
  return l;
}

describe("retention at the liaison", () => {
  it("erases ended partner referrals' ciphertext from its state directory after the period, keeps their metadata, and the personal read answers 410", async () => {
    // One the contact point accepts itself; one routed to Göteborg's region, whose hub takes it.
    const answered = await referToSweden(undefined, 21);
    const routed = await referToSweden(GOTEBORG, 22);
    const ids = [answered, routed];
    await inboundAt(answered);
    await inboundAt(routed);
    const needles = ids.flatMap((id) => needlesOf(ciphertextOf(seRunning().liaison, id)));
    const cp = await officer(SE_LIAISON, seRunning().url);
    expect((await cp.call("POST", `/v1/inbound/${answered}/accept`)).status).toBe(200);
    await waitFor(
      () => ids.every((id) => seRunning().liaison.state.inbound.get(id)?.endedAt !== undefined),
      { timeoutMs: 15_000, message: "both referrals' handling ended at the liaison" },
    );
    const dir = se.runtime(SE_LIAISON).stateDir;
    // The search finds the ciphertext while it is kept (so it can find it at all).
    expect(holding(dir, needles).length).toBeGreaterThan(0);

    // A day short of the period: nothing erased.
    const early = await restartAhead(DEFAULT_RETENTION.personalMs - DAY_MS);
    expect(await early.liaison.party.sweep()).toBeUndefined();
    expect(holding(dir, needles).length).toBeGreaterThan(0);
    await early.stop();

    const later = DEFAULT_RETENTION.personalMs + DAY_MS;
    const l = await restartAhead(later);
    expect(await l.liaison.party.sweep()).toBeDefined();
    expect(holding(dir, needles)).toEqual([]);

    const check = async (running: RunningLiaison) => {
      const api = await officer(SE_LIAISON, running.url);
      const list =
        await api.get<{ referralId: string; status: string; opened?: string }[]>("/v1/inbound");
      expect(list.status).toBe(200);
      const byId = new Map(list.body.map((i) => [i.referralId, i]));
      expect(byId.get(answered)).toMatchObject({ status: "accepted", origin: "no:liaison" });
      expect(byId.get(routed)).toMatchObject({ status: "routed", routedTo: "se:hub:vast" });
      for (const id of ids) {
        expect(byId.get(id)?.opened).toBeUndefined();
        const item = await api.get(`/v1/inbound/${id}`);
        expect(item.status).toBe(410);
        expect(item.body).toMatchObject({ code: "ERR_GONE", reason: "erased" });
      }
    };
    await check(l);
    // The compacted journal replays to the same: still listed, still gone, still off the disk.
    await l.stop();
    const again = await restartAhead(later);
    await check(again);
    expect(holding(dir, needles)).toEqual([]);

    // Past the metadata period the referrals are forgotten altogether.
    await again.stop();
    const last = await restartAhead(DEFAULT_RETENTION.metadataMs + DAY_MS);
    await last.liaison.party.sweep();
    for (const id of ids) {
      expect(last.liaison.state.inbound.has(id)).toBe(false);
      expect(last.liaison.state.holds(id)).toBe(false);
    }
    await last.stop();
    await se.startLiaison();
  }, 90_000);
});

describe("erasure on request at the liaison", () => {
  it("erases for a person of the contact point granted eraser, records it, and answers 410 afterwards", async () => {
    const id = await referToSweden(undefined, 23);
    const item = await inboundAt(id);
    expect(item.status).toBe("pending");
    const running = seRunning();
    const needles = needlesOf(ciphertextOf(running.liaison, id));
    const dir = se.runtime(SE_LIAISON).stateDir;
    expect(holding(dir, needles).length).toBeGreaterThan(0);

    // Refused: an officer without the right, another organisation's eraser, an unknown id.
    const plain = await officer(SE_LIAISON, running.url);
    const refused = await plain.call("DELETE", `/v1/inbound/${id}/personal`);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: "ERR_FORBIDDEN" });
    const stranger = await officer("se:hub:vast", running.url, ["eraser"]);
    expect((await stranger.call("DELETE", `/v1/inbound/${id}/personal`)).status).toBe(403);
    const eraser = await officer(SE_LIAISON, running.url, ["eraser"]);
    const unknown = await eraser.call(
      "DELETE",
      "/v1/inbound/00000000-0000-4000-8000-000000000000/personal",
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: "ERR_NOT_FOUND", reason: "unknown_referral" });
    expect((await plain.get(`/v1/inbound/${id}`)).status).toBe(200);

    // The operator's command, with the eraser's token.
    const tokenDir = mkdtempSync(join(tmpdir(), "stafett-erase-"));
    const tokenFile = join(tokenDir, "token");
    writeFileSync(tokenFile, eraser.token, { mode: 0o600 });
    try {
      const run = await stafett([
        "erase",
        "--inbound",
        "--referral",
        id,
        "--url",
        running.url,
        "--token-file",
        tokenFile,
      ]);
      expect(run.code, run.text).toBe(0);
      expect(run.text).toMatch(/^erased: the personal part of .* \(request\) at /);
    } finally {
      rmSync(tokenDir, { recursive: true, force: true });
    }
    const erased = await eraser.call("DELETE", `/v1/inbound/${id}/personal`);
    expect(erased.status).toBe(200);
    expect(erased.body).toMatchObject({ referralId: id, cause: "request" });
    // Erasing again is erasing once.
    const twice = await eraser.call("DELETE", `/v1/inbound/${id}/personal`);
    expect(twice.status).toBe(200);
    expect(twice.body).toMatchObject({ erasedAt: (erased.body as { erasedAt: string }).erasedAt });
    const gone = await plain.get(`/v1/inbound/${id}`);
    expect(gone.status).toBe(410);
    expect(gone.body).toMatchObject({ code: "ERR_GONE", reason: "erased" });
    expect(holding(dir, needles)).toEqual([]);
    // Nothing left to route on: the contact point's route is refused as gone.
    const route = await plain.call("POST", `/v1/inbound/${id}/route`, {
      municipality: GOTEBORG,
    });
    expect(route.status).toBe(410);
    // The list still shows it (metadata), and the audit keeps the fact of the erasure.
    expect(
      (await plain.get<{ referralId: string }[]>("/v1/inbound")).body.map((i) => i.referralId),
    ).toContain(id);
    const auditor = await officer(SE_LIAISON, running.url, ["auditor"]);
    const records = (await auditor.get<{ records: AuditRecord[] }>(`/v1/audit?referralId=${id}`))
      .body.records;
    const actions = records.map((r) => r.action);
    expect(actions).toContain("erased");
    // Each erasure asked for is recorded (the command's, then twice the API's); the refused ones
    // are not.
    expect(actions.filter((a) => a === "erased")).toHaveLength(3);
  }, 60_000);
});

describe("retention at the liaison that sent a referral abroad", () => {
  it("erases what it sent and what came back once the contact point withdrew it, and keeps the referral's metadata", async () => {
    const id = await referToSweden(undefined, 24);
    await inboundAt(id);
    const needles = needlesOf(ciphertextOf(seRunning().liaison, id));
    await waitFor(() => (noLiaison().state.sent.get(id)?.answers.length ?? 0) > 0, {
      timeoutMs: 15_000,
      message: "Sweden's receipt in Norway",
    });
    await noLiaison().followAbroad(id, {
      type: "withdrawn",
      reason: "WITHDRAW_REASON_CHILD_FOUND",
    });
    await waitFor(() => noLiaison().state.sent.get(id)?.endedAt !== undefined, {
      timeoutMs: 15_000,
      message: "the referral withdrawn at Norway's contact point",
    });
    // What it sent (the personal part sealed to Sweden's liaison) is in its journal.
    const dir = no.runtime("no:liaison").stateDir;
    expect(holding(dir, needles).length).toBeGreaterThan(0);

    const later = DEFAULT_RETENTION.personalMs + DAY_MS;
    const l = await restartAhead(later, no);
    expect(await l.liaison.party.sweep()).toBeDefined();
    expect(holding(dir, needles)).toEqual([]);
    const sent = l.liaison.state.sent.get(id);
    expect(sent).toMatchObject({ status: "withdrawn", erased: true });
    expect(sent?.answers.map((a) => [a.type, a.bytes])).toEqual([["received", ""]]);
    await l.stop();
    await no.startLiaison();
  }, 60_000);
});
