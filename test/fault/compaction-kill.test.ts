/**
 * A compaction killed at any point (SIGKILL, as a crash) leaves a journal that replays to the
 * same state: the gateway's state (sent referrals and timelines, inbox, erasures), the plans not
 * yet published (their events byte for byte), the crash suspects and the seen-message ids of the
 * referrals still held. Many rounds at random moments of the compaction, and one at each of its
 * named steps (half the new file written, before the rename, after it); opening removes the
 * temporary file a kill left.
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Journal, type JournalLine, type JournalRef, type Seen } from "@stafett/shared";
import { GatewayState, type GatewayRecord } from "../../services/gateway/src/state.js";
import { root } from "../support/build.js";

const ROUNDS = Number(process.env.COMPACTION_KILL_ROUNDS ?? 30);
const dir = mkdtempSync(join(tmpdir(), "stafett-compaction-kill-"));
const fixture = join(dir, "fixture.jsonl");

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Synthetic signed bytes: large enough that a compaction takes a while (no personal data). */
const blob = (i: number) => Buffer.alloc(6_000, `synthetic-sealed-part-${i}-`).toString("base64");

/**
 * A gateway journal: 600 inbox referrals (a plan each, most marked done), every third closed,
 * of those every second erased and every fourth forgotten; sent referrals with timelines; some
 * crash suspects, handled or not.
 */
