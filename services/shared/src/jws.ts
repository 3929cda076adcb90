/**
 * Detached JWS over the exact Event bytes (RFC 7515 appendix F): "<protected>..<signature>".
 * The payload is the ordinary base64url of the bytes (no RFC 7797 b64=false), so any JOSE
 * library verifies it after putting BASE64URL(event) between the dots.
 */
import { decodeProtectedHeader, FlattenedSign, flattenedVerify } from "jose";
import { StafettError } from "./errors.js";
import { SIGNING_ALG, type KeyHandle } from "./keys.js";
import { toBase64Url } from "./base64url.js";

/** JWS `typ` of a Stafett event signature (RFC 7515 section 4.1.9). */
export const EVENT_JWS_TYP = "stafett-event+jws";

export interface JwsHeader {
  alg: string;
  kid: string;
  typ?: string;
}

export async function signDetached(
  payload: Uint8Array,
  signer: KeyHandle,
  typ = EVENT_JWS_TYP,
): Promise<string> {
  const jws = await new FlattenedSign(payload)
    .setProtectedHeader({ alg: SIGNING_ALG, kid: signer.kid, typ })
    .sign(signer.key);
  return `${jws.protected ?? ""}..${jws.signature}`;
}

/**
 * Base64url decoders ignore stray characters and the unused low bits of the last character, so
 * several strings decode to the same signature. Only the one canonical spelling is accepted:
 * a changed character in a message must never leave it valid.
 */
function isCanonicalBase64Url(segment: string | undefined): segment is string {
  if (segment === undefined || segment.length === 0 || !/^[A-Za-z0-9_-]+$/.test(segment))
    return false;
  return Buffer.from(segment, "base64url").toString("base64url") === segment;
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
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader({ protected: parts[0], signature: parts[2] });
  } catch (cause) {
    throw new StafettError("ERR_SIGNATURE_INVALID", "JWS protected header is not valid JSON", {
      reason: "header",
      field: "signatures",
      cause,
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
  if (header.crit !== undefined) {
    throw new StafettError("ERR_SIGNATURE_INVALID", "JWS crit parameters are not supported", {
      reason: "crit",
      field: "signatures",
    });
  }
  const out: JwsHeader = { alg: header.alg, kid: header.kid };
  if (typeof header.typ === "string") out.typ = header.typ;
  return out;
}

export async function verifyDetached(
  jws: string,
  payload: Uint8Array,
  key: KeyHandle,
): Promise<void> {
  const [protectedHeader = "", , signature = ""] = jws.split(".");
  try {
    await flattenedVerify(
      { protected: protectedHeader, payload: toBase64Url(payload), signature },
      key.key,
      { algorithms: [SIGNING_ALG] },
    );
  } catch (cause) {
    throw new StafettError("ERR_SIGNATURE_INVALID", "signature does not verify", {
      reason: "check_failed",
      field: "signatures",
      cause,
    });
  }
}
