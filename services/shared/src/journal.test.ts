import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { crc32 } from "node:zlib";
import { afterEach, describe, expect, it } from "vitest";
import { Journal } from "./journal.js";

const dirs: string[] = [];
const tempFile = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "stafett-journal-"));
  dirs.push(dir);
  return join(dir, "state", "journal.jsonl");
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A journal at a fresh path holding `n` records `{ n: 0 }`, `{ n: 1 }`, … */
async function written(n: number): Promise<string> {
  const path = tempFile();
  const { journal } = Journal.open<{ n: number }>(path);
  await Promise.all(Array.from({ length: n }, (_, i) => journal.append({ n: i })));
  await journal.close();
  return path;
}

/** The byte offsets at which the file's lines start. */
function lineStarts(path: string): number[] {
  const bytes = readFileSync(path);
  const starts = [0];
  for (let i = 0; i < bytes.length - 1; i++) if (bytes[i] === 0x0a) starts.push(i + 1);
  return starts;
}

const replayed = (path: string): number[] => {
  const { journal, records } = Journal.open<{ n: number }>(path);
  void journal.close();
  return records.map((r) => r.record.n);
};

describe("Journal", () => {
  it("replays what was appended, in order, after a reopen", async () => {
    const path = tempFile();
    const { journal, records } = Journal.open<{ n: number }>(path);
    expect(records).toEqual([]);
    const placed = await Promise.all(Array.from({ length: 100 }, (_, n) => journal.append({ n })));
    expect(placed.map((p) => p.seq)).toEqual(Array.from({ length: 100 }, (_, n) => n + 1));
    await journal.close();
    const again = Journal.open<{ n: number }>(path);
    expect(again.records.map((r) => r.record.n)).toEqual(Array.from({ length: 100 }, (_, n) => n));
    expect(again.records.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, n) => n + 1));
    await again.journal.close();
  });

  it("writes each line with its sequence number and a CRC-32 of it", async () => {
    const path = await written(1);
    // crc32("1") continued over '{"n":0}'
    expect(readFileSync(path, "utf8")).toMatch(/^1 [0-9a-f]{8} \{"n":0\}\n$/);
  });

  it("drops a torn last record, keeps its bytes aside, and keeps appending after the good ones", async () => {
    const path = await written(1);
    const good = readFileSync(path).length;
    appendFileSync(path, '2 0000abcd {"n":'); // a crash mid-write
    const second = Journal.open<{ n: number }>(path);
    expect(second.records.map((r) => r.record)).toEqual([{ n: 0 }]);
    expect(second.report.torn).toMatchObject({ offset: good, bytes: 16 });
    expect(readFileSync(second.report.torn?.keptIn ?? "", "utf8")).toBe('2 0000abcd {"n":');
    await second.journal.append({ n: 3 });
    await second.journal.close();
    expect(replayed(path)).toEqual([0, 3]);
  });

  it("drops damaged complete lines at the end too (a torn batch), and says so", async () => {
    const path = await written(3);
    const bytes = readFileSync(path);
    const last = lineStarts(path)[2] ?? 0;
    bytes[last + 13] = 0x7a; // inside the last line's JSON
    writeFileSync(path, bytes);
    const again = Journal.open<{ n: number }>(path);
    expect(again.records.map((r) => r.record.n)).toEqual([0, 1]);
    expect(again.report.torn?.offset).toBe(last);
    await again.journal.close();
  });

  it("refuses to start on a damaged line in the middle, naming the file and the offset, and changes nothing", async () => {
    const path = await written(5);
    const bytes = readFileSync(path);
    const third = lineStarts(path)[2] ?? 0;
    bytes[third + 13] = (bytes[third + 13] ?? 0) ^ 0x01; // one flipped bit
    writeFileSync(path, bytes);
    let thrown: unknown;
    try {
      Journal.open(path);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toMatchObject({
      code: "ERR_JOURNAL_DAMAGED",
      reason: "checksum",
      field: `${path}@${third}`,
    });
    expect(String((thrown as Error).message)).toContain(path);
    expect(String((thrown as Error).message)).toContain(`byte ${third}`);
    expect(readFileSync(path)).toEqual(bytes);
  });

  const insert = (b: Buffer, at: number, text: string): Buffer =>
    Buffer.concat([b.subarray(0, at), Buffer.from(text), b.subarray(at)]);
  const framed = (seq: number, json: string): string =>
    `${seq} ${crc32(json, crc32(String(seq)))
      .toString(16)
      .padStart(8, "0")} ${json}\n`;

  it.each([
    ["a stray byte inserted", (b: Buffer, at: number) => insert(b, at + 13, "x"), "checksum"],
    ["a stray newline inserted", (b: Buffer, at: number) => insert(b, at + 14, "\n"), "checksum"],
    [
      "a line cut short",
      (b: Buffer, at: number) => Buffer.concat([b.subarray(0, at + 8), b.subarray(at + 14)]),
      "unparsable",
    ],
    [
      "a line without a checksum",
      (b: Buffer, at: number) => insert(b, at, '{"n":9}\n'),
      "unchecked_after_checked",
    ],
    [
      "a checksummed line that is valid JSON but not an object",
      (b: Buffer, at: number) => insert(b, at, framed(9, "[1,2]")),
      "not_an_object",
    ],
    [
      "a line out of order",
      (b: Buffer, at: number) => insert(b, at, framed(1, '{"n":7}')),
      "out_of_order",
    ],
  ])("refuses %s in the middle", async (_what, damage, reason) => {
    const path = await written(4);
    const at = lineStarts(path)[1] ?? 0;
    writeFileSync(path, damage(readFileSync(path), at));
    expect(() => Journal.open(path)).toThrow(
      expect.objectContaining({ code: "ERR_JOURNAL_DAMAGED", reason, field: `${path}@${at}` }),
    );
  });

  it("refuses an old line that is not a JSON object, naming where it is", () => {
    const path = tempFile();
    mkdirSync(dirname(path), { recursive: true });
    for (const [text, offset] of [
      ['{"n":0}\nnull\n{"n":2}\n', 8],
      ['{"n":0}\n"text"\n{"n":2}\n', 8],
      ['{"n":0}\n{"n":1}\n[]\n{"n":2}\n', 16],
      ['{"n":0}\n{"n":\n{"n":2}\n', 8],
    ] as const) {
      writeFileSync(path, text);
      expect(() => Journal.open(path), text).toThrow(
        expect.objectContaining({ code: "ERR_JOURNAL_DAMAGED", field: `${path}@${offset}` }),
      );
    }
  });

  it("replays a duplicated line once", async () => {
    const path = await written(3);
    const bytes = readFileSync(path);
    const [, second = 0, third = 0] = lineStarts(path);
    writeFileSync(
      path,
      Buffer.concat([
        bytes.subarray(0, third),
        bytes.subarray(second, third),
        bytes.subarray(third),
      ]),
    );
    const again = Journal.open<{ n: number }>(path);
    expect(again.records.map((r) => r.record.n)).toEqual([0, 1, 2]);
    expect(again.report.duplicates).toBe(1);
    await again.journal.close();
  });

  it("still replays a journal written before checksums, and appends checksummed lines after it", async () => {
    const path = tempFile();
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, '{"n":0}\n{"n":1}\n');
    const old = Journal.open<{ n: number }>(path);
    expect(old.records.map((r) => [r.record.n, r.seq])).toEqual([
      [0, undefined],
      [1, undefined],
    ]);
    expect(old.report.legacy).toBe(2);
    await old.journal.append({ n: 2 });
    await old.journal.close();
    expect(replayed(path)).toEqual([0, 1, 2]);
  });

  it("check reports and repair keeps the damaged lines aside, the rest in place", async () => {
    const path = await written(6);
    const bytes = readFileSync(path);
    const starts = lineStarts(path);
    const third = starts[2] ?? 0;
    const fourth = starts[3] ?? 0;
    bytes[third + 13] = (bytes[third + 13] ?? 0) ^ 0x01;
    writeFileSync(path, Buffer.concat([bytes, Buffer.from("7 00")]));
    const report = Journal.check(path);
    expect(report).toMatchObject({
      records: 5,
      damaged: [{ offset: third, length: fourth - third, reason: "checksum" }],
      tornTail: { offset: bytes.length, bytes: 4 },
    });
    const repaired = Journal.repair(path);
    expect(readFileSync(repaired.keptIn ?? "")).toEqual(
      Buffer.concat([bytes.subarray(third, fourth), Buffer.from("7 00")]),
    );
    expect(readFileSync(repaired.backup ?? "")).toEqual(
      Buffer.concat([bytes, Buffer.from("7 00")]),
    );
    expect(Journal.check(path)).toMatchObject({ records: 5, damaged: [] });
    expect(replayed(path)).toEqual([0, 1, 3, 4, 5]);
    expect(readdirSync(dirname(path)).filter((f) => f.includes(".repair-"))).toEqual([]);
  });

  it("reads a record back from where append and replay said it is", async () => {
    const path = tempFile();
    const first = Journal.open<{ n: number; text: string }>(path);
    // Multi-byte characters: places are in bytes, not characters.
    const record = (n: number) => ({ n, text: `Å${"ö".repeat(n)}` });
    const placed = await Promise.all(
      Array.from({ length: 50 }, (_, n) => first.journal.append(record(n))),
    );
    placed.forEach((at, n) => expect(first.journal.read(at)).toEqual(record(n)));
    await first.journal.close();
    const second = Journal.open<{ n: number; text: string }>(path);
    expect(second.records.map((r) => r.at)).toEqual(
      placed.map(({ offset, length }) => ({ offset, length })),
    );
    const later = await second.journal.append(record(50));
    expect(second.journal.read(later)).toEqual(record(50));
    expect(second.journal.read(placed[7] ?? later)).toEqual(record(7));
    // A place that is not the start of a line is refused, not misread.
    expect(() => second.journal.read({ offset: 3, length: 10 })).toThrow(/no journal record/);
    await second.journal.close();
  });

  it("closes after writing a batch that queued behind the one on its way to disk", async () => {
    const path = tempFile();
    const { journal } = Journal.open<{ n: number }>(path);
    const first = journal.append({ n: 1 });
    // Let the first write start, then queue a second behind it and close at once.
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    const second = journal.append({ n: 2 });
    const closed = journal.close();
    const outcome = await Promise.race([
      Promise.all([first, second, closed]).then(() => "closed"),
      new Promise((resolve) => setTimeout(() => resolve("hung"), 2_000)),
    ]);
    expect(outcome).toBe("closed");
    expect(replayed(path)).toEqual([1, 2]);
    expect(() => journal.read({ offset: 0, length: 8 })).toThrow(/closed/);
    expect(existsSync(path)).toBe(true);
  });
});

