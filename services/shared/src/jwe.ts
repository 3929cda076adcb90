/**
 * The personal part as a JWE (RFC 7516) in general JSON serialization, to any number of
 * recipients: ECDH-ES+A256KW on X25519 (RFC 7518 section 4.6, RFC 8037) per recipient, A256GCM
 * content encryption. The JWE's AAD is the referral id, so a sealed part cannot be moved into
 * another referral.
 *
 * Sealing and opening use node:crypto directly for exactly these algorithms, writing what jose
 * writes member for member (with one recipient jose puts `epk` in the protected header, with
 * several in each recipient's header; both are read), and opening what any JOSE library
 * writes with them (jose-interop.test.ts checks both directions). jose goes through WebCrypto,
 * a promise and a key import per step, and seals and opens at a quarter of this rate or less
 * (bench/results.md).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  randomBytes,
  type JsonWebKey,
  type KeyObject,
} from "node:crypto";
import { StafettError } from "./errors.js";
import { CONTENT_ENC, KEY_WRAP_ALG, keyObjectOf, type KeyHandle } from "./keys.js";
import { toBase64Url } from "./base64url.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The JWE as written and read here: general JSON serialization (RFC 7516 section 7.2.1). */
interface GeneralJwe {
  protected?: string;
  unprotected?: Record<string, unknown>;
  recipients: ({ header?: Record<string, unknown>; encrypted_key?: string } | null)[];
  aad?: string;
  iv?: string;
  ciphertext: string;
  tag?: string;
}

interface EphemeralKey {
  x: string;
  crv: "X25519";
  kty: "OKP";
}

/** The protected header with several recipients (each has its own `epk`); jose's member order. */
const SHARED_PROTECTED = toBase64Url(
  encoder.encode(JSON.stringify({ enc: CONTENT_ENC, cty: "application/json" })),
);
/** RFC 3394 section 2.2.3.1 default initial value. */
const AES_KW_IV = Buffer.from("A6A6A6A6A6A6A6A6", "hex");
const CEK_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

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
  const keys = recipients.map((r) => {
    const key = keyObjectOf(r);
    if (key.type !== "public" || key.asymmetricKeyType !== "x25519") {
      throw new StafettError("ERR_KEY_INVALID", "a recipient key must be a public X25519 key", {
        reason: "kty",
        field: "recipients",
      });
    }
    return key;
  });
  const cek = randomBytes(CEK_BYTES);
  const wrapped = keys.map((key) => wrapFor(key, cek));
  const single = wrapped[0];
  const encodedProtected =
    recipients.length === 1 && single !== undefined
      ? toBase64Url(
          encoder.encode(
            JSON.stringify({ enc: CONTENT_ENC, cty: "application/json", epk: single.epk }),
          ),
        )
      : SHARED_PROTECTED;
  const encodedAad = toBase64Url(encoder.encode(referralId));
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv("aes-256-gcm", cek, iv);
  cipher.setAAD(additionalData(encodedProtected, encodedAad === "" ? undefined : encodedAad));
  const ciphertext = Buffer.concat([
    cipher.update(encoder.encode(JSON.stringify(plaintext))),
    cipher.final(),
  ]);
  const jwe: GeneralJwe = {
    ciphertext: ciphertext.toString("base64url"),
    iv: iv.toString("base64url"),
    tag: cipher.getAuthTag().toString("base64url"),
    ...(encodedAad === "" ? {} : { aad: encodedAad }),
    protected: encodedProtected,
    recipients: wrapped.map((w, i) => ({
      encrypted_key: w.encryptedKey,
      header:
        recipients.length === 1
          ? { alg: KEY_WRAP_ALG, kid: recipients[i]?.kid }
          : { alg: KEY_WRAP_ALG, kid: recipients[i]?.kid, epk: w.epk },
    })),
  };
  return JSON.stringify(jwe);
}

/** ECDH-ES+A256KW for one recipient: a fresh ephemeral key, the agreed KEK, the wrapped CEK. */
function wrapFor(recipient: KeyObject, cek: Buffer): { epk: EphemeralKey; encryptedKey: string } {
  // The public half comes out of the generation as a JWK. Exporting it afterwards
  // (`publicKey.export({ format: "jwk" })`) deadlocks Node 20 now and then: a garbage collection
  // during the export can destroy the finished generation job, which takes the key's lock that
  // the export holds. (A DER export would also cost more than generating the key.)
  const ephemeral = generateX25519WithJwk("x25519", { publicKeyEncoding: { format: "jwk" } });
  const { x } = ephemeral.publicKey;
  if (typeof x !== "string") throw new Error("an X25519 public key without x");
  const kek = concatKdf(diffieHellman({ privateKey: ephemeral.privateKey, publicKey: recipient }));
  const cipher = createCipheriv("id-aes256-wrap", kek, AES_KW_IV);
  const encryptedKey = Buffer.concat([cipher.update(cek), cipher.final()]);
  return {
    epk: { x, crv: "X25519", kty: "OKP" },
    encryptedKey: encryptedKey.toString("base64url"),
  };
}

