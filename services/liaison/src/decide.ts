/**
 * The national liaison's rules, as pure decisions; liaison.ts carries the verdicts out.
 *
 * - Outbound (an event a domestic party addresses to a partner country): the outbound policy is
 *   checked; a refused event is answered with a signed `rejected` to its issuer; an allowed one
 *   is countersigned (the issuer's signature untouched) and handed to the partner's inbound
 *   subject, and a municipality's referral is noted back to it as forwarded abroad.
 * - Inbound (a partner's event): one for a domestic party is relayed to it inside a
 *   `forwarded`; a partner's referral gets a signed receipt and goes to the hub that serves its
 *   destination municipality, or waits for the contact point's decision.
 * - The contact point's commands: accept or decline a waiting referral on behalf of the country,
 *   or route it to a municipality.
 */
import {
  coordinatorId,
  decodeEvent,
  decodeSignedEvent,
  eventHeaders,
  fromBase64,
  liaisonId,
  parseOrgId,
  plan,
  recipientKids,
  refusal,
  routeOf,
  StafettError,
  toBase64,
  type DeriveId,
  type DestinationJson,
  type EventType,
  type Outgoing,
  type PersonalJson,
  type Plan,
  type ReasonCategory,
  type TrustStore,
  type Urgency,
  type Verdict,
  type VerifiedEvent,
} from "@stafett/shared";
import type { Crossing, InboundReferral, LiaisonRecord, SentAbroad, Watched } from "./state.js";

export interface OutboundPolicy {
  /** Countries referrals may go to; default: every partner the trust list names. */
  partners?: readonly string[];
  /** Event types that may leave the country. */
  types: readonly EventType[];
  /** Reason categories for which a referral may leave the country. */
  reasons: readonly ReasonCategory[];
}

export const DEFAULT_OUTBOUND_POLICY: OutboundPolicy = {
  types: [
    "opened",
    "updated",
    "withdrawn",
    "closed",
    "accepted",
    "declined",
    "received",
    "rejected",
    "forwarded",
  ],
  // "Other" states no ground a partner authority could act on; it stays at home.
  reasons: [
    "REASON_CATEGORY_MISSING",
    "REASON_CATEGORY_TRAFFICKING_SUSPECTED",
    "REASON_CATEGORY_EXPLOITATION_SUSPECTED",
    "REASON_CATEGORY_UNACCOMPANIED_MINOR",
    "REASON_CATEGORY_MOVED",
  ],
};

/** Who the liaison is, the trust lists in force and its outbound policy. */
export interface LiaisonContext {
  id: string;
  /** Derives the id of an event derived from others (keyed: nobody else can compute it). */
  derive: DeriveId;
  country: string;
  trust: TrustStore;
  policy: OutboundPolicy;
}

/** What the liaison holds, as a decision reads it. */
export interface LiaisonView {
  inbound(referralId: string): InboundReferral | undefined;
  /** Who a referral crossed the border with, if it did. */
  crossed(referralId: string): Crossing | undefined;
  /** A referral the contact point itself sent abroad. */
  sent(referralId: string): SentAbroad | undefined;
}

/** A message as it arrived: its SignedEvent bytes and, for an outbound one, where it is bound. */
export interface Arrival {
  bytes: Uint8Array;
  /** Set for an outbound event: the partner country of its subject. */
  partnerCountry?: string;
}

type LiaisonVerdict = Verdict<LiaisonRecord>;

/** What a hub may relay to a partner inside a `forwarded`: the answers to its referral. */
const RELAYED_ABROAD: ReadonlySet<string> = new Set([
  "accepted",
  "declined",
  "received",
  "rejected",
]);

const policyRefusal = (reason: string, message: string, field?: string): StafettError =>
  new StafettError("ERR_OUTBOUND_POLICY", message, {
    reason,
    ...(field === undefined ? {} : { field }),
  });

/** What the liaison does with a verified event on its outbound or inbound consumer. */
export function decide(
  ctx: LiaisonContext,
  view: LiaisonView,
  v: VerifiedEvent,
  arrival: Arrival,
  now: Date,
): LiaisonVerdict {
  if (arrival.partnerCountry !== undefined)
    return outbound(ctx, view, v, arrival, arrival.partnerCountry, now);
  return inbound(ctx, view, v, arrival, now);
}

