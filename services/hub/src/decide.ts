/**
 * The regional hub's rules, as pure decisions: given what the hub holds, a verified event (or
 * an officer's command, or the clock) and the time, what it sends and what it records. Nothing
 * here touches the bus or the journal; hub.ts carries the verdicts out.
 *
 * - `opened` (from its origin) or a `forwarded` opened (re-routed by another hub): a signed
 *   receipt to whoever handed it over, then forwarded to the destination municipality of this
 *   region, re-routed to the hub that serves the destination, or held for triage.
 * - `accepted` / `declined`: only from the municipality that holds it; relayed to the origin. A
 *   decline routes the referral again (to the suggested destination, else to triage).
 * - `updated` / `withdrawn` / `closed`: only from the referral's origin; relayed to its holder.
 * - `received` / `rejected` from whoever the hub handed the referral on to: a receipt ends its
 *   part in a re-route; a refusal escalates at once (never a referral with nobody holding it).
 * - An `opened` under an id the hub holds is refused, unless it is the same referral coming
 *   back: nobody takes a referral (its origin, its holder) over by its id.
 * - A deadline passed with nobody having accepted: escalated to the national coordinator, and
 *   the origin told.
 * - `rejected` of the hub's own hand-on (the municipality or hub it went to refused it: a
 *   stale time, a key it could not use): escalated at once, so that a person hears of it. Of its
 *   escalation (the coordinator refused it): escalated again later, under a new id.
 */
import {
  coordinatorId,
  decodeEvent,
  decodeSignedEvent,
  fromBase64,
  join,
  liaisonId,
  parseOrgId,
  plan,
  refusal,
  routeOf,
  StafettError,
  toBase64,
  type DeriveId,
  type DestinationJson,
  type EventJson,
  type IssueInput,
  type Outgoing,
  type Plan,
  type Refusal,
  type Verdict,
  type VerifiedEvent,
} from "@stafett/shared";
import { awaitsResponsibility, type HubRecord, type HubReferral } from "./state.js";

/** Who the hub is, and what it knows of the country's hubs. */
export interface HubContext {
  id: string;
  /** Derives the id of an event derived from others (keyed: nobody else can compute it). */
  derive: DeriveId;
  country: string;
  region: string;
  /** Whether a hub is in the trust list (a region only routes to a hub that exists). */
  serves(hub: string): boolean;
  /** How long after a refused escalation it is sent again, doubling each time (default 60 s). */
  escalationRetryMs?: number;
}

/** The longest wait before a refused escalation is sent again. */
const MAX_ESCALATION_RETRY_MS = 3_600_000;

/** The bytes the hub holds of a referral: the opened SignedEvent (base64), a relay's JWE. */
export interface Held {
  opened: string;
  sealed?: string;
  /** The opened's own sealed part, when the opened is at hand decoded (saves decoding it again). */
  openedPersonal?: string;
}

/** What the hub holds, as a decision reads it. */
export interface HubView {
  referral(referralId: string): HubReferral | undefined;
  /** The bytes held of a referral (kept in the journal, read back on demand). */
  held(ref: HubReferral): Held;
}

/** What routing needs to know of a referral. */
type Routable = Pick<HubReferral, "referralId" | "openedId" | "origin" | "deadline"> & {
  /** How many times the hub handed it on before: part of a hand-on's id, so a second hand-on to
   * the same receiver (a referral routed back to one that declined it) is a new event. */
  handOns: number;
};

/** The hand-ons a referral has had here (forwards and re-routes). */
const handOnsOf = (ref: HubReferral | undefined): number =>
  ref?.history.filter((h) => h.type === "forwarded" || h.type === "rerouted").length ?? 0;

type HubVerdict = Verdict<HubRecord>;

