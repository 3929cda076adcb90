/**
 * The municipality gateway's rules, as pure decisions; gateway.ts carries the verdicts out.
 *
 * - Opening a referral: where it goes first and to whom its personal part is sealed (routing.ts),
 *   and its deadline (the request's, else the default for its urgency).
 * - What comes back about a referral it sent: receipts, refusals, escalations and its hub's
 *   notices become timeline entries; an acceptance (relayed) ends the sender's side with `closed`.
 * - What is handed to it: a forwarded referral enters the inbox; the origin's updates,
 *   withdrawals and closings are noted on the item.
 * - The officers' commands: follow-ups on a referral it sent (only while it is open), accept or
 *   decline an inbox item (only while it is pending).
 */
import {
  hubOfMunicipality,
  liaisonId,
  parseOrgId,
  plan,
  refusal,
  routeOf,
  StafettError,
  toBase64,
  type DeriveId,
  type DestinationJson,
  type IssueInput,
  type PersonalJson,
  type Urgency,
  type Verdict,
  type VerifiedEvent,
} from "@stafett/shared";
import type { GatewayRecord, InboxItem, SentReferral, TimelineEntry } from "./state.js";

/** Who the gateway is, and what it knows of the country's hubs. */
export interface GatewayContext {
  id: string;
  /** Derives the id of an event derived from others (keyed: nobody else can compute it). */
  derive: DeriveId;
  country: string;
  /** Whether a hub is in the trust list (a region only routes to a hub that exists). */
  serves(hub: string): boolean;
}

/** What the gateway holds, as a decision reads it. */
export interface GatewayView {
  sent(referralId: string): SentReferral | undefined;
  inbox(referralId: string): InboxItem | undefined;
}

type GatewayVerdict = Verdict<GatewayRecord>;

/** Where a new referral goes first, and who can read its personal part. */
export interface OpenRoute {
  addressee: string;
  sealTo: readonly string[];
  partnerCountry?: string;
}

/** The first addressee of a referral to `dest`, or the coded reason it has none. */
export function routeOpened(ctx: GatewayContext, dest: DestinationJson): OpenRoute | StafettError {
  const r = routeOf(dest, ctx.country, (hub) => ctx.serves(hub));
  switch (r.kind) {
    case "abroad":
      // Addressed to the partner's liaison, through our own, which reviews what leaves.
      return { addressee: r.addressee, sealTo: r.sealTo, partnerCountry: r.country };
    case "municipality":
      return { addressee: r.hub, sealTo: r.sealTo };
    case "region":
      return { addressee: r.hub, sealTo: r.sealTo };
    case "unknown":
      if (r.reason === "unknown_municipality")
        return new StafettError(
          "ERR_UNKNOWN_MUNICIPALITY",
          "destination municipality is not a known code",
          { reason: "unknown", field: "/destination/municipality" },
        );
      if (r.reason === "unknown_region")
        return new StafettError("ERR_ADDRESS_INVALID", "no hub serves the destination region", {
          reason: "unknown_region",
          field: "/destination/region",
        });
      // No place named: our own region's hub triages it.
      {
        const hub = hubOfMunicipality(ctx.id);
        if (!ctx.serves(hub))
          return new StafettError("ERR_ADDRESS_INVALID", "no hub serves the destination region", {
            reason: "unknown_region",
            field: "/destination/region",
          });
        return { addressee: hub, sealTo: [hub] };
      }
  }
}

/** The deadline of a new referral, or the coded reason it cannot have it. */
export function deadlineOf(
  requested: string | undefined,
  urgency: Urgency,
  defaults: Readonly<Record<Urgency, number>>,
  now: Date,
): string | StafettError {
  const deadline = requested ?? new Date(now.getTime() + defaults[urgency]).toISOString();
  if (Date.parse(deadline) <= now.getTime())
    return new StafettError("ERR_SCHEMA_INVALID", "the deadline has already passed", {
      reason: "past",
      field: "/deadline",
    });
  return deadline;
}

