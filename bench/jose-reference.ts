/**
 * The same four JOSE operations done by jose alone (WebCrypto underneath), as the library did
 * them before its node:crypto fast path: the reference the fast path is compared with.
 */
import {
  FlattenedSign,
  flattenedDecrypt,
  flattenedVerify,
  GeneralEncrypt,
  type GeneralJWE,
} from "jose";
import {
  CONTENT_ENC,
  EVENT_JWS_TYP,
  KEY_WRAP_ALG,
  SIGNING_ALG,
  type KeyHandle,
} from "@stafett/shared";

const encoder = new TextEncoder();

export async function joseSignDetached(payload: Uint8Array, signer: KeyHandle): Promise<string> {
  const jws = await new FlattenedSign(payload)
    .setProtectedHeader({ alg: SIGNING_ALG, kid: signer.kid, typ: EVENT_JWS_TYP })
    .sign(signer.key);
  return `${jws.protected ?? ""}..${jws.signature}`;
}

export async function joseVerifyDetached(
  jws: string,
  payload: Uint8Array,
  key: KeyHandle,
): Promise<void> {
  const [protectedHeader = "", , signature = ""] = jws.split(".");
  await flattenedVerify(
    { protected: protectedHeader, payload: Buffer.from(payload).toString("base64url"), signature },
    key.key,
    { algorithms: [SIGNING_ALG] },
  );
}

export async function joseSeal(
  plaintext: unknown,
  recipients: readonly KeyHandle[],
  referralId: string,
): Promise<string> {
  const jwe = new GeneralEncrypt(encoder.encode(JSON.stringify(plaintext)))
    .setProtectedHeader({ enc: CONTENT_ENC, cty: "application/json" })
    .setAdditionalAuthenticatedData(encoder.encode(referralId));
  for (const r of recipients) {
    jwe.addRecipient(r.key).setUnprotectedHeader({ alg: KEY_WRAP_ALG, kid: r.kid });
  }
  return JSON.stringify(await jwe.encrypt());
}

export async function joseOpen(sealed: string, reader: KeyHandle): Promise<unknown> {
  const jwe = JSON.parse(sealed) as GeneralJWE;
  const recipient = jwe.recipients.find((r) => r.header?.kid === reader.kid);
  if (recipient === undefined) throw new Error("not a recipient");
  const { plaintext } = await flattenedDecrypt(
    {
      protected: jwe.protected,
      header: recipient.header,
      encrypted_key: recipient.encrypted_key,
      iv: jwe.iv,
      ciphertext: jwe.ciphertext,
      tag: jwe.tag,
      aad: jwe.aad,
    },
    reader.key,
    { keyManagementAlgorithms: [KEY_WRAP_ALG], contentEncryptionAlgorithms: [CONTENT_ENC] },
  );
  return JSON.parse(new TextDecoder().decode(plaintext)) as unknown;
}