/** What the hub does with a verified event. `bytes` is the SignedEvent as it arrived. */
export function decide(
  ctx: HubContext,
  view: HubView,
  v: VerifiedEvent,
  bytes: Uint8Array,
  now: Date,
): HubVerdict {
  const e = v.event;
  const at = now.toISOString();
  switch (e.type) {
    case "opened":
      return take(ctx, view, now, {
        opened: toBase64(bytes),
        openedEvent: e,
        origin: v.issuer.id,
        from: v.issuer.id,
        receiptOf: e.id,
        digest: v.digest,
        personal: v.personal,
      });
    case "forwarded": {
      const inner = v.original;
      if (inner?.event.type === "opened") {
        return take(ctx, view, now, {
          opened: e.forwarded?.original ?? "",
          openedEvent: inner.event,
          origin: inner.issuer.id,
          from: v.issuer.id,
          receiptOf: e.id,
          digest: v.digest,
          personal: v.personal,
          ...(e.forwarded?.personal === undefined ? {} : { sealed: e.forwarded.personal }),
          ...(e.forwarded?.destination === undefined
            ? {}
            : { destination: e.forwarded.destination }),
        });
      }
      const t = inner?.event.type;
      if (inner !== undefined && (t === "updated" || t === "withdrawn" || t === "closed")) {
        // The origin's follow-up, relayed by the hub that re-routed the referral here.
        const known = view.referral(e.referralId);
        if (known !== undefined && known.from === v.issuer.id)
          return fromOrigin(
            ctx,
            view,
            { ...inner, personal: v.personal },
            fromBase64(e.forwarded?.original ?? ""),
            now,
          );
      }
      return plan([note(e, `forwarded:${t ?? "?"}`, v.issuer.id, at)]);
    }
    case "accepted":
    case "declined":
      return fromHolder(ctx, view, v, bytes, now);
    case "updated":
    case "withdrawn":
    case "closed":
      return fromOrigin(ctx, view, v, bytes, now);
    case "received":
      return answerToHandOn(ctx, view, v, now);
    case "rejected":
      return escalationRefused(ctx, view, v, now) ?? answerToHandOn(ctx, view, v, now);
    default:
      return plan([note(e, e.type, v.issuer.id, at)]);
  }
}

/**
 * A receipt or a refusal from whoever the hub handed a referral on to. A receipt ends the hub's
 * part in a re-routed referral; a refusal of the hand-on (the next hub could not take it: a
 * revoked key, a clock off) escalates at once, so that the referral is never left with nobody
 * holding it. Anything else is a note.
 */
function answerToHandOn(ctx: HubContext, view: HubView, v: VerifiedEvent, now: Date): HubVerdict {
  const e = v.event;
  const at = now.toISOString();
  const ref = view.referral(e.referralId);
  const hand = ref?.handOn;
  const ofEventId = e.received?.ofEventId ?? e.rejected?.ofEventId;
  const aboutHandOn =
    ref !== undefined &&
    hand !== undefined &&
    hand.to === v.issuer.id &&
    hand.eventId === ofEventId &&
    !hand.receipted &&
    // A second copy refused as a replay: the first one arrived.
    e.rejected?.code !== "ERR_REPLAY";
  if (!aboutHandOn) return plan([note(e, e.type, v.issuer.id, at)]);
  if (e.type === "received")
    return plan([
      {
        k: "receipted",
        referralId: ref.referralId,
        by: v.issuer.id,
        eventId: e.id,
        of: hand.eventId,
        at,
      },
    ]);
  const escalation = awaitsResponsibility(ref) ? decideEscalation(ctx, ref, now) : undefined;
  const noted = plan([note(e, e.type, v.issuer.id, at)]);
  return escalation === undefined ? noted : join(noted, escalation);
}

function note(e: EventJson, type: string, from: string, at: string): HubRecord {
  return { k: "note", referralId: e.referralId, type, eventId: e.id, from, at };
}

/** A referral arrives (from its origin or relayed by another hub): receipt, then route. */
function take(
  ctx: HubContext,
  view: HubView,
  now: Date,
  input: {
    opened: string;
    openedEvent: EventJson;
    origin: string;
    from: string;
    receiptOf: string;
    digest: string;
    personal: unknown;
    sealed?: string;
    destination?: DestinationJson;
  },
): HubVerdict {
  const o = input.openedEvent.opened;
  if (o === undefined)
    return refusal(
      new StafettError("ERR_SCHEMA_INVALID", "relayed event is not a referral", {
        reason: "type",
        field: "/forwarded/original",
      }),
    );
  const referralId = input.openedEvent.referralId;
  const known = view.referral(referralId);
  // A referral this hub re-routed may come back (declined over there, say): the same referral,
  // opened by the same origin. Anything else under a known id is refused, so that nobody can
  // take over a referral (its origin, its holder) by opening another under its id.
  const cameBack =
    known?.status === "rerouted" &&
    known.origin === input.origin &&
    known.openedId === input.openedEvent.id;
  if (known !== undefined && !cameBack) {
    return refusal(
      new StafettError("ERR_REPLAY", "this referral is already held here", {
        reason: "duplicate_referral",
        field: "/referralId",
      }),
    );
  }
  const destination = input.destination ?? o.destination;
  const receipt: IssueInput = {
    type: "received",
    addressee: input.from,
    referralId,
    id: ctx.derive("received", input.receiptOf),
    body: { ofEventId: input.receiptOf, digest: input.digest },
    // The own liaison, bringing a partner's referral in, is addressed on its subject for that partner.
    ...(parseOrgId(input.from).role === "liaison"
      ? { partnerCountry: parseOrgId(input.origin).country }
      : {}),
  };
  const received: HubRecord = {
    k: "received",
    referralId,
    openedId: input.openedEvent.id,
    origin: input.origin,
    opened: input.opened,
    ...(input.sealed === undefined ? {} : { sealed: input.sealed }),
    urgency: o.urgency,
    deadline: o.deadline,
    destination,
    from: input.from,
    at: now.toISOString(),
  };
  const ref: Routable = {
    referralId,
    openedId: input.openedEvent.id,
    origin: input.origin,
    deadline: o.deadline,
    handOns: handOnsOf(known),
  };
  const held: Held = {
    opened: input.opened,
    ...(input.sealed === undefined ? {} : { sealed: input.sealed }),
    ...(o.personal === undefined ? {} : { openedPersonal: o.personal }),
  };
  // The receipt goes out with the hand-on, before it in the stream.
  const routed = route(ctx, ref, held, destination, input.personal, now);
  return { send: [{ issue: receipt }, ...routed.send], records: [received, ...routed.records] };
}

