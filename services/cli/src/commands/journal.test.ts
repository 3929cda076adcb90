import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Journal } from "@stafett/shared";
import { runCli } from "../cli.js";
import type { Io } from "../io.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "stafett-journal-cli-"));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function testIo(): Io & { text: () => string } {
  const out: string[] = [];
  return {
    out: (t) => void out.push(t),
    err: (t) => void out.push(t),
    usage: (t) => {
      out.push(t);
      return 2;
    },
    stdin: () => Promise.resolve(new Uint8Array()),
    stdoutBytes: () => undefined,
    text: () => out.join(""),
  };
}

describe("stafett journal check|repair --state DIR", () => {
  it("names the damaged line; repair keeps it aside and the service's journal opens again", async () => {
    const path = join(dir, "journal.jsonl");
    const { journal } = Journal.open<{ n: number }>(path);
    for (let n = 0; n < 4; n++) await journal.append({ n });
    await journal.close();
    const bytes = readFileSync(path);
    const second = bytes.indexOf(0x0a) + 1;
    bytes[second + 14] = 0x39; // inside the second line's JSON
    writeFileSync(path, bytes);
    expect(() => Journal.open(path)).toThrow(/damaged at byte/);

    const check = testIo();
    expect(await runCli(["journal", "check", "--state", dir], check)).toBe(1);
    expect(check.text()).toContain(`damaged at byte ${second}`);
    expect(check.text()).toContain("checksum");

    const repair = testIo();
    expect(await runCli(["journal", "repair", "--state", dir], repair)).toBe(0);
    const kept = /kept in (\S+);/.exec(repair.text())?.[1] ?? "";
    expect(existsSync(kept)).toBe(true);
    expect(readFileSync(kept).length).toBeGreaterThan(0);

    const again = testIo();
    expect(await runCli(["journal", "check", "--state", dir], again)).toBe(0);
    const reopened = Journal.open<{ n: number }>(path);
    expect(reopened.records.map((r) => r.record.n)).toEqual([0, 2, 3]);
    await reopened.journal.close();
  });

  it("needs --state", async () => {
    const io = testIo();
    expect(await runCli(["journal", "check"], io)).toBe(2);
    expect(io.text()).toContain("--state is required");
  });
});
