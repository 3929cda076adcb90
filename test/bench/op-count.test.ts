import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../..", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "stafett-op-count-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the fixture in a child process with the bench's counters loaded; returns what they wrote. */
function countsOf(env: Record<string, string>): unknown[] {
  execFileSync(
    process.execPath,
    [
      "--conditions=source",
      "--import=tsx",
      `--import=${join(root, "bench/op-count.mjs")}`,
      join(root, "test/bench/op-count-fixture.ts"),
    ],
    { cwd: root, env: { ...process.env, ...env }, timeout: 20_000 },
  );
  return readdirSync(dir).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as unknown);
}

describe("bench/op-count.mjs (the handoff ideal's counts)", () => {
  it("counts each primitive the library performs through its named node:crypto imports", () => {
    const written = countsOf({ STAFETT_BENCH_OPCOUNT_DIR: dir, STAFETT_ORG: "se:hub:vast" });
    expect(written).toEqual([
      {
        service: "se:hub:vast",
        counts: {
          // Seal to 2: an ephemeral key, an agreement and a wrap each, one encryption.
          x25519KeyGen: 2,
          x25519Agree: 3,
          aesKwWrap: 2,
          aesGcmEncrypt: 1,
          // Open once: an agreement, an unwrap, a decryption.
          aesKwUnwrap: 1,
          aesGcmDecrypt: 1,
          ed25519Sign: 1,
          ed25519Verify: 1,
        },
      },
    ]);
  });
});