/**
 * `generateKeyPairSync("x25519", { publicKeyEncoding: { format: "jwk" } })`: Node encodes only
 * the public half when only its encoding is given, which @types/node has no overload for.
 */
const generateX25519WithJwk = generateKeyPairSync as unknown as (
  type: "x25519",
  options: { publicKeyEncoding: { format: "jwk" } },
) => { publicKey: JsonWebKey; privateKey: KeyObject };

const uint32be = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const lengthPrefixed = (b: Uint8Array): Buffer => Buffer.concat([uint32be(b.byteLength), b]);
const ROUND_ONE = uint32be(1);
const KEY_BITS = uint32be(256);
const ALGORITHM_ID = lengthPrefixed(encoder.encode(KEY_WRAP_ALG));
const EMPTY_PARTY = lengthPrefixed(new Uint8Array(0));
const DEFAULT_OTHER_INFO = Buffer.concat([ALGORITHM_ID, EMPTY_PARTY, EMPTY_PARTY, KEY_BITS]);

/**
 * The Concat KDF of NIST SP 800-56A as RFC 7518 section 4.6.2 applies it: one SHA-256 round
 * gives the 256-bit key-wrapping key. A shared secret of all zeros (a low-order public key) is
 * refused, as WebCrypto does.
 */
function concatKdf(z: Buffer, apu?: Uint8Array, apv?: Uint8Array): Buffer {
  if (z.every((b) => b === 0)) throw new Error("X25519 shared secret is all zeros");
  const otherInfo =
    apu === undefined && apv === undefined
      ? DEFAULT_OTHER_INFO
      : Buffer.concat([
          ALGORITHM_ID,
          lengthPrefixed(apu ?? new Uint8Array(0)),
          lengthPrefixed(apv ?? new Uint8Array(0)),
          KEY_BITS,
        ]);
  return createHash("sha256").update(ROUND_ONE).update(z).update(otherInfo).digest();
}

/** AAD of the content encryption: ASCII(BASE64URL(protected) || "." || BASE64URL(aad)) (RFC 7516 5.1 step 14). */
function additionalData(encodedProtected: string, encodedAad: string | undefined): Buffer {
  return Buffer.from(
    encodedAad === undefined ? encodedProtected : `${encodedProtected}.${encodedAad}`,
    "latin1",
  );
}

/** The kids that a sealed part is addressed to, read from its per-recipient headers. */
export function recipientKids(sealed: string): string[] {
  return parseGeneralJwe(sealed).recipients.map((r) =>
    typeof r?.header?.kid === "string" ? r.header.kid : "",
  );
}

