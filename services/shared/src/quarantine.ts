/**
 * The quarantine: refused messages kept with their reason (docs/contract.md, principle 7). An
 * operator lists and inspects them, and re-injects one after the cause is fixed (a trust list that
 * lacked a key, a handler bug). A re-injection goes to the original subject with a message id derived
 * from the event, so re-injecting twice delivers it once; the receiver's replay check refuses a
 * copy of an event it already handled.
 */
import type { JetStreamClient, JetStreamManager, StoredMsg } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { decodeEvent, decodeSignedEvent, peekReferralId } from "./codec.js";
import { StafettError } from "./errors.js";
import {
  consumerByDurable,
  parseSubject,
  quarantineConsumerOf,
  quarantineStreamName,
} from "./subjects.js";

export interface QuarantineEntry {
  seq: number;
  time: string;
  code: string;
  reason: string;
  field?: string;
  subject: string;
  consumer: string;
  eventId?: string;
  digest: string;
  size: number;
}

function entryOf(m: StoredMsg): QuarantineEntry {
  const h = (k: string): string => m.header.get(k);
  const field = h("Stafett-Reject-Field");
  const eventId = h("Stafett-Event-Id");
  return {
    seq: m.seq,
    time: m.time.toISOString(),
    code: h("Stafett-Reject-Code"),
    reason: h("Stafett-Reject-Reason"),
    ...(field === "" ? {} : { field }),
    subject: h("Stafett-Subject"),
    // From the subject, not the header: only the consumer's owner may publish under its name.
    consumer: quarantineConsumerOf(m.subject) ?? "",
    ...(eventId === "" ? {} : { eventId }),
    digest: h("Stafett-Digest"),
    size: m.data.length,
  };
}

export async function listQuarantine(
  jsm: JetStreamManager,
  country: string,
  limit = 1_000,
): Promise<QuarantineEntry[]> {
  const stream = quarantineStreamName(country);
  const info = await jsm.streams.info(stream);
  const out: QuarantineEntry[] = [];
  for (
    let seq = Math.max(info.state.first_seq, info.state.last_seq - limit + 1);
    seq <= info.state.last_seq;
    seq++
  ) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m !== null) out.push(entryOf(m));
  }
  return out;
}

export interface QuarantineDetail extends QuarantineEntry {
  /** The event's envelope in clear, when the bytes decode (the personal part stays sealed). */
  envelope?: {
    id: string;
    type: string;
    source: string;
    addressee: string;
    time: string;
    referralId: string;
  };
  signatures?: number;
}

export async function showQuarantine(
  jsm: JetStreamManager,
  country: string,
  seq: number,
): Promise<QuarantineDetail> {
  const m = await jsm.streams.getMessage(quarantineStreamName(country), { seq }).catch(() => null);
  if (m === null)
    throw new StafettError("ERR_NOT_FOUND", "no quarantined message with this sequence", {
      reason: "unknown_seq",
      field: "seq",
    });
  const entry = entryOf(m);
  try {
    const signed = decodeSignedEvent(m.data);
    const e = decodeEvent(signed.event);
    return {
      ...entry,
      signatures: signed.signatures.length,
      envelope: {
        id: e.id,
        type: e.type,
        source: e.source,
        addressee: e.addressee,
        time: e.time,
        referralId: e.referralId,
      },
    };
  } catch {
    return entry;
  }
}

/**
 * Erases from the quarantine every refused message about `referralId` that one of `consumers`
 * (the durables of the organisation asking) refused: their bytes may hold the referral's
 * sealed personal part (docs/data-protection.md, "Erasure on request"). The server overwrites
 * each message's storage before it removes it (`erase`). Returns the sequence numbers erased.
 * Another organisation's entries about the same referral are left: each party erases its own.
 */
export async function eraseQuarantine(
  jsm: JetStreamManager,
  country: string,
  referralId: string,
  consumers: readonly string[],
): Promise<number[]> {
  const stream = quarantineStreamName(country);
  const info = await jsm.streams.info(stream);
  const erased: number[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    // Whose refusal it is by the subject, as listing has it: only the consumer's owner may
    // publish under its name, while the header says whatever the entry's writer put there.
    if (m === null || !consumers.includes(quarantineConsumerOf(m.subject) ?? "")) continue;
    if (peekReferralId(m.data) !== referralId) continue;
    await jsm.streams.deleteMessage(stream, seq, true);
    erased.push(seq);
  }
  return erased;
}

/** Re-injects a quarantined message on its original subject; returns false when it was already re-injected. */
export async function replayQuarantine(
  jsm: JetStreamManager,
  js: JetStreamClient,
  country: string,
  seq: number,
): Promise<{ subject: string; duplicate: boolean }> {
  const m = await jsm.streams.getMessage(quarantineStreamName(country), { seq }).catch(() => null);
  if (m === null)
    throw new StafettError("ERR_NOT_FOUND", "no quarantined message with this sequence", {
      reason: "unknown_seq",
      field: "seq",
    });
  const entry = entryOf(m);
  // Only back onto one of this country's event subjects, and only onto one the quarantining
  // consumer reads: an entry is written by that consumer's owner, who could otherwise name any
  // subject (an API subject, another party's address) for the operator's rights to publish to.
  let target;
  try {
    target = parseSubject(entry.subject);
  } catch {
    target = undefined;
  }
  const consumer = consumerByDurable(entry.consumer);
  const filter = consumer?.filter.replace(/\.>$/, ".");
  if (
    target === undefined ||
    target.country !== country ||
    filter === undefined ||
    !entry.subject.startsWith(filter)
  ) {
    throw new StafettError(
      "ERR_ADDRESS_INVALID",
      "the quarantined message names no event subject of this country that its consumer reads",
      { reason: "subject", field: "Stafett-Subject" },
    );
  }
  const h = natsHeaders();
  h.set("Nats-Msg-Id", `replay:${entry.eventId ?? entry.digest}`);
  h.set("Stafett-Replayed-From", String(seq));
  const ack = await js.publish(entry.subject, m.data, { headers: h });
  return { subject: entry.subject, duplicate: ack.duplicate };
}