/** What the gateway does with a verified event addressed to it. `bytes` is the SignedEvent as it arrived. */
export function decide(
  ctx: GatewayContext,
  view: GatewayView,
  v: VerifiedEvent,
  bytes: Uint8Array,
  now: Date,
): GatewayVerdict {
  const e = v.event;
  const mine = view.sent(e.referralId);
  const entry = (type: TimelineEntry["type"], extra: Partial<TimelineEntry> = {}) =>
    timeline(e.referralId, {
      type,
      at: now.toISOString(),
      eventId: e.id,
      by: v.issuer.id,
      ...extra,
    });
  if (e.type === "forwarded") return onForwarded(ctx, view, v, bytes, mine, now);
  if (e.type !== "received" && e.type !== "rejected" && e.type !== "escalated") return plan();
  if (mine === undefined) return plan();
  // Only a party on the referral's path may say something about it: the first addressee
  // receipts it; it or the own liaison (what leaves the country) refuses it; a hub that held it
  // (or the own liaison) escalates it.
  const path = pathOf(ctx, mine);
  const allowed =
    e.type === "received"
      ? v.issuer.id === mine.hub
      : e.type === "rejected"
        ? v.issuer.id === mine.hub || (path.abroad && v.issuer.id === liaisonId(ctx.country))
        : path.hubs.has(v.issuer.id) || v.issuer.id === liaisonId(ctx.country);
  if (!allowed) return refusal(notOnPath(e.type));
  if (e.type === "rejected")
    return plan([
      entry("rejected", { code: e.rejected?.code ?? "", reason: e.rejected?.reason ?? "" }),
    ]);
  return plan([entry(e.type)]);
}

/** Who is on a sent referral's path, as its timeline shows: the hubs that held it, and whether it left the country. */
function pathOf(ctx: GatewayContext, mine: SentReferral): { hubs: Set<string>; abroad: boolean } {
  const hubs = new Set<string>([mine.hub]);
  for (const t of mine.timeline) {
    if (t.type !== "forwarded" && t.type !== "rerouted") continue;
    for (const id of [t.by, t.to]) if (id !== undefined && id.includes(":hub:")) hubs.add(id);
  }
  return { hubs, abroad: mine.destination.country !== ctx.country };
}

function notOnPath(type: string): StafettError {
  return new StafettError(
    "ERR_NOT_AUTHORISED",
    `${type} about this referral may come only from a party on its path`,
    { reason: "not_on_path", field: "/source" },
  );
}

function timeline(referralId: string, entry: TimelineEntry): GatewayRecord {
  return { k: "timeline", referralId, entry };
}