async function writeFixture(): Promise<{ forgotten: Set<string> }> {
  const { journal } = Journal.open<JournalLine<GatewayRecord>>(fixture);
  const forgotten = new Set<string>();
  const at = "2026-01-01T00:00:00.000Z";
  for (let i = 0; i < 600; i++) {
    const referralId = `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
    if (i % 7 === 0) await journal.append({ tried: { durable: "gw", seq: i + 1 } });
    const plan = await journal.append({
      seen: { id: `event-${i}`, seq: i + 1, durable: "gw", referralId },
      rs: [
        {
          k: "inbox",
          referralId,
          forwardedId: `f-${i}`,
          openedId: `o-${i}`,
          origin: "se:municipality:0180",
          via: "se:hub:vast",
          urgency: "URGENCY_NORMAL",
          reason: "REASON_CATEGORY_MOVED",
          deadline: at,
          bytes: blob(i),
          at,
        },
      ],
      out: [{ subject: "stafett.se.in.x", headers: { id: `r-${i}` }, bytes: blob(-i) }],
    });
    if (i % 5 !== 0) await journal.append({ done: plan.seq });
    await journal.append({
      rs: [
        {
          k: "sent",
          referralId: `${referralId}-s`,
          openedId: `so-${i}`,
          hub: "se:hub:vast",
          destination: { country: "se", municipality: "1480" },
          urgency: "URGENCY_NORMAL",
          reason: "REASON_CATEGORY_MOVED",
          deadline: at,
          at,
        },
        {
          k: "timeline",
          referralId: `${referralId}-s`,
          entry: { type: "received", at, eventId: `t-${i}`, by: "se:hub:vast" },
        },
      ],
    });
    if (i % 3 === 0) {
      await journal.append({
        seen: { id: `close-${i}`, seq: 10_000 + i, durable: "gw", referralId },
        rs: [{ k: "inbox-event", referralId, type: "closed", eventId: `c-${i}`, at }],
      });
      if (i % 2 === 0) await journal.append({ erase: { referralId, cause: "retention", at } });
      if (i % 4 === 0) {
        await journal.append({ forget: { referralId, at } });
        forgotten.add(referralId);
      }
    }
  }
  await journal.close();
  return { forgotten };
}

/** The state a party replays from a journal (as party.ts `replay` does), as comparable JSON. */
function replayed(path: string, forgotten: ReadonlySet<string>): string {
  const { records } = Journal.open<JournalLine<GatewayRecord>>(path);
  const state = new GatewayState();
  const seen = new Map<string, number>();
  const seenRef = new Map<string, string | undefined>();
  const tried = new Map<string, number>();
  const erased = new Set<string>();
  const undone = new Map<number, unknown>();
  for (const { record: line, seq } of records) {
    if ("done" in line) undone.delete(line.done);
    else if ("tried" in line) {
      const key = `${line.tried.durable}:${line.tried.seq}`;
      tried.set(key, (tried.get(key) ?? 0) + 1);
    } else if ("erase" in line) {
      erased.add(line.erase.referralId);
      state.erase(line.erase.referralId);
    } else if ("forget" in line) {
      erased.delete(line.forget.referralId);
      state.forget(line.forget.referralId);
    } else if ("rs" in line) {
      const s = (line as { seen?: Seen }).seen;
      if (s !== undefined) {
        seen.set(s.id, s.seq);
        seenRef.set(s.id, s.referralId);
        tried.delete(`${s.durable}:${s.seq}`);
      }
      const at: JournalRef = { offset: 0, length: 0 };
      for (const r of line.rs) state.apply(r, at);
      if (line.out !== undefined && seq !== undefined) undone.set(seq, line.out);
    }
  }
  const noRefs = (_k: string, v: unknown) => (_k === "stored" ? undefined : v);
  return JSON.stringify(
    {
      sent: [...state.sent.values()],
      inbox: [...state.inbox.values()],
      erased: [...erased].sort(),
      undone: [...undone.entries()],
      tried: [...tried.entries()].sort(),
      // A compaction drops the seen ids of forgotten referrals (retention.ts): compared without.
      seen: [...seen.entries()].filter(([id]) => !forgotten.has(seenRef.get(id) ?? "")).sort(),
    },
    noRefs,
  );
}

/** Runs the compacting process on `path`; kills it `killAfterMs` after it opened the journal. */
function compactIn(
  path: string,
  killAfterMs: number | undefined,
  env: Record<string, string> = {},
): Promise<{ done?: number; killed: boolean; readyToExitMs: number }> {
  const child = spawn(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      join(root, "node_modules/tsx/dist/esm/index.mjs"),
      join(root, "test/support/compact-child.ts"),
      path,
    ],
    { env: { PATH: process.env.PATH ?? "", ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  let err = "";
  let readyAt = 0;
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout.on("data", (d: Buffer) => {
      const before = out;
      out += d.toString();
      if (!before.includes("ready") && out.includes("ready")) {
        readyAt = performance.now();
        if (killAfterMs !== undefined) setTimeout(() => child.kill("SIGKILL"), killAfterMs);
      }
    });
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      const done = /done (\d+)/.exec(out);
      const readyToExitMs = performance.now() - readyAt;
      if (signal === "SIGKILL")
        resolve({ killed: true, readyToExitMs, ...(done ? { done: Number(done[1]) } : {}) });
      else if (code === 0 && done !== null)
        resolve({ done: Number(done[1]), killed: false, readyToExitMs });
      else reject(new Error(`compaction exited ${code}: ${err.slice(0, 2000)}`));
    });
  });
}

let forgotten: Set<string>;
let expected: string;
let compactMs = 0;

beforeAll(async () => {
  ({ forgotten } = await writeFixture());
  expected = replayed(fixture, forgotten);
  // Once to the end: the compacted journal replays to the same state, and how long it takes.
  const whole = join(dir, "whole.jsonl");
  copyFileSync(fixture, whole);
  const run = await compactIn(whole, undefined);
  // The window the kills fall in: from the parent's "ready" to the child's exit, as seen here.
  compactMs = run.readyToExitMs;
  expect(replayed(whole, forgotten)).toBe(expected);
}, 60_000);

describe("a compaction killed at any point", () => {
  it("replays to the same state at each named step", async () => {
    for (const point of ["compact:mid-write", "compact:before-rename", "compact:after-rename"]) {
      const round = join(dir, `${point.replace(":", "-")}.jsonl`);
      copyFileSync(fixture, round);
      const run = await compactIn(round, undefined, { STAFETT_TEST_CRASH_AT: point });
      expect(run.killed).toBe(true);
      // Killed while writing the new journal or before renaming it: the new file is there.
      expect(existsSync(`${round}.compact-tmp`)).toBe(point !== "compact:after-rename");
      expect(replayed(round, forgotten)).toBe(expected);
      // Opening removes it (it may hold what the old journal held).
      expect(existsSync(`${round}.compact-tmp`)).toBe(false);
    }
  }, 60_000);

  it(`replays to the same state after SIGKILL at ${ROUNDS} random moments`, async () => {
    const outcomes = { before: 0, after: 0, finished: 0 };
    for (let i = 0; i < ROUNDS; i++) {
      const sub = mkdtempSync(join(dir, "round-"));
      const round = join(sub, "journal.jsonl");
      copyFileSync(fixture, round);
      const run = await compactIn(round, Math.random() * compactMs * 1.2);
      // Which journal the kill left: the old one (still the fixture's size) or the new one.
      if (existsSync(`${round}.compacted`)) outcomes.after += 1;
      else outcomes.before += 1;
      expect({ round: i, state: replayed(round, forgotten) }).toEqual({
        round: i,
        state: expected,
      });
      expect(readdirSync(sub).filter((f) => f.endsWith(".compact-tmp"))).toEqual([]);
      if (!run.killed) outcomes.finished += 1;
      expect(run.killed || run.done !== undefined).toBe(true);
      rmSync(sub, { recursive: true, force: true });
    }
    // The kills fell on both sides of the rename (else the rounds proved little).
    expect(outcomes.before).toBeGreaterThan(0);
    expect(outcomes.after).toBeGreaterThan(0);
  }, 300_000);
});