/** Forward to the municipality, re-route to the hub that serves the destination, or triage. */
function route(
  ctx: HubContext,
  ref: Routable,
  held: Held,
  dest: DestinationJson,
  personal: unknown,
  now: Date,
): Plan<HubRecord> {
  const r = routeOf(dest, ctx.country, (hub) => ctx.serves(hub));
  if (r.kind === "municipality") {
    if (r.hub === ctx.id)
      return handOn(
        ctx,
        "forwarded",
        ref,
        held,
        r.municipality,
        { ...dest, region: ctx.region },
        personal,
        r.sealTo,
        now,
      );
    return handOn(ctx, "rerouted", ref, held, r.hub, dest, personal, r.sealTo, now);
  }
  if (r.kind === "region" && r.hub !== ctx.id)
    return handOn(ctx, "rerouted", ref, held, r.hub, dest, personal, r.sealTo, now);
  return plan([{ k: "triage", referralId: ref.referralId, at: now.toISOString() }]);
}

/** The JWE the hub holds of a referral: a relay's, else the opened's own. */
function sealedHeld(held: Held): string | undefined {
  return (
    held.sealed ??
    held.openedPersonal ??
    decodeEvent(decodeSignedEvent(fromBase64(held.opened)).event).opened?.personal
  );
}

/**
 * Hands the referral on: to a municipality of this region ("forwarded") or to the hub that
 * serves the destination ("rerouted"), with the personal part sealed to `recipients` (the JWE
 * held is reused when it already reaches them), and tells the origin where it went. The event
 * id derives from the referral and the target, so doing this again after a crash publishes the
 * same id.
 */
function handOn(
  ctx: HubContext,
  kind: "forwarded" | "rerouted",
  ref: Routable,
  held: Held,
  to: string,
  destination: DestinationJson,
  personal: unknown,
  recipients: readonly string[],
  now: Date,
): Plan<HubRecord> {
  const id =
    kind === "forwarded"
      ? ctx.derive("forwarded", ref.openedId, to, String(ref.handOns))
      : ctx.derive(
          "rerouted",
          ref.openedId,
          to,
          destination.municipality ?? "",
          String(ref.handOns),
        );
  const current = sealedHeld(held);
  return {
    // The origin hears first: sent in this order in one batch, its notice is in the stream
    // before the next hub has the referral, so the next hub's own notice does not overtake it
    // on the origin's timeline. Only a retried publish (a broker fault) can reorder them.
    send: [
      ...noticeToOrigin(ctx, ref, held, kind, to, destination),
      {
        issue: {
          type: "forwarded",
          addressee: to,
          referralId: ref.referralId,
          id,
          body: { original: held.opened, destination, deadline: ref.deadline },
        },
        reseal: {
          to: recipients,
          ...(current === undefined ? {} : { current }),
          ...(held.sealed === undefined ? {} : { carried: held.sealed }),
          ...(personal === undefined ? {} : { plaintext: personal }),
        },
      },
    ],
    records: [{ k: kind, referralId: ref.referralId, to, eventId: id, at: now.toISOString() }],
  };
}

