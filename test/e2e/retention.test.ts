/**
 * Retention and erasure against running services: referrals run through to closed; once the
 * clock passes the retention period, none of their ciphertext is left anywhere in either
 * gateway's state directory (a byte search of every file), their timelines are still served,
 * and the erased inbox item answers 410. Erasure on request: only a person granted `eraser`, of
 * the own municipality, for a referral the gateway holds; recorded in the access audit.
 */
import { copyFileSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { start as startGateway, type RunningGateway } from "@stafett/gateway";
import { randomUUID } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { LocalCountry, sampleOpened, waitFor, waitForValue } from "@stafett/devkit";
import {
  createLogger,
  DEFAULT_RETENTION,
  decodeEvent,
  decodeSignedEvent,
  fromBase64,
  issue,
  listQuarantine,
  PROVISIONER,
  quarantineStreamName,
  type AuditRecord,
} from "@stafett/shared";
import { openTo } from "../support/flow.js";
import { holding, needlesOf } from "../support/byte-search.js";
import { capturedLog } from "../support/logs.js";
import { stafett } from "../support/cli.js";
import { Api } from "./api.js";

const log = createLogger({ service: "e2e", level: process.env.LOG_LEVEL ?? "silent" });
const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
let se: LocalCountry;
/** Gateways this file started itself (with a clock of its own), stopped at the end. */
const own: RunningGateway[] = [];

beforeAll(async () => {
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log });
}, 60_000);

afterAll(async () => {
  await Promise.all(own.map((g) => g.stop().catch(() => undefined)));
  await se?.stop();
});

/** The ciphertext of the personal part a Göteborg inbox item carries, read from its journal. */
function ciphertextOf(gateway: RunningGateway, referralId: string): string {
  const item = gateway.gateway.inboxItem(referralId);
  if (item === undefined) throw new Error("no inbox item");
  const record = gateway.gateway.party.stored(item.stored);
  if (record.k !== "inbox") throw new Error("not an inbox record");
  const forwarded = decodeEvent(decodeSignedEvent(fromBase64(record.bytes)).event);
  const original = forwarded.forwarded?.original;
  if (original === undefined) throw new Error("no original");
  const opened = decodeEvent(decodeSignedEvent(fromBase64(original)).event);
  const jwe = JSON.parse(opened.opened?.personal ?? "{}") as { ciphertext?: string };
  if (jwe.ciphertext === undefined) throw new Error("no ciphertext");
  return jwe.ciphertext;
}

async function officer(org: string, url: string, roles: string[] = []): Promise<Api> {
  return new Api(url, await se.tokens.mint(org, "officer-1", 600, { roles }));
}

/** Restarts a gateway of the country with its clock `aheadMs` ahead (no broker clock check). */
async function restartAhead(org: string, aheadMs: number): Promise<RunningGateway> {
  const running = se.gateways.get(org);
  if (running !== undefined) {
    await running.stop();
    se.gateways.delete(org);
  }
  const g = await startGateway(
    {
      ...se.runtime(org),
      now: () => new Date(Date.now() + aheadMs),
      clock: false,
      sweepMs: 0,
    },
    log.child({ org }),
  );
  own.push(g);
  return g;
}

describe("retention", () => {
  it("erases closed referrals' ciphertext from disk after the period, keeps their timelines, and the inbox answers 410", async () => {
    const stockholm = se.gateway("0180").gateway;
    const ids = [await openTo(stockholm, "1480", 1), await openTo(stockholm, "1480", 2)];
    const goteborg = se.gateway("1480");
    await waitFor(() => ids.every((id) => goteborg.gateway.inboxItem(id) !== undefined), {
      timeoutMs: 15_000,
      message: "both referrals in Göteborg's inbox",
    });
    const needles = ids.flatMap((id) => needlesOf(ciphertextOf(goteborg, id)));
    for (const id of ids) await goteborg.gateway.answer(id, "accepted");
    await waitFor(
      () =>
        ids.every(
          (id) =>
            stockholm.state.sent.get(id)?.status === "closed" &&
            goteborg.gateway.inboxItem(id)?.endedAt !== undefined,
        ),
      { timeoutMs: 15_000, message: "both referrals closed at both ends" },
    );
    const dirs = [se.runtime(STOCKHOLM).stateDir, se.runtime(GOTEBORG).stateDir];
    // The search finds the ciphertext while it is kept (so it can find it at all). The origin
    // keeps no copy of what it sent (it journals the referral's metadata, then publishes).
    expect(holding(dirs[1] ?? "", needles).length).toBeGreaterThan(0);
    expect(holding(dirs[0] ?? "", needles)).toEqual([]);

    // A day short of the period: nothing erased.
    const early = await restartAhead(GOTEBORG, DEFAULT_RETENTION.personalMs - 86_400_000);
    expect(await early.gateway.party.sweep()).toBeUndefined();
    expect(holding(dirs[1] ?? "", needles).length).toBeGreaterThan(0);
    await early.stop();

    const later = DEFAULT_RETENTION.personalMs + 86_400_000;
    const [s, g] = [await restartAhead(STOCKHOLM, later), await restartAhead(GOTEBORG, later)];
    for (const gw of [s, g]) expect(await gw.gateway.party.sweep()).toBeDefined();
    for (const dir of dirs) expect(holding(dir, needles)).toEqual([]);

    const check = async (sg: RunningGateway, gg: RunningGateway) => {
      const origin = await officer(STOCKHOLM, sg.url);
      const dest = await officer(GOTEBORG, gg.url);
      for (const id of ids) {
        const timeline = await origin.get<{ status: string; timeline: { type: string }[] }>(
          `/v1/referrals/${id}`,
        );
        expect(timeline.status).toBe(200);
        expect(timeline.body.status).toBe("closed");
        expect(timeline.body.timeline.map((t) => t.type)).toContain("accepted");
        const item = await dest.get(`/v1/inbox/${id}`);
        expect(item.status).toBe(410);
        expect(item.body).toMatchObject({ code: "ERR_GONE", reason: "erased" });
      }
    };
    await check(s, g);
    // The compacted journals replay to the same: still kept, still gone, still off the disk.
    await s.stop();
    await g.stop();
    const [s2, g2] = [await restartAhead(STOCKHOLM, later), await restartAhead(GOTEBORG, later)];
    await check(s2, g2);
    for (const dir of dirs) expect(holding(dir, needles)).toEqual([]);

    // Past the metadata period the referrals are forgotten altogether.
    await s2.stop();
    const s3 = await restartAhead(STOCKHOLM, DEFAULT_RETENTION.metadataMs + 86_400_000);
    await s3.gateway.party.sweep();
    for (const id of ids) expect(s3.gateway.state.sent.has(id)).toBe(false);
    await s3.stop();
    await g2.stop();
    await se.startGateway(STOCKHOLM);
    await se.startGateway(GOTEBORG);
  }, 90_000);
});