export async function open(
  sealed: string,
  reader: KeyHandle,
  referralId: string,
): Promise<unknown> {
  const jwe = parseGeneralJwe(sealed);
  const recipient = jwe.recipients.find((r) => r?.header?.kid === reader.kid);
  if (recipient === undefined || recipient === null) {
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
    plaintext = decryptFor(jwe, recipient, keyObjectOf(reader));
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

/** Thrown inside decryption; `open` turns every failure into ERR_DECRYPT_FAILED. */
class JweInvalid extends Error {
  override readonly name = "JweInvalid";
}

const STRICT_BASE64URL = /^[A-Za-z0-9_-]*$/;
/** Members that only a private JWK has; an `epk` carrying any is refused (as jose does). */
const PRIVATE_JWK_MEMBERS = ["d", "k", "p", "q", "dp", "dq", "qi", "oth", "priv"];

function decodeMember(value: unknown, member: string): Buffer {
  if (typeof value !== "string" || !STRICT_BASE64URL.test(value) || value.length % 4 === 1) {
    throw new JweInvalid(`${member} is not base64url`);
  }
  return Buffer.from(value, "base64url");
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * RFC 7516 section 5.2 for one recipient of a general JWE, for ECDH-ES+A256KW and A256GCM only:
 * the JOSE header is the union of the protected, shared and per-recipient headers (which must
 * not share a name); `crit` and `zip` are not supported.
 */
function decryptFor(
  jwe: GeneralJwe,
  recipient: { header?: Record<string, unknown>; encrypted_key?: string },
  reader: KeyObject,
): Uint8Array {
  if (reader.type !== "private" || reader.asymmetricKeyType !== "x25519") {
    throw new JweInvalid("the reader's key is not a private X25519 key");
  }
  let protectedHeader: Record<string, unknown> = {};
  if (jwe.protected !== undefined) {
    const parsed: unknown = JSON.parse(decoder.decode(decodeMember(jwe.protected, "protected")));
    if (!isJsonObject(parsed)) throw new JweInvalid("protected header is not an object");
    protectedHeader = parsed;
  }
  const shared = jwe.unprotected ?? {};
  const own = recipient.header ?? {};
  if (!isJsonObject(shared) || !isJsonObject(own)) throw new JweInvalid("header is not an object");
  const header: Record<string, unknown> = {};
  for (const part of [protectedHeader, shared, own]) {
    for (const [name, value] of Object.entries(part)) {
      if (name in header) throw new JweInvalid("header parameter names are not disjoint");
      header[name] = value;
    }
  }
  if (header.crit !== undefined) throw new JweInvalid("crit is not supported");
  if (header.zip !== undefined) throw new JweInvalid("zip is not supported");
  if (header.alg !== KEY_WRAP_ALG) throw new JweInvalid("alg is not ECDH-ES+A256KW");
  if (header.enc !== CONTENT_ENC) throw new JweInvalid("enc is not A256GCM");

  const epk = header.epk;
  if (
    !isJsonObject(epk) ||
    epk.kty !== "OKP" ||
    epk.crv !== "X25519" ||
    typeof epk.x !== "string" ||
    PRIVATE_JWK_MEMBERS.some((m) => m in epk)
  ) {
    throw new JweInvalid("epk is not a public X25519 JWK");
  }
  if (decodeMember(epk.x, "epk.x").byteLength !== 32) throw new JweInvalid("epk.x is not 32 bytes");
  const ephemeral = createPublicKey({
    key: { kty: "OKP", crv: "X25519", x: epk.x },
    format: "jwk",
  });
  const apu = header.apu === undefined ? undefined : decodeMember(header.apu, "apu");
  const apv = header.apv === undefined ? undefined : decodeMember(header.apv, "apv");
  if (apu !== undefined && apv !== undefined && apu.equals(apv)) {
    throw new JweInvalid("apu and apv must differ");
  }
  const kek = concatKdf(diffieHellman({ privateKey: reader, publicKey: ephemeral }), apu, apv);
  const unwrap = createDecipheriv("id-aes256-wrap", kek, AES_KW_IV);
  const cek = Buffer.concat([
    unwrap.update(decodeMember(recipient.encrypted_key, "encrypted_key")),
    unwrap.final(),
  ]);
  if (cek.byteLength !== CEK_BYTES) throw new JweInvalid("content key is not 256 bits");

  const iv = decodeMember(jwe.iv, "iv");
  const tag = decodeMember(jwe.tag, "tag");
  if (iv.byteLength !== IV_BYTES) throw new JweInvalid("iv is not 96 bits");
  if (tag.byteLength !== TAG_BYTES) throw new JweInvalid("tag is not 128 bits");
  if (jwe.aad !== undefined) decodeMember(jwe.aad, "aad");
  const decipher = createDecipheriv("aes-256-gcm", cek, iv);
  decipher.setAAD(additionalData(jwe.protected ?? "", jwe.aad));
  decipher.setAuthTag(tag);
  return Buffer.concat([
    decipher.update(decodeMember(jwe.ciphertext, "ciphertext")),
    decipher.final(),
  ]);
}

/**
 * Parsed JWEs by their text: a receiver asks for a part's recipients and then opens it, and a
 * hub checks who it is sealed to before forwarding, so one text is parsed several times. The
 * parsed objects are only read, never changed. Bounded: cleared when full.
 */
const parsedJwes = new Map<string, GeneralJwe>();
const PARSED_JWES_MAX = 256;

function parseGeneralJwe(sealed: string): GeneralJwe {
  const known = parsedJwes.get(sealed);
  if (known !== undefined) return known;
  const jwe = parseGeneralJweText(sealed);
  if (parsedJwes.size >= PARSED_JWES_MAX) parsedJwes.clear();
  parsedJwes.set(sealed, jwe);
  return jwe;
}

function parseGeneralJweText(sealed: string): GeneralJwe {
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
  return value as GeneralJwe;
}