describe("Journal.compact", () => {
  /** Compacts the journal at `path` keeping the even records; resolves with what it kept. */
  async function compactEven(path: string): Promise<void> {
    const { journal } = Journal.open<{ n: number }>(path);
    await journal.compact((lines) => [...lines()].filter((l) => l.record.n % 2 === 0));
    await journal.append({ n: 100 });
    await journal.close();
  }

  it("keeps what it is told, with sequence numbers, and appends go on after it", async () => {
    const path = await written(10);
    const before = statSync(path).size;
    await compactEven(path);
    expect(replayed(path)).toEqual([0, 2, 4, 6, 8, 100]);
    expect(statSync(path).size).toBeLessThan(before);
    expect(Journal.check(path).damaged).toEqual([]);
    // Sequence numbers are kept: the line of { n: 4 } is still number 5.
    expect(readFileSync(path, "utf8")).toMatch(/^5 [0-9a-f]{8} \{"n":4\}$/m);
  });

  it("refuses a compacted journal cut short, rather than replaying it short", async () => {
    const path = await written(10);
    await compactEven(path);
    // Cut within the compacted part: what is left looks like a whole journal with a torn tail.
    const starts = lineStarts(path);
    truncateSync(path, (starts[2] ?? 0) + 3);
    expect(() => Journal.open(path)).toThrow(
      expect.objectContaining({ code: "ERR_JOURNAL_DAMAGED", reason: "compacted_incomplete" }),
    );
    // Nothing was changed: no torn tail was cut off.
    expect(statSync(path).size).toBe((starts[2] ?? 0) + 3);
  });

  it("refuses a compacted journal that is gone, rather than starting empty", async () => {
    const path = await written(4);
    await compactEven(path);
    rmSync(path);
    expect(() => Journal.open(path)).toThrow(
      expect.objectContaining({ code: "ERR_JOURNAL_DAMAGED", reason: "compacted_incomplete" }),
    );
    expect(existsSync(path)).toBe(false);
  });

  it("refuses an unreadable compaction marker", async () => {
    const path = await written(4);
    await compactEven(path);
    writeFileSync(`${path}.compacted`, "{not json");
    expect(() => Journal.open(path)).toThrow(
      expect.objectContaining({ code: "ERR_JOURNAL_DAMAGED", reason: "compacted_marker" }),
    );
  });

  it("refuses damage inside the compacted part like damage anywhere", async () => {
    const path = await written(10);
    await compactEven(path);
    const bytes = readFileSync(path);
    const at = (lineStarts(path)[1] ?? 0) + 14;
    bytes[at] = (bytes[at] ?? 0) ^ 0x01;
    writeFileSync(path, bytes);
    expect(() => Journal.open(path)).toThrow(
      expect.objectContaining({ code: "ERR_JOURNAL_DAMAGED", reason: "checksum" }),
    );
  });

  it("removes a compaction's temporary file left by a crash before its rename", async () => {
    const path = await written(4);
    writeFileSync(`${path}.compact-tmp`, "half a new journal");
    expect(replayed(path)).toEqual([0, 1, 2, 3]);
    expect(existsSync(`${path}.compact-tmp`)).toBe(false);
  });
});