/** What tells the referral's origin where its referral went: a forward of its own opened event. */
function noticeToOrigin(
  ctx: HubContext,
  ref: Routable,
  held: Held,
  what: string,
  to: string,
  destination: DestinationJson,
): Outgoing[] {
  const origin = parseOrgId(ref.origin);
  // A partner country's sender hears from its own contact point, not from our hubs; our liaison,
  // which brought the referral in, is told instead, so that it knows which hubs are on its path.
  const abroad = origin.country !== ctx.country;
  if (origin.role !== "municipality" && !abroad) return [];
  return [
    {
      issue: {
        type: "forwarded",
        addressee: abroad ? liaisonId(ctx.country) : ref.origin,
        referralId: ref.referralId,
        id: ctx.derive("notify", what, ref.openedId, to),
        body: { original: held.opened, destination },
        ...(abroad ? { partnerCountry: origin.country } : {}),
      },
    },
  ];
}

/** accepted or declined: only from the municipality that holds the referral; relayed to its origin. */
function fromHolder(
  ctx: HubContext,
  view: HubView,
  v: VerifiedEvent,
  bytes: Uint8Array,
  now: Date,
): HubVerdict {
  const e = v.event;
  const ref = view.referral(e.referralId);
  if (ref === undefined || ref.holder !== v.issuer.id || ref.status !== "forwarded") {
    return refusal(
      new StafettError(
        "ERR_NOT_AUTHORISED",
        `only the municipality holding the referral may send ${e.type}`,
        { reason: "not_holder", field: "/source" },
      ),
    );
  }
  const at = now.toISOString();
  const relayed = relay(ctx, ref, ref.origin, bytes, e);
  if (e.type === "accepted")
    return plan(
      [{ k: "accepted", referralId: ref.referralId, by: v.issuer.id, eventId: e.id, at }],
      [relayed],
    );
  const declined: HubRecord = {
    k: "declined",
    referralId: ref.referralId,
    by: v.issuer.id,
    eventId: e.id,
    reason: e.declined?.reason ?? "",
    at,
  };
  const suggested = e.declined?.suggested;
  const next =
    suggested === undefined
      ? plan<HubRecord>([{ k: "triage", referralId: ref.referralId, at }])
      : route(ctx, { ...ref, handOns: handOnsOf(ref) }, view.held(ref), suggested, undefined, now);
  // The decline reaches the origin before the referral moves on.
  return { send: [relayed, ...next.send], records: [declined, ...next.records] };
}

/** updated, withdrawn or closed: only from the origin; relayed to whoever holds the referral. */
function fromOrigin(
  ctx: HubContext,
  view: HubView,
  v: VerifiedEvent,
  bytes: Uint8Array,
  now: Date,
): HubVerdict {
  const e = v.event;
  const ref = view.referral(e.referralId);
  if (ref === undefined || ref.origin !== v.issuer.id) {
    return refusal(
      new StafettError("ERR_NOT_AUTHORISED", `only the referral's origin may send ${e.type}`, {
        reason: "not_origin",
        field: "/source",
      }),
    );
  }
  // To whoever holds it here, or, once it was re-routed, on to the hub it was handed to.
  const next =
    ref.holder !== undefined && ref.holder !== ref.origin
      ? ref.holder
      : ref.status === "rerouted"
        ? ref.handOn?.to
        : undefined;
  const send = next === undefined ? [] : [relay(ctx, ref, next, bytes, e, v.personal)];
  const base = { referralId: ref.referralId, eventId: e.id, at: now.toISOString() };
  const k = e.type === "updated" ? "updated" : e.type === "withdrawn" ? "withdrawn" : "closed";
  return plan([{ k, ...base }], send);
}

/** Relays an event to `to` inside a `forwarded`; an update's personal part is sealed to `to` if it is not already. */
function relay(
  ctx: HubContext,
  ref: HubReferral,
  to: string,
  bytes: Uint8Array,
  e: EventJson,
  personal?: unknown,
): Outgoing {
  const sealed = e.updated?.personal;
  const issue: IssueInput = {
    type: "forwarded",
    addressee: to,
    referralId: ref.referralId,
    id: ctx.derive("relay", e.id, to),
    body: { original: toBase64(bytes) },
  };
  if (sealed === undefined || personal === undefined) return { issue };
  return { issue, reseal: { to: [to], current: sealed, plaintext: personal } };
}

/**
 * A refusal of the hub's own escalation (the coordinator refused it): escalated again after a
 * wait that doubles with each refusal, under new ids. Undefined for any other refusal.
 */