/** The outbound policy's refusal of an event, if it refuses it. */
export function checkOutbound(
  ctx: LiaisonContext,
  view: LiaisonView,
  v: VerifiedEvent,
  partner: string,
): StafettError | undefined {
  const e = v.event;
  const partnerLiaison = liaisonId(partner);
  const { trust, policy } = ctx;
  const named = (trust.lists[0]?.partners ?? []).some((p) => p.country === partner);
  if (
    !named ||
    trust.organisation(partnerLiaison) === undefined ||
    (policy.partners !== undefined && !policy.partners.includes(partner))
  ) {
    return policyRefusal(
      "unknown_partner",
      `${partner} is not a partner country referrals may go to`,
      "/addressee",
    );
  }
  if (parseOrgId(e.addressee).country !== partner)
    return policyRefusal(
      "addressee_country",
      "the addressee is not in the partner country of the subject",
      "/addressee",
    );
  if (!policy.types.includes(e.type))
    return policyRefusal("type_not_allowed", `${e.type} events do not leave the country`, "/type");
  // Only a new referral starts abroad. Anything else is about a referral that already crossed
  // with this partner, from a party on it (the liaison's own answers apart).
  if (e.type !== "opened" && v.issuer.id !== ctx.id) {
    const c = view.crossed(e.referralId);
    if (c === undefined || !c.partners.has(partner) || !c.domestic.has(v.issuer.id))
      return policyRefusal(
        "not_crossed",
        "this referral did not cross the border with that partner",
        "/referralId",
      );
  }
  // A hub relays only answers abroad (a municipality's acceptance of a partner's referral): a
  // referral or a follow-up inside a forwarded would pass every check above unseen.
  if (e.type === "forwarded") {
    const inner = v.original?.event.type;
    if (inner === undefined || !RELAYED_ABROAD.has(inner))
      return policyRefusal(
        "relay_not_allowed",
        "only an answer may be relayed abroad inside a forwarded",
        "/forwarded/original",
      );
  }
  const opened = e.opened;
  if (opened !== undefined && !policy.reasons.includes(opened.reason)) {
    return policyRefusal(
      "reason_not_allowed",
      "this reason category does not justify a referral abroad",
      "/opened/reason",
    );
  }
  const sealed = opened?.personal ?? e.updated?.personal;
  if (sealed !== undefined) {
    const partnerKey = trust
      .organisation(partnerLiaison)
      ?.keys.find((k) => k.use === "enc" && k.revokedAt === undefined);
    if (partnerKey === undefined || !recipientKids(sealed).includes(partnerKey.kid)) {
      return policyRefusal(
        "not_sealed_to_partner",
        "the personal part is not sealed to the partner's liaison",
        "/opened/personal",
      );
    }
    // The contact point reviews what leaves the country: it must be a recipient, and a legal basis stated.
    const personal = v.personal as { legalBasis?: unknown } | undefined;
    if (personal === undefined)
      return policyRefusal(
        "not_sealed_to_liaison",
        "the personal part is not sealed to the own liaison for review",
        "/opened/personal",
      );
    if (typeof personal.legalBasis !== "string" || personal.legalBasis.trim().length === 0) {
      return policyRefusal(
        "no_legal_basis",
        "no legal basis is stated for the disclosure",
        "/personal/legalBasis",
      );
    }
  }
  return undefined;
}

