/** Reading and writing key and trust files. Private keys are written 0600 and refused when others can read them. */
import { readFileSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import {
  StafettError,
  importSigningKey,
  publicJwkOf,
  type KeyHandle,
  type PrivateJwk,
  type PublicJwk,
} from "@stafett/shared";

export function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as unknown;
  } catch (cause) {
    throw new StafettError("ERR_CONFIG_INVALID", `cannot read JSON from ${path}`, {
      reason: "unreadable",
      field: path,
      cause,
    });
  }
}

/** A private JWK file; refused when its mode lets group or others read it. */
export function readPrivateJwk(path: string): PrivateJwk {
  const mode = statSync(path).mode & 0o077;
  if (mode !== 0) {
    throw new StafettError(
      "ERR_KEY_INVALID",
      `private key file ${path} is readable by others (chmod 600 it)`,
      {
        reason: "permissions",
        field: path,
      },
    );
  }
  const jwk = readJson(path) as PrivateJwk;
  if (typeof jwk.d !== "string")
    throw new StafettError("ERR_KEY_INVALID", `${path} holds no private key`, {
      reason: "not_private",
      field: path,
    });
  return jwk;
}

export function readPublicJwk(path: string): PublicJwk {
  return publicJwkOf(readJson(path) as PublicJwk);
}

/** Anchor public keys: a JWK file, or a file with a JSON array of JWKs (comma-separated paths allowed). */
export async function readAnchors(paths: string): Promise<KeyHandle[]> {
  const out: KeyHandle[] = [];
  for (const path of paths
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const value = readJson(path);
    for (const jwk of Array.isArray(value) ? value : [value])
      out.push(await importSigningKey(publicJwkOf(jwk as PublicJwk)));
  }
  return out;
}

export function writeFile(path: string, data: string | Uint8Array, secret = false): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data, { mode: secret ? 0o600 : 0o644 });
}
