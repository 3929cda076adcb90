import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

describe("Journal", () => {
  it("replays what was appended, in order, after a reopen", async () => {
    const path = tempFile();
    const { journal, records } = Journal.open<{ n: number }>(path);
    expect(records).toEqual([]);
    await Promise.all(Array.from({ length: 100 }, (_, n) => journal.append({ n })));
    await journal.close();
    const again = Journal.open<{ n: number }>(path);
    expect(again.records.map((r) => r.record.n)).toEqual(Array.from({ length: 100 }, (_, n) => n));
    await again.journal.close();
  });

  it("drops a torn last record and keeps appending after the good ones", async () => {
    const path = tempFile();
    const first = Journal.open<{ n: number }>(path);
    await first.journal.append({ n: 1 });
    await first.journal.close();
    appendFileSync(path, '{"n":2'); // a crash mid-write
    const second = Journal.open<{ n: number }>(path);
    expect(second.records.map((r) => r.record)).toEqual([{ n: 1 }]);
    await second.journal.append({ n: 3 });
    await second.journal.close();
    expect(readFileSync(path, "utf8")).toBe('{"n":1}\n{"n":3}\n');
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
    expect(second.records.map((r) => r.at)).toEqual(placed);
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
    expect(readFileSync(path, "utf8")).toBe('{"n":1}\n{"n":2}\n');
    expect(() => journal.read({ offset: 0, length: 8 })).toThrow(/closed/);
  });
});
