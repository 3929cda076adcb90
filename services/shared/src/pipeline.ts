/**
 * The two composed operations every service uses:
 *   issue:   validate -> seal -> encode -> sign
 *   receive: verify -> trust checks -> decode -> validate -> open (for the reader)
 * Both are pure apart from the clock and the trust store's key cache; receive never throws for
 * bad input: it returns a coded rejection.
 */
import { createHash, randomUUID } from "node:crypto";
import { decodeEvent, decodeSignedEvent, encodeEvent, encodeSignedEvent } from "./codec.js";
import { StafettError, toStafettError } from "./errors.js";
import { open, recipientKids, seal } from "./jwe.js";
import { readJwsHeader, signDetached, verifyDetached } from "./jws.js";
import type { KeyHandle } from "./keys.js";
import { decryptionKeyFor } from "./keyring.js";
import { parseOrgId, parseSubject, roleOf, subjectFor } from "./subjects.js";
import {
  checkKeyUsable,
  checkRelayedKeyUsable,
  type Organisation,
  type TrustStore,
} from "./trust.js";
import {
  dataschemaFor,
  isEventType,
  type EventJson,
  type EventType,
  type PersonalJson,
} from "./types.js";
import { validateEvent, validatePersonal } from "./validate.js";
import { fromBase64, toBase64Url } from "./base64url.js";

/**
 * Who is acting: an organisation with its private signing and encryption keys. During a key
 * rollover it holds several (a `Keyring`): `signing` is the one it signs with now, `encryption`
 * its newest, and `decryption` every encryption key it can open a sealed part with.
 */
export interface Identity {
  id: string;
  signing: KeyHandle;
  encryption: KeyHandle;
  decryption?: readonly KeyHandle[];
}

/** NATS' default max_payload is 1 MiB; a referral is a few KiB. */
export const DEFAULT_MAX_BYTES = 256 * 1024;
/** Clock skew tolerated for an event's time in the future. */
export const DEFAULT_FUTURE_SKEW_MS = 5 * 60_000;
/** Events older than this are stale (longer than any queue may hold them; see the stream's max_age). */
export const DEFAULT_MAX_AGE_MS = 14 * 24 * 3_600_000;

export interface IssueInput {
  type: EventType;
  addressee: string;
  /** The referral it belongs to; absent for `reported`, which belongs to none. */
  referralId?: string;
  /** The body without `personal`, in canonical JSON (see types.ts EventBodies). */
  body?: Record<string, unknown>;
  /** The personal part in clear; it is validated and sealed, never sent as is. */
  personal?: PersonalJson;
  /** Organisations the personal part is sealed to (default: the addressee). */
  sealTo?: readonly string[];
  /** For events to the own liaison: the partner country they are bound for. */
  partnerCountry?: string;
  id?: string;
  time?: Date;
}

export interface IssuedEvent {
  id: string;
  subject: string;
  /** The SignedEvent: the NATS message body. */
  bytes: Uint8Array;
  event: EventJson;
  headers: Record<string, string>;
}

/** What issuing needs of an identity: who it is and its signing key. */
export type Signer = Pick<Identity, "id" | "signing">;
/** What receiving needs: who reads, and its decryption key when it is to open personal parts. */
export interface Reader {
  id: string;
  encryption?: KeyHandle;
  /** Every key it may open a part with, when it holds several (a key rollover). */
  decryption?: readonly KeyHandle[];
  /** Its own signing key: its own signatures coming back are not verified again (jws.ts). */
  signing?: KeyHandle;
}

export interface IssueContext {
  identity: Signer;
  trust: TrustStore;
}

export async function issue(input: IssueInput, ctx: IssueContext): Promise<IssuedEvent> {
  const { identity, trust } = ctx;
  const time = input.time ?? new Date();
  const source = identity.id;
  // Never sign what every reader will refuse: an own key the trust list revoked or no longer
  // holds valid is an operator's matter, not a message to send.
  checkOwnKeyUsable(trust, identity.signing.kid, time);
  if (!trust.mayEmit(roleOf(source), input.type, roleOf(input.addressee))) {
    throw new StafettError(
      "ERR_NOT_AUTHORISED",
      `a ${roleOf(source)} may not send ${input.type} to a ${roleOf(input.addressee)}`,
      {
        reason: "policy",
        field: "type",
      },
    );
  }
  const body: Record<string, unknown> = { ...input.body };
  if (input.personal !== undefined) {
    validatePersonal(input.personal);
    const recipients = await trust.encryptionKeys(input.sealTo ?? [input.addressee], time);
    body.personal = await seal(input.personal, recipients, sealedReferralId(input));
  }
  const event = {
    id: input.id ?? randomUUID(),
    type: input.type,
    source,
    addressee: input.addressee,
    time: time.toISOString(),
    dataschema: dataschemaFor(input.type),
    ...(input.referralId === undefined ? {} : { referralId: input.referralId }),
    [input.type]: body,
  } as EventJson;
  validateEvent(input.type, event);
  const eventBytes = encodeEvent(event);
  const signature = await signDetached(eventBytes, identity.signing);
  const bytes = encodeSignedEvent({ event: eventBytes, signatures: [signature] });
  const subjectInput = { type: input.type, source, addressee: input.addressee };
  const subject = subjectFor(
    input.partnerCountry === undefined
      ? subjectInput
      : { ...subjectInput, partnerCountry: input.partnerCountry },
  );
  return { id: event.id, subject, bytes, event, headers: eventHeaders(event) };
}

