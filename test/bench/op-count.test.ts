import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { OperationCounter, operationsPerReferral } from "../../bench/operations.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), "stafett-op-count-"));
const counter = new OperationCounter(tmp);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the fixture as the bench runs a service (OperationCounter.withCounter); returns the counts. */
function countsOf(service: string): unknown[] {
  const { env, nodeArgs } = counter.withCounter({ STAFETT_ORG: service }, [
    "--conditions=source",
    "--import=tsx",
  ]);
  execFileSync(process.execPath, [...nodeArgs, join(root, "test/bench/op-count-fixture.ts")], {
    cwd: root,
    env: { ...process.env, ...env },
    timeout: 20_000,
  });
  return counter.read();
}

describe("bench/op-count.mjs (the handoff ideal's counts)", () => {
  it("counts each primitive the library performs through its named node:crypto imports", () => {
    const written = countsOf("se:hub:vast");
    expect(written).toEqual([
      {
        service: "se:hub:vast",
        counts: {
          // Seal to 2: an ephemeral key, an agreement and a wrap each; one encryption.
          x25519KeyGen: 2,
          aesKwWrap: 2,
          aesGcmEncrypt: 1,
          // 2 agreements sealing and 1 opening; the opening's unwrap and decryption.
          x25519Agree: 3,
          aesKwUnwrap: 1,
          aesGcmDecrypt: 1,
          ed25519Sign: 1,
          ed25519Verify: 1,
        },
      },
    ]);
  });

  it("leaves out a torn count file, and divides the counts of the processes by the referrals", () => {
    const other = new OperationCounter(join(tmp, "other"));
    const otherDir = other.withCounter({}).env["STAFETT_BENCH_OPCOUNT_DIR"] ?? "";
    writeFileSync(join(otherDir, "1.json"), '{"service":"se:hub:vast","counts":{"ed25519Sign":3');
    writeFileSync(
      join(otherDir, "2.json"),
      JSON.stringify({
        service: "se:municipality:0180",
        counts: { ed25519Sign: 10, ed25519Verify: 20 },
      }),
    );
    const read = other.read();
    expect(read.map((c) => c.service)).toEqual(["se:municipality:0180"]);
    const ops = operationsPerReferral(
      [...read.map((c) => c.counts), { ed25519Sign: 30, x25519Agree: 10 }],
      10,
      { publish: 4, consume: 4 },
    );
    expect(ops).toEqual({
      ed25519Sign: 4,
      ed25519Verify: 2,
      x25519KeyGen: 0,
      x25519Agree: 1,
      aesKwWrap: 0,
      aesKwUnwrap: 0,
      aesGcmEncrypt: 0,
      aesGcmDecrypt: 0,
      publish: 4,
      consume: 4,
    });
  });
});