function outbound(
  ctx: LiaisonContext,
  view: LiaisonView,
  v: VerifiedEvent,
  arrival: Arrival,
  partner: string,
  now: Date,
): LiaisonVerdict {
  const e = v.event;
  const at = now.toISOString();
  if (e.addressee === ctx.id) return handedOn(ctx, view, v, partner, now);
  const refused = checkOutbound(ctx, view, v, partner);
  if (refused !== undefined) {
    return plan(
      [
        {
          k: "refused",
          eventId: e.id,
          referralId: e.referralId,
          partner,
          from: v.issuer.id,
          reason: refused.reason,
          at,
        },
      ],
      [
        {
          issue: {
            type: "rejected",
            addressee: v.issuer.id,
            referralId: e.referralId,
            id: ctx.derive("rejected", e.id),
            body: {
              ofEventId: e.id,
              code: refused.code,
              reason: refused.reason,
              ...(refused.field === undefined ? {} : { field: refused.field }),
              digest: v.digest,
            },
          },
        },
      ],
    );
  }
  // Store and forward: the event stays unacked in our stream until the partner's stream has it.
  const send: Outgoing[] = [
    {
      countersign: {
        bytes: arrival.bytes,
        subject: `stafett.${partner}.in.${ctx.country}.${e.type}`,
        // The verified event's own headers, never what the sender put on the message: its
        // message id in the partner's stream is the event id, and nothing else rides along.
        headers: eventHeaders(e),
      },
    },
  ];
  if (e.type === "opened" && parseOrgId(v.issuer.id).role === "municipality") {
    send.push({
      issue: {
        type: "forwarded",
        addressee: v.issuer.id,
        referralId: e.referralId,
        id: ctx.derive("notify", e.id),
        body: { original: toBase64(arrival.bytes), destination: { country: partner } },
      },
    });
  }
  return plan(
    [
      {
        k: "out",
        eventId: e.id,
        referralId: e.referralId,
        type: e.type,
        partner,
        from: v.issuer.id,
        ...(e.opened === undefined
          ? {}
          : { deadline: e.opened.deadline, urgency: e.opened.urgency }),
        at,
      },
    ],
    send,
  );
}

/**
 * A referral at the border whose deadline passed with nobody having taken it: escalated once to
 * the national coordinator, and a domestic sender told. Nothing when it is settled or escalated.
 */
export function decideBorderEscalation(
  ctx: LiaisonContext,
  w: Watched,
  now: Date,
): Plan<LiaisonRecord> | undefined {
  if (w.settled || w.escalated) return undefined;
  const body = {
    deadline: w.deadline,
    ...(w.urgency === undefined ? {} : { urgency: w.urgency }),
    // Abroad: the partner has it and has not answered; from abroad: the contact point has it.
    holder: w.direction === "out" ? liaisonId(w.partner) : ctx.id,
  };
  const id = ctx.derive("escalated", w.referralId, w.deadline);
  const send: Outgoing[] = [
    {
      issue: {
        type: "escalated",
        addressee: coordinatorId(ctx.country),
        referralId: w.referralId,
        id,
        body,
      },
    },
  ];
  if (w.direction === "out" && parseOrgId(w.origin).role === "municipality")
    send.push({
      issue: {
        type: "escalated",
        addressee: w.origin,
        referralId: w.referralId,
        id: ctx.derive("escalated-notify", w.referralId, w.deadline),
        body,
      },
    });
  return plan(
    [{ k: "escalated", referralId: w.referralId, eventId: id, at: now.toISOString() }],
    send,
  );
}