describe("erasure on request", () => {
  it("erases for a person granted eraser, records it, and answers 410 afterwards", async () => {
    const id = await openTo(se.gateway("0180").gateway, "1480", 3);
    const goteborg = se.gateway("1480");
    await waitFor(() => goteborg.gateway.inboxItem(id) !== undefined, {
      timeoutMs: 15_000,
      message: "the referral in Göteborg's inbox",
    });
    const needles = needlesOf(ciphertextOf(goteborg, id));
    const dir = se.runtime(GOTEBORG).stateDir;
    expect(holding(dir, needles).length).toBeGreaterThan(0);

    // Refused: an officer without the right, another municipality's eraser, an unknown id.
    const plain = await officer(GOTEBORG, goteborg.url);
    const refused = await plain.call("DELETE", `/v1/referrals/${id}/personal`);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: "ERR_FORBIDDEN" });
    const stranger = await officer(STOCKHOLM, goteborg.url, ["eraser"]);
    expect((await stranger.call("DELETE", `/v1/referrals/${id}/personal`)).status).toBe(403);
    const eraser = await officer(GOTEBORG, goteborg.url, ["eraser"]);
    const unknown = await eraser.call(
      "DELETE",
      "/v1/referrals/00000000-0000-4000-8000-000000000000/personal",
    );
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: "ERR_NOT_FOUND" });
    expect((await plain.get(`/v1/inbox/${id}`)).status).toBe(200);

    // `stafett erase` carries the same request, and reports the refusal's code.
    const tokenDir = mkdtempSync(join(tmpdir(), "stafett-erase-"));
    const tokenFile = join(tokenDir, "token");
    const cli = async (org: string, roles: string[]) => {
      writeFileSync(tokenFile, await se.tokens.mint(org, "officer-1", 600, { roles }), {
        mode: 0o600,
      });
      return stafett(["erase", "--referral", id, "--url", goteborg.url, "--token-file", tokenFile]);
    };
    try {
      expect(await cli(GOTEBORG, [])).toEqual({ code: 1, text: "rejected: ERR_FORBIDDEN\n" });
      const done = await cli(GOTEBORG, ["eraser"]);
      expect(done.code).toBe(0);
      expect(done.text).toMatch(/^erased: the personal part of .* \(request\) at /);
    } finally {
      rmSync(tokenDir, { recursive: true, force: true });
    }
    // Erasing again is erasing once.
    const erased = await eraser.call("DELETE", `/v1/referrals/${id}/personal`);
    expect(erased.status).toBe(200);
    expect(erased.body).toMatchObject({ referralId: id, cause: "request" });
    const gone = await plain.get(`/v1/inbox/${id}`);
    expect(gone.status).toBe(410);
    expect(gone.body).toMatchObject({ code: "ERR_GONE", reason: "erased" });
    expect(holding(dir, needles)).toEqual([]);
    // The inbox still lists it (metadata), and the audit keeps the fact of the erasure.
    expect(
      (await plain.get<{ referralId: string }[]>("/v1/inbox")).body.map((i) => i.referralId),
    ).toContain(id);
    const auditor = await officer(GOTEBORG, goteborg.url, ["auditor"]);
    const records = (await auditor.get<{ records: AuditRecord[] }>(`/v1/audit?referralId=${id}`))
      .body.records;
    expect(records.map((r) => r.action)).toContain("erased");

    // The hub that forwarded it keeps its own copy, until its own eraser erases it there.
    const hub = se.hub("vast");
    const hubDir = se.runtime("se:hub:vast").stateDir;
    expect(holding(hubDir, needles).length).toBeGreaterThan(0);
    const municipalEraser = await officer(GOTEBORG, hub.url, ["eraser"]);
    expect((await municipalEraser.call("DELETE", `/v1/referrals/${id}/personal`)).status).toBe(403);
    const hubEraser = await officer("se:hub:vast", hub.url, ["eraser"]);
    const atHub = await hubEraser.call("DELETE", `/v1/referrals/${id}/personal`);
    expect(atHub.status).toBe(200);
    expect(holding(hubDir, needles)).toEqual([]);
    expect(hub.hub.state.referrals.get(id)?.erased).toBe(true);
  }, 60_000);
});

