import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateEncryptionKey, generateSigningKey, type KeyPairJwk } from "./keys.js";
import { loadIdentity, readPrivateJwk, readSecretFile } from "./key-files.js";

let dir: string;
let signing: KeyPairJwk;
let encryption: KeyPairJwk;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stafett-key-files-"));
  [signing, encryption] = await Promise.all([generateSigningKey(), generateEncryptionKey()]);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Writes `content` to a fresh file and sets its mode explicitly (a create mode is subject to umask). */
function file(name: string, content: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

const refusedForPermissions = { code: "ERR_KEY_INVALID", reason: "permissions" };

describe("private key and secret files", () => {
  it("refuses a private JWK that others or the group can read", () => {
    for (const mode of [0o644, 0o640, 0o604, 0o666]) {
      const path = file(
        `sig-${mode.toString(8)}.jwk.json`,
        JSON.stringify(signing.privateJwk),
        mode,
      );
      expect(() => readPrivateJwk(path)).toThrow(
        expect.objectContaining({ ...refusedForPermissions, field: path }),
      );
    }
  });

  it("accepts a private JWK only its owner can read", () => {
    const path = file("sig-600.jwk.json", JSON.stringify(signing.privateJwk), 0o600);
    expect(readPrivateJwk(path).d).toBe(signing.privateJwk.d);
    expect(
      readPrivateJwk(file("sig-400.jwk.json", JSON.stringify(signing.privateJwk), 0o400)).d,
    ).toBe(signing.privateJwk.d);
  });

  it("refuses a public JWK where a private one is expected", () => {
    const path = file("sig-public.jwk.json", JSON.stringify(signing.publicJwk), 0o600);
    expect(() => readPrivateJwk(path)).toThrow(
      expect.objectContaining({ code: "ERR_KEY_INVALID", reason: "not_private" }),
    );
  });

  it("refuses a secret file (an nkey seed, a TLS key) with mode 0644, and reads it at 0600", () => {
    const seed = "SUAEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMP";
    expect(() => readSecretFile(file("user-644.nk", `${seed}\n`, 0o644))).toThrow(
      expect.objectContaining(refusedForPermissions),
    );
    expect(new TextDecoder().decode(readSecretFile(file("user-600.nk", `${seed}\n`, 0o600)))).toBe(
      seed,
    );
  });

  it("does not put the key material in the error", () => {
    const path = file("leaky-644.jwk.json", JSON.stringify(signing.privateJwk), 0o644);
    let error: unknown;
    try {
      readPrivateJwk(path);
    } catch (err) {
      error = err;
    }
    expect(JSON.stringify(error)).not.toContain(String(signing.privateJwk.d));
  });

  it("loads an identity from 0600 files and refuses it when either file is readable by others", async () => {
    const sig = file("id-sig.jwk.json", JSON.stringify(signing.privateJwk), 0o600);
    const enc = file("id-enc.jwk.json", JSON.stringify(encryption.privateJwk), 0o600);
    expect((await loadIdentity("se:municipality:0180", [sig], [enc])).id).toBe(
      "se:municipality:0180",
    );
    chmodSync(enc, 0o644);
    await expect(loadIdentity("se:municipality:0180", [sig], [enc])).rejects.toMatchObject(
      refusedForPermissions,
    );
  });

  it("refuses a missing file with a config error, not a crash", () => {
    expect(() => readSecretFile(join(dir, "absent.nk"))).toThrow(
      expect.objectContaining({ code: "ERR_CONFIG_INVALID", reason: "unreadable" }),
    );
  });
});