function inbound(
  ctx: LiaisonContext,
  view: LiaisonView,
  v: VerifiedEvent,
  arrival: Arrival,
  now: Date,
): LiaisonVerdict {
  const e = v.event;
  const at = now.toISOString();
  if (e.addressee !== ctx.id) {
    // For a domestic party: relay it, with the partner's signatures inside.
    if (parseOrgId(e.addressee).country !== ctx.country)
      return refusal(
        new StafettError("ERR_NOT_ADDRESSEE", "inbound event for another country", {
          reason: "mismatch",
          field: "/addressee",
        }),
      );
    // A partner speaks only of referrals that crossed with it, and only to the parties on them.
    const crossing = view.crossed(e.referralId);
    if (
      crossing === undefined ||
      !crossing.partners.has(parseOrgId(v.issuer.id).country) ||
      !crossing.domestic.has(e.addressee)
    )
      return refusal(
        new StafettError(
          "ERR_NOT_AUTHORISED",
          "a partner may act only on referrals that crossed with it",
          { reason: "not_crossed", field: "/referralId" },
        ),
      );
    const id = ctx.derive("relay-in", e.id);
    return plan(
      [
        {
          k: "relayed-in",
          eventId: id,
          referralId: e.referralId,
          type: e.type,
          to: e.addressee,
          at,
        },
      ],
      [
        {
          issue: {
            type: "forwarded",
            addressee: e.addressee,
            referralId: e.referralId,
            id,
            body: { original: toBase64(arrival.bytes) },
          },
        },
      ],
    );
  }
  const o = e.opened;
  if (e.type !== "opened" || o === undefined) return fromPartner(ctx, view, v, arrival, now);
  if (view.inbound(e.referralId) !== undefined || view.crossed(e.referralId) !== undefined) {
    return refusal(
      new StafettError("ERR_REPLAY", "this referral already arrived", {
        reason: "duplicate_referral",
        field: "/referralId",
      }),
    );
  }
  const receipt: Outgoing = {
    issue: {
      type: "received",
      addressee: v.issuer.id,
      referralId: e.referralId,
      id: ctx.derive("received", e.id),
      body: { ofEventId: e.id, digest: v.digest },
    },
  };
  const item: Extract<LiaisonRecord, { k: "inbound" }> = {
    k: "inbound",
    referralId: e.referralId,
    openedId: e.id,
    origin: v.issuer.id,
    urgency: o.urgency,
    reason: o.reason,
    deadline: o.deadline,
    opened: toBase64(arrival.bytes),
    at,
  };
  // A partner refers children into this country only; one bound elsewhere is not ours to place.
  if (o.destination.country !== ctx.country)
    return refusal(
      new StafettError("ERR_NOT_ADDRESSEE", "the referral's destination is another country", {
        reason: "destination_country",
        field: "/opened/destination/country",
      }),
    );
  const route = routeOf(o.destination, ctx.country);
  if (route.kind !== "municipality" || ctx.trust.organisation(route.municipality) === undefined) {
    // No municipality that takes part (none named, an unknown code, or one not on the trust
    // list): it waits for the contact point (GET /v1/inbound).
    return plan([item], [receipt]);
  }
  return plan(
    [{ ...item, routedTo: route.hub }],
    [receipt, routeInward(ctx, item, route.hub, route.sealTo, v.personal)],
  );
}

/** Forwards a partner's referral to a domestic hub, the personal part sealed anew to `recipients`. */
function routeInward(
  ctx: LiaisonContext,
  item: { referralId: string; openedId: string; opened: string; deadline: string },
  to: string,
  recipients: readonly string[],
  personal: unknown,
  destination?: DestinationJson,
): Outgoing {
  const opened = decodeEvent(decodeSignedEvent(fromBase64(item.opened)).event).opened;
  const current = opened?.personal;
  // Where the contact point placed it, else where the partner named.
  const dest = destination ?? opened?.destination;
  return {
    issue: {
      type: "forwarded",
      addressee: to,
      referralId: item.referralId,
      id: ctx.derive("route", item.openedId, to),
      body: {
        original: item.opened,
        deadline: item.deadline,
        ...(dest === undefined ? {} : { destination: dest }),
      },
    },
    reseal: {
      to: recipients,
      fresh: true,
      ...(current === undefined ? {} : { current }),
      ...(personal === undefined ? {} : { plaintext: personal }),
    },
  };
}

function notPending(): StafettError {
  return new StafettError(
    "ERR_NOT_AUTHORISED",
    "no inbound referral waiting for a decision with this id",
    { reason: "not_pending", field: "referralId" },
  );
}

/** The contact point accepts or declines a waiting partner referral on behalf of its country. */
export function decideAnswer(
  ctx: LiaisonContext,
  view: LiaisonView,
  referralId: string,
  decision: "accepted" | "declined",
  reason: string | undefined,
  now: Date,
): LiaisonVerdict {
  const item = view.inbound(referralId);
  if (item === undefined || item.status !== "pending") return refusal(notPending());
  const id = ctx.derive(decision, item.openedId);
  return plan(
    [{ k: "answered", referralId, decision, eventId: id, at: now.toISOString() }],
    [
      {
        issue: {
          type: decision,
          addressee: item.origin,
          referralId,
          id,
          body:
            decision === "accepted"
              ? { ofEventId: item.openedId }
              : { ofEventId: item.openedId, reason: reason ?? "DECLINE_REASON_OTHER" },
        },
      },
    ],
  );
}

