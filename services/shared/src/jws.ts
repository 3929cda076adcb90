/**
 * Detached JWS over the exact Event bytes (RFC 7515 appendix F): "<protected>..<signature>".
 * The payload is the ordinary base64url of the bytes (no RFC 7797 b64=false), so any JOSE
 * library verifies it after putting BASE64URL(event) between the dots.
 *
 * Signing and verifying use node:crypto's Ed25519 (RFC 8037 EdDSA) directly: the same bytes
 * that jose produces and accepts (jose-interop.test.ts checks both directions), at about two to
 * three times the rate of jose, which goes through WebCrypto (bench/results.md). Only
 * `alg: EdDSA` exists here, so nothing else needs a general JOSE library.
 */
import {
  createHash,
  createPublicKey,
  sign as ed25519Sign,
  verify as ed25519Verify,
  type KeyObject,
} from "node:crypto";
import { StafettError } from "./errors.js";
import { keyObjectOf, SIGNING_ALG, type KeyHandle } from "./keys.js";
import { toBase64Url } from "./base64url.js";

/** JWS `typ` of a Stafett event signature (RFC 7515 section 4.1.9). */
export const EVENT_JWS_TYP = "stafett-event+jws";

export interface JwsHeader {
  alg: string;
  kid: string;
  typ?: string;
}

/** Encoded protected headers by kid and typ: one signer always writes the same header. */
const encodedHeaders = new Map<string, string>();
/** Parsed protected headers by their encoded form (headers repeat per signer); bounded. */
const parsedHeaders = new Map<string, JwsHeader>();
const HEADER_CACHE_MAX = 4_096;

function remember<V>(cache: Map<string, V>, key: string, value: V): V {
  if (cache.size >= HEADER_CACHE_MAX) cache.clear();
  cache.set(key, value);
  return value;
}

function encodedHeader(kid: string, typ: string): string {
  const key = `${kid}\u0000${typ}`;
  const known = encodedHeaders.get(key);
  if (known !== undefined) return known;
  // Member order as jose writes it: {"alg","kid","typ"}.
  const header = Buffer.from(JSON.stringify({ alg: SIGNING_ALG, kid, typ })).toString("base64url");
  return remember(encodedHeaders, key, header);
}

/** ASCII(BASE64URL(protected) || "." || BASE64URL(payload)) (RFC 7515 section 5.1, step 5). */
function signingInput(encodedProtected: string, payload: Uint8Array): Buffer {
  // Written into one buffer: no joined string that would be copied again.
  const encodedPayload = toBase64Url(payload);
  const input = Buffer.allocUnsafe(encodedProtected.length + 1 + encodedPayload.length);
  const dot = input.write(encodedProtected, 0, "latin1");
  input[dot] = 0x2e;
  input.write(encodedPayload, dot + 1, "latin1");
  return input;
}

export async function signDetached(
  payload: Uint8Array,
  signer: KeyHandle,
  typ = EVENT_JWS_TYP,
): Promise<string> {
  const key = keyObjectOf(signer);
  if (key.type !== "private" || key.asymmetricKeyType !== "ed25519") {
    throw new StafettError("ERR_KEY_INVALID", "a signing key must be a private Ed25519 key", {
      reason: "kty",
    });
  }
  const header = encodedHeader(signer.kid, typ);
  const signature = ed25519Sign(null, signingInput(header, payload), key);
  const jws = `${header}..${signature.toString("base64url")}`;
  rememberOwn(jws, payload, key);
  return jws;
}

/**
 * Signatures this process made, by their JWS text, with the SHA-256 of the bytes signed and the
 * keys. An origin gets its own signed events back inside the hub's notices; when the verifier
 * says whose it is (`ownSigner`), such a signature is checked against this record, which decides
 * exactly what Ed25519 would (these bytes, this signature, this public key: a genuine signature
 * verifies), for a hash instead of a verification. Anything else (other bytes, another key, a
 * signature by someone else, a restart) is verified in full; so is everything a caller does not
 * claim as its own, so two parties sharing a process (tests, the bench) still verify each other.
 */
const ownSignatures = new Map<string, { digest: Buffer; signer: number; publicKey: KeyObject }>();
const OWN_SIGNATURES_MAX = 8_192;
/** Each private key that signed here: a number for the record (not the key itself) and its public key. */
const signers = new WeakMap<KeyObject, { signer: number; publicKey: KeyObject }>();
let nextSigner = 0;

const sha256 = (bytes: Uint8Array): Buffer => createHash("sha256").update(bytes).digest();

function rememberOwn(jws: string, payload: Uint8Array, privateKey: KeyObject): void {
  let known = signers.get(privateKey);
  if (known === undefined) {
    known = { signer: nextSigner++, publicKey: createPublicKey(privateKey) };
    signers.set(privateKey, known);
  }
  if (ownSignatures.size >= OWN_SIGNATURES_MAX) {
    const oldest = ownSignatures.keys().next().value;
    if (oldest !== undefined) ownSignatures.delete(oldest);
  }
  ownSignatures.set(jws, { digest: sha256(payload), ...known });
}

