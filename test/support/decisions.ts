/**
 * Builders for the decision tables (services/*\/src/decide.test.ts): verified events as the
 * receive pipeline hands them to a role's `decide`, without keys, signatures or a broker. The
 * decisions never look at signatures; they read the event, its verified issuer, the relayed
 * event inside a `forwarded`, and the opened personal part.
 */
import {
  encodeEvent,
  encodeSignedEvent,
  isRefusal,
  parseOrgId,
  toBase64,
  type EventBodies,
  type EventJson,
  type EventType,
  type Organisation,
  type Plan,
  type Urgency,
  type Verdict,
  type VerifiedEvent,
} from "@stafett/shared";
import type { HubRecord } from "@stafett/hub";

export const NOW = new Date("2026-12-01T10:00:00.000Z");
export const LATER = new Date("2026-12-04T10:00:00.000Z");

/** An organisation of the trust list, as a verified issuer (keys do not matter to decisions). */
export function org(id: string): Organisation {
  const a = parseOrgId(id);
  return {
    id,
    role: a.role,
    name: id,
    country: a.country,
    ...(a.role === "hub" ? { region: a.region } : {}),
    ...(a.role === "municipality" ? { municipality: a.code } : {}),
    keys: [],
  };
}

/** An event of `type` from `source` to `addressee` about `referralId`, with its body. */
export function event<T extends EventType>(
  type: T,
  source: string,
  addressee: string,
  referralId: string,
  body: EventBodies[T],
  id = `${type}-${source}-${referralId}`,
): EventJson {
  return {
    id,
    type,
    source,
    addressee,
    time: NOW.toISOString(),
    dataschema: `https://stafett.eu/schemas/events/${type}.schema.json`,
    referralId,
    [type]: body,
  } as EventJson;
}

/** The SignedEvent bytes of an event (no signatures: decisions only carry the bytes on). */
export function bytesOf(e: EventJson): Uint8Array {
  return encodeSignedEvent({ event: encodeEvent(e), signatures: [] });
}

/** A verified event as `receive` hands it over. */
export function verified(
  e: EventJson,
  extra: { personal?: unknown; original?: VerifiedEvent; countersigners?: string[] } = {},
): VerifiedEvent {
  return {
    event: e,
    issuer: org(e.source),
    countersigners: (extra.countersigners ?? []).map(org),
    digest: `digest-${e.id}`,
    ...(extra.personal === undefined ? {} : { personal: extra.personal }),
    ...(extra.original === undefined ? {} : { original: extra.original }),
  };
}

/** A `forwarded` from `source` to `addressee` relaying `inner`, verified with it inside. */
export function forwardedOf(
  source: string,
  addressee: string,
  inner: EventJson,
  body: Omit<EventBodies["forwarded"], "original"> = {},
  extra: { personal?: unknown; id?: string } = {},
): { v: VerifiedEvent; bytes: Uint8Array } {
  const e = event(
    "forwarded",
    source,
    addressee,
    inner.referralId,
    { original: toBase64(bytesOf(inner)), ...body },
    extra.id ?? `forwarded-${source}-${inner.id}`,
  );
  return {
    v: verified(e, {
      original: verified(inner),
      ...(extra.personal === undefined ? {} : { personal: extra.personal }),
    }),
    bytes: bytesOf(e),
  };
}

/** The plan of a verdict, failing the test with the refusal's code when it refused. */
export function planOf<R>(v: Verdict<R>): Plan<R> {
  if (isRefusal(v)) throw new Error(`expected a plan, got a refusal: ${v.refuse.code}`);
  return v;
}

/** The code and reason of a refusal, or "plan" when the verdict acts. */
export function refusalOf<R>(v: Verdict<R>): { code: string; reason: string } | "plan" {
  return isRefusal(v) ? { code: v.refuse.code, reason: v.refuse.reason } : "plan";
}

/** What a plan sends, one line each: `type -> addressee` (or `countersign -> subject`). */
export function sends<R>(p: Plan<R>): string[] {
  return p.send.map((o) =>
    "issue" in o
      ? `${o.issue.type} -> ${o.issue.addressee}`
      : `countersign -> ${o.countersign.subject}`,
  );
}

/** The kinds of records a plan journals, in order. */
export function kinds<R extends { k: string }>(p: Plan<R>): string[] {
  return p.records.map((r) => r.k);
}

/**
 * A hub's journal record of a referral from Stockholm to Göteborg it received at `at`, as its
 * state applies it (the opened bytes left out: the state and the report never read them).
 */
export function hubReceived(
  referralId: string,
  deadline: string,
  at: string,
  urgency: Urgency = "URGENCY_HIGH",
): HubRecord {
  return {
    k: "received",
    referralId,
    openedId: `opened-${referralId}`,
    origin: "se:municipality:0180",
    opened: "",
    urgency,
    deadline,
    destination: { country: "se", municipality: "1480" },
    from: "se:municipality:0180",
    at,
  };
}