/** The contact point hands a waiting partner referral to a domestic municipality (through its hub). */
export function decideRouteTo(
  ctx: LiaisonContext,
  view: LiaisonView,
  referralId: string,
  municipality: string,
  now: Date,
): LiaisonVerdict {
  const item = view.inbound(referralId);
  if (item === undefined || item.status !== "pending") return refusal(notPending());
  const route = routeOf({ country: ctx.country, municipality }, ctx.country);
  if (route.kind !== "municipality" || ctx.trust.organisation(route.municipality) === undefined)
    return refusal(
      new StafettError("ERR_UNKNOWN_MUNICIPALITY", "not a municipality code", {
        reason: "unknown",
        field: "municipality",
      }),
    );
  return plan(
    [
      {
        k: "inbound",
        referralId,
        openedId: item.openedId,
        origin: item.origin,
        urgency: item.urgency,
        reason: item.reason,
        deadline: item.deadline,
        opened: item.opened,
        routedTo: route.hub,
        at: now.toISOString(),
      },
    ],
    [
      routeInward(ctx, item, route.hub, route.sealTo, undefined, {
        country: ctx.country,
        municipality,
      }),
    ],
  );
}

function notCrossed(): StafettError {
  return new StafettError(
    "ERR_NOT_AUTHORISED",
    "a partner may act only on referrals that crossed with it",
    { reason: "not_crossed", field: "/referralId" },
  );
}

/** Whether this liaison itself sent the referral to `partner` (the contact point as its origin). */
function sentByMe(ctx: LiaisonContext, view: LiaisonView, referralId: string, partner: string) {
  const c = view.crossed(referralId);
  return c !== undefined && c.domestic.has(ctx.id) && c.partners.has(partner);
}

const ANSWERS: ReadonlySet<string> = new Set(["received", "rejected", "accepted", "declined"]);

/**
 * A partner's event addressed to the liaison itself that is not a referral:
 *
 * - its update, withdrawal or close of a referral it sent here: only from that referral's origin;
 *   relayed to the hub the referral went to (which relays it on to whoever holds it), or, while
 *   the referral waits for the contact point, noted there;
 * - an answer about a referral this liaison sent to it: a receipt, a refusal, the partner
 *   contact point's acceptance or decline, or a partner hub's `forwarded` relaying its
 *   municipality's answer (verified with every signature on it before this): recorded;
 * - an acceptance or decline of a referral the partner itself sent here: refused `not_holder`
 *   (only whoever holds a referral answers it); anything about a referral that did not cross
 *   with this partner: refused `not_crossed`.
 */