function onForwarded(
  ctx: GatewayContext,
  view: GatewayView,
  v: VerifiedEvent,
  bytes: Uint8Array,
  mine: SentReferral | undefined,
  now: Date,
): GatewayVerdict {
  const inner = v.original;
  const e = v.event;
  const at = now.toISOString();
  if (inner === undefined) return plan();
  const innerType = inner.event.type;
  // A hub's notice of where our own referral went carries no deadline; a hand-on always does
  // (a referral routed back to its origin lands in the origin's inbox like any other).
  if (innerType === "opened" && inner.issuer.id === ctx.id && e.forwarded?.deadline === undefined) {
    // The hub tells us where our referral went: to a municipality of its own region
    // (forwarded), else to the hub that serves the destination (re-routed).
    const dest = e.forwarded?.destination;
    if (mine === undefined || dest === undefined) return plan();
    const path = pathOf(ctx, mine);
    if (!path.hubs.has(v.issuer.id) && !(path.abroad && v.issuer.id === liaisonId(ctx.country)))
      return refusal(notOnPath("a notice"));
    const entry = (type: "forwarded" | "rerouted", to: string) =>
      timeline(e.referralId, { type, at, eventId: e.id, by: v.issuer.id, to });
    const r = routeOf(dest, ctx.country);
    if (r.kind === "abroad") return plan([entry("forwarded", liaisonId(dest.country))]);
    if (r.kind === "municipality" && r.hub === v.issuer.id)
      return plan([entry("forwarded", r.municipality)]);
    const servingHub = r.kind === "municipality" || r.kind === "region" ? r.hub : v.issuer.id;
    return plan([entry("rerouted", servingHub)]);
  }
  if (innerType === "opened") {
    const o = inner.event.opened;
    // Handed to us again after we declined it (routed back here): pending again. The same
    // hand-on again is a repeat, and nothing.
    const had = view.inbox(e.referralId);
    if (o === undefined || had?.status === "pending" || had?.forwardedId === e.id) return plan();
    // Only a referral this municipality declined comes back, and only the same referral (its
    // opened, its origin): a hand-over under the id of one it accepted, or that was withdrawn or
    // closed, or another opened under its id, would reset it to pending with another origin,
    // deadline or path, and cut the real origin's follow-ups off.
    if (
      had !== undefined &&
      (had.status !== "declined" ||
        had.openedId !== inner.event.id ||
        had.origin !== inner.issuer.id)
    )
      return refusal(
        new StafettError("ERR_REPLAY", "this referral is already in the inbox", {
          reason: "duplicate_referral",
          field: "/referralId",
        }),
      );
    return plan([
      {
        k: "inbox",
        referralId: e.referralId,
        forwardedId: e.id,
        openedId: inner.event.id,
        origin: inner.issuer.id,
        via: v.issuer.id,
        urgency: o.urgency,
        reason: o.reason,
        deadline: e.forwarded?.deadline ?? o.deadline,
        bytes: toBase64(bytes),
        at,
      },
    ]);
  }
  if (
    innerType !== "updated" &&
    innerType !== "withdrawn" &&
    innerType !== "closed" &&
    mine !== undefined
  ) {
    // An answer about a referral we sent: from the municipality a hub on its path handed it to,
    // relayed by that hub; or, abroad, from the partner country, relayed by our liaison.
    if (!answeredOnPath(ctx, mine, v)) return refusal(notOnPath(innerType));
  }
  if ((innerType === "received" || innerType === "rejected") && mine !== undefined) {
    // A partner country's receipt or refusal, relayed by our liaison.
    const r = inner.event.rejected;
    return plan([
      timeline(e.referralId, {
        type: innerType,
        at,
        eventId: inner.event.id,
        by: inner.issuer.id,
        ...(r === undefined ? {} : { code: r.code, reason: r.reason }),
      }),
    ]);
  }
  if ((innerType === "accepted" || innerType === "declined") && mine !== undefined) {
    const answered = timeline(e.referralId, {
      type: innerType,
      at,
      eventId: inner.event.id,
      by: inner.issuer.id,
      ...(innerType === "declined" ? { reason: inner.event.declined?.reason ?? "" } : {}),
    });
    if (innerType === "declined") return plan([answered]);
    // Responsibility has moved: the sender's side of the referral ends (docs/contract.md,
    // the handoff lifecycle).
    const closedId = ctx.derive("closed", inner.event.id);
    const closed: IssueInput = {
      type: "closed",
      addressee: mine.hub,
      referralId: e.referralId,
      id: closedId,
      body: { outcome: "CLOSE_OUTCOME_ACCEPTED", holder: inner.issuer.id },
      ...(mine.destination.country === ctx.country
        ? {}
        : { partnerCountry: mine.destination.country }),
    };
    return plan(
      [answered, timeline(e.referralId, { type: "closed", at, eventId: closedId, by: ctx.id })],
      [{ issue: closed }],
    );
  }
  const item = view.inbox(e.referralId);
  if (
    (innerType === "updated" || innerType === "withdrawn" || innerType === "closed") &&
    item !== undefined
  ) {
    // Only the origin changes a referral, through whoever handed it to us.
    if (inner.issuer.id !== item.origin || v.issuer.id !== item.via)
      return refusal(
        new StafettError("ERR_NOT_AUTHORISED", `only the referral's origin may send ${innerType}`, {
          reason: "not_origin",
          field: "/forwarded/original",
        }),
      );
    return plan([
      {
        k: "inbox-event",
        referralId: e.referralId,
        type: innerType,
        eventId: inner.event.id,
        ...(innerType === "updated" ? { bytes: toBase64(bytes) } : {}),
        at,
      },
    ]);
  }
  return plan();
}

