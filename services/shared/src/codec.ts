/**
 * Protobuf bytes <-> canonical JSON (the proto3 JSON mapping, as protobufjs produces it).
 * Pure functions; every failure is a coded StafettError.
 */
import protobuf from "protobufjs/minimal.js";
import { stafett } from "./gen/stafett.js";
import { StafettError } from "./errors.js";
import type { EventJson } from "./types.js";

const { Event, SignedEvent } = stafett.v1;

/**
 * proto3 JSON mapping: enums by name, 64-bit ints as strings, bytes as standard base64. The one
 * bytes field of an Event (`forwarded.original`, kilobytes) is converted with Node's native
 * base64 rather than protobufjs's JavaScript one: same text, a tenth of the time.
 */
const JSON_OPTIONS = { enums: String, longs: String, json: true } as const;

/** Standard base64 back to bytes, only when it is the canonical spelling (else undefined). */
function canonicalBase64(text: string): Buffer | undefined {
  const bytes = Buffer.from(text, "base64");
  return bytes.toString("base64") === text ? bytes : undefined;
}

export interface SignedEventParts {
  /** The exact protobuf bytes of the Event; every signature covers these bytes. */
  event: Uint8Array;
  /** Detached compact JWS, the issuer's first. */
  signatures: string[];
}

export function encodeEvent(json: EventJson): Uint8Array {
  let message: stafett.v1.Event;
  try {
    // Anything but canonical base64 goes to protobufjs as it is, which refuses it as before.
    const original = json.forwarded?.original;
    const bytes = original === undefined ? undefined : canonicalBase64(original);
    message = Event.fromObject(
      bytes === undefined ? json : { ...json, forwarded: { ...json.forwarded, original: bytes } },
    );
  } catch (cause) {
    throw new StafettError("ERR_MALFORMED", "event JSON does not map to the protobuf Event", {
      reason: "not_encodable",
      cause,
    });
  }
  return Event.encode(message).finish();
}

export function decodeEvent(bytes: Uint8Array): EventJson {
  let message: stafett.v1.Event;
  try {
    message = Event.decode(readerKeepingUnknowns(bytes));
  } catch (cause) {
    throw new StafettError("ERR_MALFORMED", "event bytes are not a protobuf Event", {
      reason: "not_decodable",
      field: "event",
      cause,
    });
  }
  rejectUnknownFields(message, "event");
  const json = Event.toObject(message, JSON_OPTIONS) as EventJson;
  const original: unknown = json.forwarded?.original;
  if (json.forwarded !== undefined && original instanceof Uint8Array)
    json.forwarded.original = Buffer.from(
      original.buffer,
      original.byteOffset,
      original.byteLength,
    ).toString("base64");
  return json;
}

/**
 * The referral id in a SignedEvent's bytes, read without any check or conversion (no JSON
 * form, no unknown-field check): for ordering work by referral before the bytes are verified,
 * never for a decision. Undefined when the bytes do not decode.
 */
export function peekReferralId(bytes: Uint8Array): string | undefined {
  try {
    return Event.decode(SignedEvent.decode(bytes).event).referralId || undefined;
  } catch {
    return undefined;
  }
}

export function encodeSignedEvent(parts: SignedEventParts): Uint8Array {
  return SignedEvent.encode({ event: parts.event, signatures: parts.signatures }).finish();
}

export function decodeSignedEvent(bytes: Uint8Array): SignedEventParts {
  let message: stafett.v1.SignedEvent;
  try {
    message = SignedEvent.decode(readerKeepingUnknowns(bytes));
  } catch (cause) {
    throw new StafettError("ERR_MALFORMED", "message body is not a protobuf SignedEvent", {
      reason: "not_decodable",
      cause,
    });
  }
  rejectUnknownFields(message, "signedEvent");
  if (message.event.length === 0) {
    throw new StafettError("ERR_MALFORMED", "SignedEvent has no event bytes", {
      reason: "missing",
      field: "event",
    });
  }
  return { event: message.event, signatures: message.signatures };
}

/** protobufjs drops unknown fields by default; we keep them, so that they can be refused. */
function readerKeepingUnknowns(bytes: Uint8Array): protobuf.Reader {
  const reader = protobuf.Reader.create(bytes);
  reader.discardUnknown = false;
  return reader;
}

/**
 * Unknown fields are invisible in the canonical JSON that readers validate, so a sender could
 * hide data in them; what is not in the contract is refused.
 */
function rejectUnknownFields(message: object, field: string): void {
  const stack: unknown[] = [message];
  while (stack.length > 0) {
    const m = stack.pop();
    if (m === null || typeof m !== "object" || m instanceof Uint8Array) continue;
    if ("$unknowns" in m && Array.isArray(m.$unknowns) && m.$unknowns.length > 0) {
      throw new StafettError(
        "ERR_MALFORMED",
        "message has fields that the contract does not define",
        {
          reason: "unknown_field",
          field,
        },
      );
    }
    for (const v of Object.values(m)) if (typeof v === "object") stack.push(v);
  }
}
