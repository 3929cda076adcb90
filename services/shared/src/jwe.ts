/**
 * The personal part as a JWE (RFC 7516) in general JSON serialization, to any number of
 * recipients: ECDH-ES+A256KW on X25519 (RFC 8037) per recipient, A256GCM content encryption.
 * The JWE's AAD is the referral id, so a sealed part cannot be moved into another referral.
 */
import { flattenedDecrypt, GeneralEncrypt, type GeneralJWE } from "jose";
import { StafettError } from "./errors.js";
import { CONTENT_ENC, KEY_WRAP_ALG, type KeyHandle } from "./keys.js";
import { toBase64Url } from "./base64url.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export async function seal(
  plaintext: unknown,
  recipients: readonly KeyHandle[],
  referralId: string,
): Promise<string> {
  if (recipients.length === 0) {
    throw new StafettError("ERR_NOT_RECIPIENT", "a sealed part needs at least one recipient", {
      reason: "no_recipients",
    });
  }
  const jwe = new GeneralEncrypt(encoder.encode(JSON.stringify(plaintext)))
    .setProtectedHeader({ enc: CONTENT_ENC, cty: "application/json" })
    .setAdditionalAuthenticatedData(encoder.encode(referralId));
  for (const r of recipients) {
    jwe.addRecipient(r.key).setUnprotectedHeader({ alg: KEY_WRAP_ALG, kid: r.kid });
  }
  return JSON.stringify(await jwe.encrypt());
}

/** The kids that a sealed part is addressed to, read from its per-recipient headers. */
export function recipientKids(sealed: string): string[] {
  return parseGeneralJwe(sealed).recipients.map((r) =>
    typeof r.header?.kid === "string" ? r.header.kid : "",
  );
}

export async function open(
  sealed: string,
  reader: KeyHandle,
  referralId: string,
): Promise<unknown> {
  const jwe = parseGeneralJwe(sealed);
  const recipient = jwe.recipients.find((r) => r.header?.kid === reader.kid);
  if (recipient === undefined) {
    throw new StafettError(
      "ERR_NOT_RECIPIENT",
      "the reader is not a recipient of the sealed part",
      {
        reason: "not_recipient",
        field: "personal",
      },
    );
  }
  if (jwe.aad !== toBase64Url(encoder.encode(referralId))) {
    throw new StafettError("ERR_DECRYPT_FAILED", "sealed part belongs to another referral", {
      reason: "aad_mismatch",
      field: "personal",
    });
  }
  let plaintext: Uint8Array;
  try {
    const flat = {
      protected: jwe.protected,
      unprotected: jwe.unprotected,
      header: recipient.header,
      encrypted_key: recipient.encrypted_key,
      iv: jwe.iv,
      ciphertext: jwe.ciphertext,
      tag: jwe.tag,
      aad: jwe.aad,
    };
    ({ plaintext } = await flattenedDecrypt(flat, reader.key, {
      keyManagementAlgorithms: [KEY_WRAP_ALG],
      contentEncryptionAlgorithms: [CONTENT_ENC],
    }));
  } catch (cause) {
    throw new StafettError("ERR_DECRYPT_FAILED", "sealed part does not decrypt", {
      reason: "check_failed",
      field: "personal",
      cause,
    });
  }
  try {
    return JSON.parse(decoder.decode(plaintext)) as unknown;
  } catch (cause) {
    throw new StafettError("ERR_PERSONAL_INVALID", "sealed part is not UTF-8 JSON", {
      reason: "not_json",
      field: "personal",
      cause,
    });
  }
}

function parseGeneralJwe(sealed: string): GeneralJWE {
  let value: unknown;
  try {
    value = JSON.parse(sealed);
  } catch (cause) {
    throw new StafettError("ERR_MALFORMED", "sealed part is not a JWE JSON serialization", {
      reason: "not_json",
      field: "personal",
      cause,
    });
  }
  if (
    value === null ||
    typeof value !== "object" ||
    !("recipients" in value) ||
    !Array.isArray(value.recipients) ||
    !("ciphertext" in value) ||
    typeof value.ciphertext !== "string"
  ) {
    throw new StafettError("ERR_MALFORMED", "sealed part is not a JWE general JSON serialization", {
      reason: "not_jwe",
      field: "personal",
    });
  }
  return value as GeneralJWE;
}