/**
 * Whether a relayed answer (received, rejected, accepted, declined) about a referral we sent comes
 * from its path: at home, relayed by a hub that held it, from a municipality that hub serves and
 * addressed to that hub; abroad, relayed by our own liaison, from the destination country.
 */
function answeredOnPath(ctx: GatewayContext, mine: SentReferral, v: VerifiedEvent): boolean {
  const inner = v.original;
  if (inner === undefined) return false;
  const path = pathOf(ctx, mine);
  if (path.abroad)
    return (
      v.issuer.id === liaisonId(ctx.country) &&
      parseOrgId(inner.issuer.id).country === mine.destination.country
    );
  if (!path.hubs.has(v.issuer.id) || inner.event.addressee !== v.issuer.id) return false;
  const from = parseOrgId(inner.issuer.id);
  return from.role === "municipality" && hubOfMunicipality(inner.issuer.id) === v.issuer.id;
}

/**
 * The sender's own follow-up (updated, withdrawn, closed) of a referral it sent, to the
 * referral's first addressee, under the event id `eventId`.
 */
export function decideFollow(
  ctx: GatewayContext,
  view: GatewayView,
  command: {
    referralId: string;
    type: "updated" | "withdrawn" | "closed";
    body: Record<string, unknown>;
    personal?: PersonalJson;
    eventId: string;
  },
  now: Date,
): GatewayVerdict {
  const { referralId, type } = command;
  const ref = view.sent(referralId);
  if (ref === undefined)
    return refusal(
      new StafettError("ERR_NOT_FOUND", "no referral sent with this id", {
        reason: "unknown_referral",
        field: "referralId",
      }),
    );
  if (ref.status === "closed" || ref.status === "withdrawn") {
    return refusal(
      new StafettError("ERR_NOT_AUTHORISED", `the referral is ${ref.status}`, {
        reason: "ended",
        field: "referralId",
      }),
    );
  }
  const sealTo = [
    ref.hub,
    ...(ref.holder !== undefined && ref.holder !== ref.hub ? [ref.holder] : []),
  ];
  const dest = ref.destination;
  return plan(
    [timeline(referralId, { type, at: now.toISOString(), eventId: command.eventId, by: ctx.id })],
    [
      {
        issue: {
          type,
          addressee: ref.hub,
          referralId,
          id: command.eventId,
          body: command.body,
          ...(command.personal === undefined ? {} : { personal: command.personal, sealTo }),
          ...(dest.country === ctx.country ? {} : { partnerCountry: dest.country }),
        },
      },
    ],
  );
}

/** An officer accepts or declines a referral in the inbox, answering whoever handed it over. */
export function decideAnswer(
  ctx: GatewayContext,
  view: GatewayView,
  referralId: string,
  decision: "accepted" | "declined",
  declined: { reason: string; suggested?: DestinationJson } | undefined,
  now: Date,
): GatewayVerdict {
  const item = view.inbox(referralId);
  if (item === undefined)
    return refusal(
      new StafettError("ERR_NOT_FOUND", "no referral in the inbox with this id", {
        reason: "unknown_referral",
        field: "referralId",
      }),
    );
  if (item.status !== "pending")
    return refusal(
      new StafettError("ERR_NOT_AUTHORISED", `the referral is already ${item.status}`, {
        reason: "not_pending",
        field: "referralId",
      }),
    );
  const id = ctx.derive(decision, item.forwardedId);
  return plan(
    [{ k: "answered", referralId, decision, eventId: id, at: now.toISOString() }],
    [
      {
        issue: {
          type: decision,
          addressee: item.via,
          referralId,
          id,
          body:
            decision === "accepted"
              ? { ofEventId: item.openedId }
              : { ofEventId: item.openedId, ...declined },
        },
      },
    ],
  );
}