function madeBy(jws: string, payload: Uint8Array, key: KeyObject, signer: KeyHandle): boolean {
  const own = ownSignatures.get(jws);
  return (
    own !== undefined &&
    own.signer === signers.get(keyObjectOf(signer))?.signer &&
    own.publicKey.equals(key) &&
    own.digest.equals(sha256(payload))
  );
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

/**
 * Base64url decoders ignore stray characters and the unused low bits of the last character, so
 * several strings decode to the same signature. Only the one canonical spelling is accepted:
 * a changed character in a message must never leave it valid.
 */
function isCanonicalBase64Url(segment: string | undefined): segment is string {
  if (segment === undefined || segment.length === 0 || !BASE64URL.test(segment)) return false;
  return Buffer.from(segment, "base64url").toString("base64url") === segment;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The protected header as JSON, or undefined when it is not a JSON object. */
function parseHeaderJson(encoded: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(utf8.decode(Buffer.from(encoded, "base64url")));
    if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
    return value as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Reads the protected header without verifying; refuses anything that is not our JWS form. */
export function readJwsHeader(jws: string): JwsHeader {
  const parts = jws.split(".");
  if (
    parts.length !== 3 ||
    parts[1] !== "" ||
    !isCanonicalBase64Url(parts[0]) ||
    !isCanonicalBase64Url(parts[2])
  ) {
    throw new StafettError("ERR_SIGNATURE_INVALID", "signature is not a detached compact JWS", {
      reason: "format",
      field: "signatures",
    });
  }
  const encoded = parts[0];
  const known = parsedHeaders.get(encoded);
  if (known !== undefined) return { ...known };
  const header = parseHeaderJson(encoded);
  if (header === undefined) {
    throw new StafettError("ERR_SIGNATURE_INVALID", "JWS protected header is not valid JSON", {
      reason: "header",
      field: "signatures",
    });
  }
  if (header.alg !== SIGNING_ALG) {
    throw new StafettError("ERR_ALG_UNSUPPORTED", "JWS alg must be EdDSA", {
      reason: "alg",
      field: "signatures",
    });
  }
  if (typeof header.kid !== "string" || header.kid.length === 0) {
    throw new StafettError("ERR_UNKNOWN_KEY", "JWS has no kid", {
      reason: "missing",
      field: "kid",
    });
  }
  // One form of signature everywhere: exactly alg, kid and typ (docs/interop.md). A `b64` or
  // `crit` member would make libraries disagree on what was signed, so it is refused, not read.
  const extra = Object.keys(header).find((k) => k !== "alg" && k !== "kid" && k !== "typ");
  if (extra !== undefined) {
    throw new StafettError(
      "ERR_SIGNATURE_INVALID",
      "JWS protected header has a member other than alg, kid and typ",
      { reason: extra === "crit" ? "crit" : "header_member", field: "signatures" },
    );
  }
  if (header.typ !== EVENT_JWS_TYP) {
    throw new StafettError("ERR_SIGNATURE_INVALID", `JWS typ must be ${EVENT_JWS_TYP}`, {
      reason: "typ",
      field: "signatures",
    });
  }
  const out: JwsHeader = { alg: header.alg, kid: header.kid, typ: header.typ };
  remember(parsedHeaders, encoded, out);
  return { ...out };
}

/**
 * Verifies a detached JWS over `payload` with an Ed25519 public key. Every failure, whatever
 * its cause, is `ERR_SIGNATURE_INVALID` (`check_failed`); `readJwsHeader` names the cause.
 * `ownSigner`, the verifier's own private signing key: its own signatures coming back are
 * checked against the record of them (see `ownSignatures`).
 */
export async function verifyDetached(
  jws: string,
  payload: Uint8Array,
  key: KeyHandle,
  ownSigner?: KeyHandle,
): Promise<void> {
  if (!verifies(jws, payload, key, ownSigner)) {
    throw new StafettError("ERR_SIGNATURE_INVALID", "signature does not verify", {
      reason: "check_failed",
      field: "signatures",
    });
  }
}

function verifies(
  jws: string,
  payload: Uint8Array,
  handle: KeyHandle,
  ownSigner: KeyHandle | undefined,
): boolean {
  let header: JwsHeader;
  try {
    header = readJwsHeader(jws);
  } catch {
    return false;
  }
  if (header.alg !== SIGNING_ALG) return false;
  const key = keyObjectOf(handle);
  if (key.type !== "public" || key.asymmetricKeyType !== "ed25519") return false;
  if (ownSigner !== undefined && madeBy(jws, payload, key, ownSigner)) return true;
  const dot = jws.indexOf(".");
  const encodedProtected = jws.slice(0, dot);
  const signature = Buffer.from(jws.slice(dot + 2), "base64url");
  if (signature.byteLength !== 64) return false;
  try {
    return ed25519Verify(null, signingInput(encodedProtected, payload), key, signature);
  } catch {
    return false;
  }
}