function fromPartner(
  ctx: LiaisonContext,
  view: LiaisonView,
  v: VerifiedEvent,
  arrival: Arrival,
  now: Date,
): LiaisonVerdict {
  const e = v.event;
  const at = now.toISOString();
  const partner = parseOrgId(v.issuer.id).country;
  const item = view.inbound(e.referralId);
  const theirs = item !== undefined && parseOrgId(item.origin).country === partner;
  if (e.type === "updated" || e.type === "withdrawn" || e.type === "closed") {
    if (!theirs) return refusal(notCrossed());
    if (item.origin !== v.issuer.id)
      return refusal(
        new StafettError("ERR_NOT_AUTHORISED", `only the referral's origin may send ${e.type}`, {
          reason: "not_origin",
          field: "/source",
        }),
      );
    const id = ctx.derive("relay-in", e.id);
    const to = item.status === "routed" ? item.routedTo : undefined;
    const record: LiaisonRecord = {
      k: "follow-in",
      referralId: e.referralId,
      type: e.type,
      eventId: id,
      ...(to === undefined ? {} : { to }),
      at,
    };
    if (to === undefined) return plan([record]);
    // An update's personal part is sealed to this liaison alone: sealed anew to the hub, which
    // seals it on to whoever holds the referral.
    const sealed = e.updated?.personal;
    return plan(
      [record],
      [
        {
          issue: {
            type: "forwarded",
            addressee: to,
            referralId: e.referralId,
            id,
            body: { original: toBase64(arrival.bytes) },
          },
          ...(sealed === undefined
            ? {}
            : {
                reseal: {
                  to: [to],
                  fresh: true,
                  current: sealed,
                  ...(v.personal === undefined ? {} : { plaintext: v.personal }),
                },
              }),
        },
      ],
    );
  }
  const inner = e.type === "forwarded" ? v.original : v;
  const answer = inner?.event.type;
  if (answer !== undefined && ANSWERS.has(answer) && sentByMe(ctx, view, e.referralId, partner)) {
    if (inner !== undefined && parseOrgId(inner.issuer.id).country !== partner)
      return refusal(notCrossed());
    return plan([
      {
        k: "answer-in",
        referralId: e.referralId,
        eventId: e.id,
        type: answer as "received" | "rejected" | "accepted" | "declined",
        by: inner?.issuer.id ?? v.issuer.id,
        bytes: toBase64(arrival.bytes),
        at,
      },
    ]);
  }
  if (theirs && (answer === "received" || answer === "rejected")) return plan();
  if (theirs && (answer === "accepted" || answer === "declined"))
    return refusal(
      new StafettError(
        "ERR_NOT_AUTHORISED",
        `only the party holding the referral may send ${answer}`,
        { reason: "not_holder", field: "/source" },
      ),
    );
  return refusal(notCrossed());
}

/**
 * A domestic hub receipts a partner's referral the liaison handed it, or tells the liaison where
 * the referral went (the notice a domestic origin gets): from a hub on its path only. A hub it was re-routed to joins the path, so that the
 * answer it relays may leave the country.
 */
function handedOn(
  ctx: LiaisonContext,
  view: LiaisonView,
  v: VerifiedEvent,
  partner: string,
  now: Date,
): LiaisonVerdict {
  const e = v.event;
  const item = view.inbound(e.referralId);
  const c = view.crossed(e.referralId);
  const dest = e.forwarded?.destination;
  const onPath =
    item !== undefined &&
    parseOrgId(item.origin).country === partner &&
    c !== undefined &&
    c.domestic.has(v.issuer.id);
  // The receipt of the hub it was routed to: that hub watches the deadline from now on.
  if (e.type === "received" && onPath)
    return item.routedTo === v.issuer.id
      ? plan([
          {
            k: "taken",
            referralId: e.referralId,
            by: v.issuer.id,
            eventId: e.id,
            at: now.toISOString(),
          },
        ])
      : plan();
  if (
    e.type !== "forwarded" ||
    v.original?.event.type !== "opened" ||
    v.original.event.id !== item?.openedId ||
    !onPath ||
    dest === undefined
  )
    return refusal(
      new StafettError(
        "ERR_NOT_AUTHORISED",
        "only a hub on a partner's referral's path tells where it went",
        { reason: "not_on_path", field: "/source" },
      ),
    );
  const r = routeOf(dest, ctx.country);
  const to =
    r.kind === "municipality" && r.hub === v.issuer.id
      ? r.municipality
      : r.kind === "municipality" || r.kind === "region"
        ? r.hub
        : undefined;
  if (to === undefined) return plan();
  return plan([
    {
      k: "handed-on",
      referralId: e.referralId,
      by: v.issuer.id,
      to,
      eventId: e.id,
      at: now.toISOString(),
    },
  ]);
}

/** What the contact point says when it refers a child to a partner country itself. */
export interface ReferAbroad {
  /** Random, chosen by the runtime (never by a decision, never by a caller). */
  referralId: string;
  partner: string;
  urgency: Urgency;
  reason: ReasonCategory;
  /** Where in the partner country, when known (a municipality or region code of theirs). */
  destination?: Omit<DestinationJson, "country">;
  deadline: string;
  personal: PersonalJson;
}

/**
 * The contact point refers a child to a partner country: an `opened` addressed to the partner's
 * liaison, sealed to it and to this liaison. The outbound policy holds for it as for any
 * domestic sender's (a partner named, an accepted reason, a legal basis stated); the liaison
 * watches its deadline until the partner answers.
 */