/**
 * The referral id a personal part is sealed under (its additional authenticated data): an event
 * that carries a child's data always belongs to a referral.
 */
export function sealedReferralId(input: Pick<IssueInput, "referralId">): string {
  if (input.referralId === undefined)
    throw new StafettError("ERR_MALFORMED", "a personal part needs the referral it belongs to", {
      reason: "no_referral",
      field: "/referralId",
    });
  return input.referralId;
}

/** Adds a countersignature over the same event bytes; the issuer's signature is untouched. */
export async function countersign(bytes: Uint8Array, signer: KeyHandle): Promise<Uint8Array> {
  const parts = decodeSignedEvent(bytes);
  const signature = await signDetached(parts.event, signer);
  return encodeSignedEvent({ event: parts.event, signatures: [...parts.signatures, signature] });
}

/**
 * CloudEvents binary-mode attributes as NATS headers (ce-<attribute>), plus the JetStream
 * de-duplication id, so generic tooling can route and trace without decoding.
 */
export function eventHeaders(event: EventJson): Record<string, string> {
  return {
    "Nats-Msg-Id": event.id,
    "ce-specversion": "1.0",
    "ce-id": event.id,
    "ce-type": `eu.stafett.referral.${event.type}.v1`,
    "ce-source": event.source,
    "ce-time": event.time,
    "ce-dataschema": event.dataschema,
    "ce-datacontenttype": "application/protobuf",
    "Content-Type": "application/protobuf; messageType=stafett.v1.SignedEvent",
  };
}

/**
 * Refuses to sign with a key the trust list no longer holds (rotated out: ERR_UNKNOWN_KEY), has
 * revoked (ERR_KEY_REVOKED) or holds invalid at `at` (ERR_KEY_NOT_VALID): every reader would
 * refuse the event, and could not even answer a sender it cannot identify.
 */
export function checkOwnKeyUsable(trust: TrustStore, kid: string, at: Date): void {
  const own = trust.key(kid);
  if (own === undefined)
    throw new StafettError("ERR_UNKNOWN_KEY", "the own signing key is not in the trust list", {
      reason: "not_in_trust_list",
      field: "kid",
    });
  checkKeyUsable(own, at);
}

export function digestOf(bytes: Uint8Array): string {
  return `sha-256:${toBase64Url(createHash("sha256").update(bytes).digest())}`;
}

/** The digest of a JSON value whatever the order of its keys (an HTTP request's body, say). */
export function jsonDigest(value: unknown): string {
  const sorted = (_key: string, v: unknown): unknown =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v;
  return digestOf(new TextEncoder().encode(JSON.stringify(value, sorted)));
}

export interface ReceiveContext {
  identity: Reader;
  trust: TrustStore;
  now?: Date;
  /** The subject the message arrived on; checked against the event's addressee and type. */
  subject?: string;
  /**
   * "addressee" (default): the reader must be the addressee. "relay": a liaison that passes the
   * event on checks it without being its addressee (and without opening it).
   */
  mode?: "addressee" | "relay";
  maxBytes?: number;
  futureSkewMs?: number;
  maxAgeMs?: number;
}

export interface VerifiedEvent {
  event: EventJson;
  issuer: Organisation;
  /** Liaisons that countersigned, in order. */
  countersigners: Organisation[];
  /** The plaintext personal part, when the reader is one of its recipients. */
  personal?: unknown;
  /** For `forwarded`: the relayed event, itself verified. */
  original?: VerifiedEvent;
  digest: string;
}

export type ReceiveResult =
  | ({ ok: true } & VerifiedEvent)
  | {
      ok: false;
      error: StafettError;
      digest: string;
      /** The event id, when the bytes decoded far enough to find one. */
      eventId?: string;
      referralId?: string;
      eventType?: string;
      /** The sender, only when its signature verified: the one party that may be answered. */
      sender?: string;
    };