describe("a damaged compacted journal", () => {
  it("is refused loudly (a coded fatal line, never ready), never replayed short or empty", async () => {
    const org = GOTEBORG;
    const journal = join(se.runtime(org).stateDir, "journal.jsonl");
    // Compacted by the erasures above; cut off its end, marker and all (as a lost tail would).
    expect(statSync(`${journal}.compacted`).isFile()).toBe(true);
    const running = se.gateways.get(org);
    await running?.stop();
    se.gateways.delete(org);
    copyFileSync(journal, `${journal}.kept`);
    const size = statSync(journal).size;
    truncateSync(journal, Math.floor(size / 2));
    const refused = capturedLog("gateway");
    await expect(startGateway(se.runtime(org), refused.log)).rejects.toMatchObject({
      code: "ERR_JOURNAL_DAMAGED",
      reason: "compacted_incomplete",
    });
    expect(refused.coded("ERR_JOURNAL_DAMAGED", "compacted_incomplete")).toMatchObject([
      { level: 60 },
    ]);
    // Nothing was changed; put back whole, it starts.
    expect(statSync(journal).size).toBe(Math.floor(size / 2));
    copyFileSync(`${journal}.kept`, journal);
    const again = await startGateway(se.runtime(org), log);
    own.push(again);
    expect(
      again.gateway.readiness().problems.filter((p) => p.code === "ERR_JOURNAL_DAMAGED"),
    ).toEqual([]);
  }, 60_000);
});

describe("erasure from the quarantine", () => {
  it("erases the refused copies of a referral that the organisation refused, and only those", async () => {
    const nc = await connect({ servers: se.natsUrl, ...se.admin });
    // The operator's command runs as the provisioner, the only user of the streams' account.
    const nkeyFile = join(mkdtempSync(join(tmpdir(), "stafett-erase-")), "provisioner.nk");
    writeFileSync(nkeyFile, se.nkeySeed(PROVISIONER) ?? new Uint8Array(), { mode: 0o600 });
    try {
      const jsm = await jetstreamManager(nc);
      const js = jetstream(nc);
      const stream = quarantineStreamName("se");
      // Two referrals at the hub, each then replayed under a new message id: refused, quarantined.
      const events = await Promise.all(
        [7, 8].map((i) =>
          issue(sampleOpened({}, i), {
            identity: se.country.identity(STOCKHOLM),
            trust: se.country.trust,
          }),
        ),
      );
      const seqs: number[] = [];
      for (const e of events) {
        await js.publish(e.subject, e.bytes, { msgID: e.id });
        await waitFor(() => se.hub("vast").hub.state.referrals.has(e.event.referralId), {
          timeoutMs: 10_000,
          message: "the referral at the hub",
        });
        await js.publish(e.subject, e.bytes, { msgID: randomUUID() });
        const m = await waitForValue(
          async () =>
            (await listQuarantine(jsm, "se")).find(
              (q) => q.eventId === e.id && q.code === "ERR_REPLAY",
            ),
          { timeoutMs: 10_000, message: "the replay in quarantine" },
        );
        seqs.push(m.seq);
      }
      const [first, second] = events;
      if (first === undefined || second === undefined) throw new Error("two events");
      const erase = (org: string) =>
        stafett([
          "quarantine",
          "erase",
          "--referral",
          first.event.referralId,
          "--org",
          org,
          "--nats-url",
          se.natsUrl,
          "--nkey-file",
          nkeyFile,
        ]);
      // Another organisation's erasure leaves the hub's copies.
      expect(await erase(GOTEBORG)).toMatchObject({
        code: 0,
        text: expect.stringMatching(/^erased 0 quarantined message/),
      });
      expect(await erase("se:hub:vast")).toMatchObject({
        code: 0,
        text: expect.stringMatching(/^erased 1 quarantined message/),
      });
      const left = async (seq: number) =>
        (await jsm.streams.getMessage(stream, { seq }).catch(() => null)) !== null;
      expect(await left(seqs[0] ?? 0)).toBe(false);
      expect(await left(seqs[1] ?? 0)).toBe(true);
    } finally {
      await nc.close();
    }
  }, 60_000);
});