export function decideReferAbroad(
  ctx: LiaisonContext,
  view: LiaisonView,
  cmd: ReferAbroad,
  now: Date,
): LiaisonVerdict {
  const partnerLiaison = liaisonId(cmd.partner);
  const named = (ctx.trust.lists[0]?.partners ?? []).some((p) => p.country === cmd.partner);
  if (
    !named ||
    cmd.partner === ctx.country ||
    ctx.trust.organisation(partnerLiaison) === undefined ||
    (ctx.policy.partners !== undefined && !ctx.policy.partners.includes(cmd.partner))
  )
    return refusal(
      policyRefusal("unknown_partner", `${cmd.partner} is not a partner country`, "partner"),
    );
  if (!ctx.policy.reasons.includes(cmd.reason))
    return refusal(
      policyRefusal(
        "reason_not_allowed",
        "this reason category does not justify a referral abroad",
        "reason",
      ),
    );
  const basis: unknown = cmd.personal.legalBasis;
  if (typeof basis !== "string" || basis.trim().length === 0)
    return refusal(
      policyRefusal(
        "no_legal_basis",
        "no legal basis is stated for the disclosure",
        "personal/legalBasis",
      ),
    );
  if (!(Date.parse(cmd.deadline) > now.getTime()))
    return refusal(
      new StafettError("ERR_SCHEMA_INVALID", "the deadline has already passed", {
        reason: "past",
        field: "deadline",
      }),
    );
  if (view.crossed(cmd.referralId) !== undefined || view.inbound(cmd.referralId) !== undefined)
    return refusal(
      new StafettError("ERR_REPLAY", "a referral with this id exists", {
        reason: "duplicate_referral",
        field: "referralId",
      }),
    );
  const id = ctx.derive("opened-abroad", cmd.referralId);
  return plan(
    [
      {
        k: "out",
        eventId: id,
        referralId: cmd.referralId,
        type: "opened",
        partner: cmd.partner,
        from: ctx.id,
        deadline: cmd.deadline,
        urgency: cmd.urgency,
        at: now.toISOString(),
      },
    ],
    [
      {
        issue: {
          type: "opened",
          addressee: partnerLiaison,
          referralId: cmd.referralId,
          id,
          body: {
            urgency: cmd.urgency,
            reason: cmd.reason,
            destination: { ...cmd.destination, country: cmd.partner },
            deadline: cmd.deadline,
          },
          personal: cmd.personal,
          sealTo: [partnerLiaison, ctx.id],
        },
      },
    ],
  );
}

/**
 * The contact point's withdrawal or close of a referral it sent abroad, to the partner's liaison
 * (which relays it to whoever holds the referral there). Only its own referrals, while open.
 */
export function decideFollowAbroad(
  ctx: LiaisonContext,
  view: LiaisonView,
  referralId: string,
  follow: { type: "withdrawn"; reason: string } | { type: "closed"; outcome: string },
  eventId: string,
  now: Date,
): LiaisonVerdict {
  const sent = view.sent(referralId);
  if (sent === undefined || !sentByMe(ctx, view, referralId, sent.partner))
    return refusal(
      new StafettError("ERR_NOT_FOUND", "no referral sent abroad with this id", {
        reason: "unknown_referral",
        field: "referralId",
      }),
    );
  if (sent.status === "withdrawn" || sent.status === "closed")
    return refusal(
      new StafettError("ERR_NOT_AUTHORISED", `the referral is ${sent.status}`, {
        reason: "ended",
        field: "referralId",
      }),
    );
  const body =
    follow.type === "withdrawn" ? { reason: follow.reason } : { outcome: follow.outcome };
  return plan(
    [
      {
        k: "out",
        eventId,
        referralId,
        type: follow.type,
        partner: sent.partner,
        from: ctx.id,
        at: now.toISOString(),
      },
    ],
    [
      {
        issue: {
          type: follow.type,
          addressee: liaisonId(sent.partner),
          referralId,
          id: eventId,
          body,
        },
      },
    ],
  );
}