export async function receive(bytes: Uint8Array, ctx: ReceiveContext): Promise<ReceiveResult> {
  const digest = digestOf(bytes);
  const seen: { eventId?: string; referralId?: string; eventType?: string; sender?: string } = {};
  try {
    const verified = await verify(bytes, ctx, seen, 0, digest);
    return { ok: true, ...verified };
  } catch (err) {
    const error = toStafettError(err, "ERR_MALFORMED", "message could not be processed");
    return { ok: false, error, digest, ...seen };
  }
}

async function verify(
  bytes: Uint8Array,
  ctx: ReceiveContext,
  seen: { eventId?: string; referralId?: string; eventType?: string; sender?: string },
  depth: number,
  digest = digestOf(bytes),
  relayedBy?: Organisation,
): Promise<VerifiedEvent> {
  const { trust, identity } = ctx;
  const now = ctx.now ?? new Date();
  const maxBytes = ctx.maxBytes ?? DEFAULT_MAX_BYTES;
  if (bytes.byteLength > maxBytes) {
    throw new StafettError("ERR_OVERSIZE", `message is larger than ${maxBytes} bytes`, {
      reason: "too_large",
    });
  }
  const signed = decodeSignedEvent(bytes);
  const [issuerJws, ...counterJws] = signed.signatures;
  if (issuerJws === undefined) {
    throw new StafettError("ERR_SIGNATURE_MISSING", "event is not signed", {
      reason: "missing",
      field: "signatures",
    });
  }

  // 1. The signature, over the exact bytes, before anything in them is believed.
  const header = readJwsHeader(issuerJws);
  const signer = await trust.signingKey(header.kid);
  await verifyDetached(issuerJws, signed.event, signer.handle, identity.signing);
  if (depth === 0) seen.sender = signer.org.id;

  // 2. Decode and validate against the contract.
  const event = decodeEvent(signed.event);
  if (depth === 0) {
    if (typeof event.id === "string") seen.eventId = event.id;
    if (typeof event.referralId === "string") seen.referralId = event.referralId;
    if (typeof event.type === "string") seen.eventType = event.type;
  }
  const type = typeof event.type === "string" && isEventType(event.type) ? event.type : undefined;
  if (type === undefined) {
    throw new StafettError("ERR_SCHEMA_INVALID", "event type is not one of the eleven", {
      reason: "enum",
      field: "/type",
    });
  }
  validateEvent(type, event);

  // 3. Trust: key valid at the event's time, issuer is the key's owner, role may send this.
  const time = new Date(event.time);
  if (time.getTime() > now.getTime() + (ctx.futureSkewMs ?? DEFAULT_FUTURE_SKEW_MS)) {
    throw new StafettError("ERR_STALE", "event time is in the future", {
      reason: "future",
      field: "/time",
    });
  }
  if (time.getTime() < now.getTime() - (ctx.maxAgeMs ?? DEFAULT_MAX_AGE_MS)) {
    throw new StafettError("ERR_STALE", "event is too old", { reason: "too_old", field: "/time" });
  }
  // A hub or liaison relays only what it verified when it took it (see checkRelayedKeyUsable).
  if (relayedBy !== undefined && (relayedBy.role === "hub" || relayedBy.role === "liaison"))
    checkRelayedKeyUsable(signer.key, time);
  else checkKeyUsable(signer.key, time);
  if (event.source !== signer.org.id) {
    throw new StafettError("ERR_ISSUER_MISMATCH", "event source is not the signing key's owner", {
      reason: "mismatch",
      field: "/source",
    });
  }
  const addresseeRole = roleOf(event.addressee);
  if (!trust.mayEmit(signer.org.role, type, addresseeRole)) {
    throw new StafettError(
      "ERR_NOT_AUTHORISED",
      `a ${signer.org.role} may not send ${type} to a ${addresseeRole}`,
      {
        reason: "policy",
        field: "/type",
      },
    );
  }

  // 4. Countersignatures: only liaisons countersign; one from the issuer's own liaison is
  // required when the event comes from another country.
  const countersigners: Organisation[] = [];
  for (const jws of counterJws) {
    let counter;
    try {
      counter = await trust.signingKey(readJwsHeader(jws).kid);
      await verifyDetached(jws, signed.event, counter.handle);
      checkKeyUsable(counter.key, now);
    } catch (cause) {
      throw new StafettError("ERR_COUNTERSIGNATURE_INVALID", "a countersignature does not verify", {
        reason: cause instanceof StafettError ? cause.reason : "check_failed",
        field: "signatures",
        cause,
      });
    }
    if (counter.org.role !== "liaison") {
      throw new StafettError(
        "ERR_COUNTERSIGNATURE_INVALID",
        "only a national liaison may countersign",
        {
          reason: "not_liaison",
          field: "signatures",
        },
      );
    }
    countersigners.push(counter.org);
  }
  const issuerCountry = parseOrgId(event.source).country;
  if (depth === 0 && issuerCountry !== trust.country && signer.org.role !== "liaison") {
    if (!countersigners.some((c) => c.country === issuerCountry)) {
      throw new StafettError(
        "ERR_COUNTERSIGNATURE_MISSING",
        "an event from abroad needs its country's liaison's countersignature",
        {
          reason: "missing",
          field: "signatures",
        },
      );
    }
  }

  // 5. Addressing: the event is for this reader and came on the subject for it.
  const mode = depth === 0 ? (ctx.mode ?? "addressee") : "relay";
  if (mode === "addressee" && event.addressee !== identity.id) {
    throw new StafettError("ERR_NOT_ADDRESSEE", "event is addressed to another organisation", {
      reason: "mismatch",
      field: "/addressee",
    });
  }
  if (depth === 0 && ctx.subject !== undefined) checkSubject(ctx.subject, event, countersigners);

  // 6. A relayed event is verified in full too; the personal part is opened for the reader.
  const verified: VerifiedEvent = {
    event,
    issuer: signer.org,
    countersigners,
    digest,
  };
  let sealed: string | undefined;
  if (event.forwarded !== undefined) {
    if (depth > 0) {
      throw new StafettError("ERR_MALFORMED", "a forwarded event may not relay another forward", {
        reason: "nested_forward",
        field: "/forwarded/original",
      });
    }
    const original = await verify(
      fromBase64(event.forwarded.original),
      ctx,
      seen,
      depth + 1,
      undefined,
      signer.org,
    );
    if (original.event.referralId !== event.referralId) {
      throw new StafettError("ERR_MALFORMED", "relayed event belongs to another referral", {
        reason: "referral_mismatch",
        field: "/forwarded/original",
      });
    }
    verified.original = original;
    sealed =
      event.forwarded.personal ??
      original.event.opened?.personal ??
      original.event.updated?.personal;
  } else {
    sealed = event.opened?.personal ?? event.updated?.personal;
  }
  // A relay opens it only when it is a named recipient (a liaison checking the outbound policy).
  if (depth === 0 && sealed !== undefined) {
    const reader = decryptionKeyFor(identity, recipientKids(sealed));
    if (reader === undefined) {
      // A referral handed to the reader must be readable by it; a forward of the reader's own
      // referral (a hub telling the origin where it went) need not be.
      const ownReferral = verified.original?.issuer.id === identity.id;
      if (mode === "addressee" && (type === "opened" || (type === "forwarded" && !ownReferral))) {
        throw new StafettError(
          "ERR_NOT_RECIPIENT",
          "the referral's personal part is not sealed to its addressee",
          {
            reason: "not_recipient",
            field: "personal",
          },
        );
      }
    } else {
      const personal = await open(sealed, reader, event.referralId);
      validatePersonal(personal);
      verified.personal = personal;
    }
  }
  return verified;
}