function escalationRefused(
  ctx: HubContext,
  view: HubView,
  v: VerifiedEvent,
  now: Date,
): HubVerdict | undefined {
  const e = v.event;
  const r = e.rejected;
  const ref = view.referral(e.referralId);
  const of = r?.ofEventId;
  if (r === undefined || ref === undefined || of === undefined || !ref.escalated) return undefined;
  const step = [...ref.history].reverse().find((h) => h.eventId === of)?.type;
  if (step !== "escalated") return undefined;
  const wait = Math.min(
    MAX_ESCALATION_RETRY_MS,
    (ctx.escalationRetryMs ?? 60_000) * 2 ** ref.escalationsRefused,
  );
  return plan([
    {
      k: "refused",
      referralId: ref.referralId,
      eventId: of,
      of: step,
      by: v.issuer.id,
      code: r.code,
      reason: r.reason,
      retryAt: new Date(now.getTime() + wait).toISOString(),
      at: now.toISOString(),
    },
  ]);
}

/**
 * The escalation of an overdue referral nobody accepted: to the national coordinator, and the
 * origin told when it is a municipality of this country. Nothing when it was escalated already.
 * After the coordinator refused one, the next has ids of its own.
 */
export function decideEscalation(
  ctx: HubContext,
  ref: HubReferral,
  now: Date,
): Plan<HubRecord> | undefined {
  if (ref.escalated) return undefined;
  const body = {
    deadline: ref.deadline,
    urgency: ref.urgency,
    holder: ref.holder ?? ctx.id,
    destination: ref.destination,
  };
  const attempt = ref.escalationsRefused === 0 ? [] : [String(ref.escalationsRefused)];
  const escId = ctx.derive("escalated", ref.referralId, ref.deadline, ...attempt);
  const origin = parseOrgId(ref.origin);
  const send: Outgoing[] = [
    {
      issue: {
        type: "escalated",
        addressee: coordinatorId(ctx.country),
        referralId: ref.referralId,
        id: escId,
        body,
      },
    },
  ];
  // The origin is told once; an escalation sent again after a refusal goes to the coordinator.
  if (origin.role === "municipality" && origin.country === ctx.country && attempt.length === 0)
    send.push({
      issue: {
        type: "escalated",
        addressee: ref.origin,
        referralId: ref.referralId,
        id: ctx.derive("escalated-notify", ref.referralId, ref.deadline, ...attempt),
        body,
      },
    });
  return plan(
    [{ k: "escalated", referralId: ref.referralId, eventId: escId, at: now.toISOString() }],
    send,
  );
}

/** An officer's step on a referral that is not (or no longer) held for triage. */
function notInTriage(): Refusal {
  return refusal(
    new StafettError("ERR_NOT_AUTHORISED", "no referral held for triage with this id", {
      reason: "not_in_triage",
      field: "referralId",
    }),
  );
}

/** An officer forwards a referral held for triage to a municipality of this country. */
export function decideTriageForward(
  ctx: HubContext,
  view: HubView,
  referralId: string,
  municipality: string,
  now: Date,
): HubVerdict {
  const ref = view.referral(referralId);
  if (ref === undefined || ref.status !== "triage") return notInTriage();
  const dest = { country: ctx.country, municipality };
  if (routeOf(dest, ctx.country).kind !== "municipality")
    return refusal(
      new StafettError("ERR_UNKNOWN_MUNICIPALITY", "not a municipality code", {
        reason: "unknown",
        field: "municipality",
      }),
    );
  return route(ctx, { ...ref, handOns: handOnsOf(ref) }, view.held(ref), dest, undefined, now);
}

/**
 * An officer re-routes a referral held for triage to another region's hub (the child is known
 * to be there, the municipality not yet): handed on as any re-route, the personal part
 * re-sealed to that hub.
 */
export function decideTriageReroute(
  ctx: HubContext,
  view: HubView,
  referralId: string,
  region: string,
  now: Date,
): HubVerdict {
  const ref = view.referral(referralId);
  if (ref === undefined || ref.status !== "triage") return notInTriage();
  const dest = { country: ctx.country, region };
  const r = routeOf(dest, ctx.country, (hub) => ctx.serves(hub));
  if (r.kind !== "region" || r.hub === ctx.id)
    return refusal(
      new StafettError("ERR_ADDRESS_INVALID", "not another region with a hub", {
        reason: r.kind === "region" ? "own_region" : "unknown_region",
        field: "region",
      }),
    );
  return route(ctx, { ...ref, handOns: handOnsOf(ref) }, view.held(ref), dest, undefined, now);
}
