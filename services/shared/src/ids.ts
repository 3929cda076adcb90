/**
 * Event ids. A new event gets a random UUID. An event derived from another (a receipt, a
 * forward, a rejection, an escalation) gets a name-based UUID (RFC 9562 v5) of what it derives
 * from, so a service that crashes and does the same work again publishes the same id, and the
 * stream's de-duplication window drops the second copy: nothing doubled.
 */
import { createHmac } from "node:crypto";
import { parse, v5 } from "uuid";

/**
 * Namespace of Stafett's derived ids (a fixed random UUID), parsed once: given as strings, uuid
 * parses the namespace and converts the name in JavaScript on every call, which was 2 % of a
 * hub's CPU (three derived ids per referral). The ids are the same (ids.test.ts).
 */
const NAMESPACE = parse("6f1c2b1e-4f7a-4a57-9d3e-5b8a0c2e9d41");

/** A UTF-16 surrogate without its pair: not a character, so not part of any id. */
const LONE_SURROGATE = /\p{Cs}/u;

export function derivedId(...parts: string[]): string {
  const name = parts.join("\u001f");
  // UTF-8 would turn a lone surrogate into U+FFFD, and two different names into one id (uuid's
  // own conversion threw instead).
  if (LONE_SURROGATE.test(name)) throw new TypeError("a derived id's parts must be well-formed");
  return v5(Buffer.from(name, "utf8"), NAMESPACE);
}

/**
 * How a party derives the ids of the events it derives from others: the same parts give the same
 * id (a crash and a redelivery publish the same ids, and the stream drops the copies), but the
 * ids are keyed with the party's own secret, so no other participant can compute one in advance
 * and publish something under it first (the stream would then drop the real event as a
 * duplicate). A UUID of version 8 (RFC 9562: its bits are the application's own).
 */
export type DeriveId = (...parts: string[]) => string;

export function keyedIds(secret: Uint8Array): DeriveId {
  if (secret.byteLength < 32) throw new TypeError("a derived-id secret has at least 32 bytes");
  return (...parts) => {
    const name = parts.join("\u001f");
    if (LONE_SURROGATE.test(name)) throw new TypeError("a derived id's parts must be well-formed");
    const b = createHmac("sha256", secret).update(name, "utf8").digest();
    b[6] = ((b[6] ?? 0) & 0x0f) | 0x80;
    b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
    const h = b.subarray(0, 16).toString("hex");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
  };
}