/**
 * The subject must be the one the event's addressee and type give (subjectFor), or, for an event
 * its issuer's liaison countersigned and carried over the border, that country's inbound subject.
 */
function checkSubject(
  subject: string,
  event: EventJson,
  countersigners: readonly Organisation[],
): void {
  let parts;
  try {
    parts = parseSubject(subject);
  } catch (cause) {
    throw new StafettError("ERR_SUBJECT_MISMATCH", "subject is not a Stafett subject", {
      reason: "format",
      field: "subject",
      cause,
    });
  }
  const from = parseOrgId(event.source);
  const to = parseOrgId(event.addressee);
  const allowed = new Set<string>();
  try {
    allowed.add(
      subjectFor({
        type: event.type,
        source: event.source,
        addressee: event.addressee,
        ...(parts.partnerCountry === undefined ? {} : { partnerCountry: parts.partnerCountry }),
      }),
    );
  } catch {
    // no domestic subject for this pair; only the border form below can match
  }
  if (
    from.country !== to.country &&
    countersigners.some((c) => c.role === "liaison" && c.country === from.country)
  ) {
    allowed.add(`stafett.${to.country}.in.${from.country}.${event.type}`);
  }
  if (!allowed.has(subject)) {
    throw new StafettError(
      "ERR_SUBJECT_MISMATCH",
      "subject does not match the event's addressee and type",
      { reason: "mismatch", field: "subject" },
    );
  }
}
