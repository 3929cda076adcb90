import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_FILE, AuditLog, CHECKPOINT_EVERY, verifyAudit, type AuditVerdict } from "./audit.js";
import { generateSigningKey, importSigningKey, type KeyHandle } from "./keys.js";

const ORG = "se:municipality:0180";
let signer: KeyHandle;
let publicKey: KeyHandle;
let otherPublic: KeyHandle;
const dirs: string[] = [];

beforeAll(async () => {
  const pair = await generateSigningKey();
  signer = await importSigningKey(pair.privateJwk);
  publicKey = await importSigningKey(pair.publicJwk);
  otherPublic = await importSigningKey((await generateSigningKey()).publicJwk);
});

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), "stafett-audit-"));
  dirs.push(d);
  return d;
}

/** An audit file of `n` reads by two officers, with the checkpoints the log writes. */
async function written(n: number): Promise<{ dir: string; lines: string[] }> {
  const dir = stateDir();
  const log = await AuditLog.open(dir, ORG, signer);
  for (let i = 0; i < n; i++)
    await log.record({ sub: `officer-${i % 2}`, action: "read", referralId: `ref-${i}` });
  await log.close();
  return { dir, lines: readFileSync(join(dir, AUDIT_FILE), "utf8").trimEnd().split("\n") };
}

const verify = (lines: string[], key = publicKey, org: string = ORG): Promise<AuditVerdict> =>
  verifyAudit(`${lines.join("\n")}\n`, async (kid) => (kid === key.kid ? key : undefined), org);

describe("the access audit", () => {
  it("chains every record and signs checkpoints; an untouched file verifies", async () => {
    const { lines } = await written(CHECKPOINT_EVERY + 3);
    expect(await verify(lines)).toEqual({
      ok: true,
      records: CHECKPOINT_EVERY + 3,
      checkpoints: 2, // one after CHECKPOINT_EVERY records, one at close
      lastCheckpoint: CHECKPOINT_EVERY + 5,
      unsignedTail: 0,
    });
  });

  it("continues the chain across a reopen", async () => {
    const { dir } = await written(3);
    const log = await AuditLog.open(dir, ORG, signer);
    await log.record({ sub: "officer-9", action: "accepted", referralId: "ref-x" });
    await log.close();
    const lines = readFileSync(join(dir, AUDIT_FILE), "utf8").trimEnd().split("\n");
    expect(await verify(lines)).toMatchObject({ ok: true, records: 4 });
  });

  it("names an altered record", async () => {
    const { lines } = await written(6);
    lines[3] = lines[3]!.replace('"action":"read"', '"action":"closed"');
    expect(await verify(lines)).toEqual({ ok: false, line: 4, problem: "altered", seq: 4 });
  });

  it("names a record altered and given a fresh hash, by the next record's chain", async () => {
    const { lines } = await written(6);
    const rec = JSON.parse(lines[2]!) as Record<string, unknown>;
    rec.sub = "someone-else";
    const { hash: _h, ...rest } = rec;
    const { createHash } = await import("node:crypto");
    rec.hash = createHash("sha256").update(JSON.stringify(rest)).digest("hex");
    lines[2] = JSON.stringify(rec);
    expect(await verify(lines)).toMatchObject({ ok: false, line: 3, problem: "altered" });
  });

  it("names a removed record", async () => {
    const { lines } = await written(6);
    lines.splice(2, 1);
    expect(await verify(lines)).toEqual({ ok: false, line: 3, problem: "removed", seq: 3 });
  });

  it("names an inserted record (a copy of an earlier one)", async () => {
    const { lines } = await written(6);
    lines.splice(4, 0, lines[1]!);
    expect(await verify(lines)).toEqual({ ok: false, line: 5, problem: "inserted", seq: 2 });
  });

  it("names reordered records", async () => {
    const { lines } = await written(6);
    [lines[2], lines[3]] = [lines[3]!, lines[2]!];
    expect(await verify(lines)).toEqual({ ok: false, line: 3, problem: "reordered", seq: 3 });
  });

  it("refuses a rewritten chain by its signed checkpoint, and a checkpoint signed by another key", async () => {
    const { lines } = await written(CHECKPOINT_EVERY + 1);
    // Rewrite the whole chain consistently after changing the first record: every plain hash
    // fits again, but the checkpoint's signature vouches for the old chain.
    const { createHash } = await import("node:crypto");
    let prev = "0".repeat(64);
    const rewritten = lines.map((l, i) => {
      const rec = JSON.parse(l) as Record<string, unknown>;
      if (i === 0) rec.action = "erased";
      rec.prev = prev;
      if ("checkpoint" in rec) rec.checkpoint = prev;
      const { hash: _h, ...rest } = rec;
      rec.hash = createHash("sha256").update(JSON.stringify(rest)).digest("hex");
      prev = rec.hash as string;
      return JSON.stringify(rec);
    });
    expect(await verify(rewritten)).toMatchObject({ ok: false, problem: "bad_signature" });
    expect(await verify(lines, otherPublic)).toMatchObject({ ok: false, problem: "bad_signature" });
  });

  it("refuses a chain whose checkpoints another organisation signed, or whose records name another", async () => {
    // Göteborg's own, genuine audit, offered as Stockholm's.
    const dir = stateDir();
    const log = await AuditLog.open(dir, "se:municipality:1480", signer);
    await log.record({ sub: "officer-1", action: "read" });
    await log.close();
    const lines = readFileSync(join(dir, AUDIT_FILE), "utf8").trimEnd().split("\n");
    expect(await verify(lines, publicKey, "se:municipality:1480")).toMatchObject({ ok: true });
    expect(await verify(lines, publicKey, ORG)).toMatchObject({ ok: false, problem: "altered" });
    // A checkpoint whose signed organisation is another, though every record says ORG.
    const { lines: ours } = await written(2);
    const tampered = ours.map((l) => l.replace(`"org":"${ORG}"`, '"org":"se:municipality:1480"'));
    expect(await verify(tampered, publicKey, "se:municipality:1480")).toMatchObject({
      ok: false,
    });
  });

  it("fails with ERR_UNAVAILABLE when the disk is full, and writes nothing half", async () => {
    const dir = stateDir();
    symlinkSync("/dev/full", join(dir, AUDIT_FILE));
    const log = await AuditLog.open(dir, ORG, signer);
    await expect(log.record({ sub: "officer-1", action: "read" })).rejects.toMatchObject({
      code: "ERR_UNAVAILABLE",
      reason: "audit",
    });
    await log.close();
  });

  it("lists records by referral, person and time, in pages", async () => {
    const dir = stateDir();
    const log = await AuditLog.open(dir, ORG, signer);
    for (let i = 0; i < 5; i++)
      await log.record({ sub: `officer-${i % 2}`, action: "read", referralId: "ref-a" });
    await log.record({ sub: "officer-0", action: "accepted", referralId: "ref-b" });
    expect(log.list({ referralId: "ref-b" }).records.map((r) => r.action)).toEqual(["accepted"]);
    expect(log.list({ sub: "officer-1" }).records).toHaveLength(2);
    const first = log.list({ referralId: "ref-a", limit: 2 });
    expect(first.records.map((r) => r.seq)).toEqual([1, 2]);
    expect(
      log.list({ referralId: "ref-a", limit: 2, after: first.next }).records.map((r) => r.seq),
    ).toEqual([3, 4]);
    expect(log.list({ from: "2999-01-01T00:00:00.000Z" }).records).toEqual([]);
    await log.close();
    writeFileSync(join(dir, "unused"), "");
  });
});
