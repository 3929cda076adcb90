/**
 * The national coordinator's rules, as a pure decision: an `escalated` event becomes an entry in
 * its inbox of escalations; a hub's `reported` becomes its region's latest report, for the
 * national overview (`decideReport`); nothing else it receives changes anything. Its officers
 * then handle each escalation: acknowledge it, assign it to a named officer, resolve it with a
 * note (`decideHandling`), each step journaled, so it survives a restart. coordinator.ts carries
 * the verdicts out; `evolve` applies a journal record.
 */
import {
  hubId,
  parseOrgId,
  plan,
  refusal,
  StafettError,
  type Plan,
  type ReportedJson,
  type Verdict,
  type VerifiedEvent,
} from "@stafett/shared";

export interface Escalation {
  referralId: string;
  eventId: string;
  from: string;
  holder: string;
  deadline: string;
  urgency?: string;
  destination?: { country: string; region?: string; municipality?: string };
  at: string;
  /** Who took it up, and when. */
  acknowledged?: { by: string; name?: string; at: string };
  /** The officer it is assigned to (a name as the coordinator's officers know each other). */
  assignee?: string;
  /** How it ended: who closed it, when, and their note. */
  resolved?: { by: string; name?: string; at: string; note: string };
}

/** An officer's step with an escalation. */
export type Handling =
  | { step: "acknowledged" }
  | { step: "assigned"; officer: string }
  | { step: "resolved"; note: string };

/** The officer taking the step (the token's `sub` and `name`). */
export interface Officer {
  subject: string;
  name?: string;
}

/**
 * A region's latest report (docs/contract.md, "The regional reports"): its hub's counts, when
 * the hub took them (the event's time, which orders the region's reports) and when the
 * coordinator received them. Counts only, as they came: nothing about a referral.
 */
export interface RegionReport {
  region: string;
  /** The hub that reported (the region's own: decideReport refuses any other). */
  hub: string;
  eventId: string;
  reportedAt: string;
  receivedAt: string;
  counts: Omit<ReportedJson, "region">;
}

export type CoordinatorRecord =
  | { k: "escalation"; escalation: Escalation }
  | ({ k: "handled"; eventId: string; by: string; name?: string; at: string } & Handling)
  | { k: "reported"; report: RegionReport };

/** What the coordinator holds: its escalations, and each region's latest report. */
export interface CoordinatorState {
  escalations: Map<string, Escalation>;
  reports: Map<string, RegionReport>;
}

/**
 * How far ahead of the coordinator's clock a report may be dated. Tighter than the pipeline's
 * five minutes: a report dated ahead would hold the region's place, and every true report
 * older than it would be ignored, until the clock caught up.
 */
export const REPORT_FUTURE_SKEW_MS = 30_000;

export function decide(
  v: VerifiedEvent,
  reports: ReadonlyMap<string, RegionReport>,
  now: Date,
): Verdict<CoordinatorRecord> {
  if (v.event.type === "reported") return decideReport(v, reports, now);
  return decideEscalated(v, now);
}

function decideEscalated(v: VerifiedEvent, now: Date): Plan<CoordinatorRecord> {
  const esc = v.event.escalated;
  if (v.event.type !== "escalated" || esc === undefined) return plan();
  return plan([
    {
      k: "escalation",
      escalation: {
        referralId: v.event.referralId,
        eventId: v.event.id,
        from: v.issuer.id,
        holder: esc.holder,
        deadline: esc.deadline,
        ...(esc.urgency === undefined ? {} : { urgency: esc.urgency }),
        ...(esc.destination === undefined ? {} : { destination: esc.destination }),
        at: now.toISOString(),
      },
    },
  ]);
}

/** The counts of a report by where the referrals stand, and by urgency: both are the open ones. */
export function openOf(c: Omit<ReportedJson, "region">): { byState: number; byUrgency: number } {
  return {
    byState: (c.triage ?? 0) + (c.forwarded ?? 0) + (c.rerouted ?? 0),
    byUrgency: (c.immediate ?? 0) + (c.high ?? 0) + (c.normal ?? 0),
  };
}

/**
 * A hub's report of its region. Refused (quarantined, and the sender told): from anyone but a
 * hub (`not_hub`; the policy refuses it first), from a hub about another region or of another
 * country (`not_region_hub`), dated more than REPORT_FUTURE_SKEW_MS ahead (`future`) or at a time
 * the clock cannot read (`time`), with counts that disagree (`inconsistent`). Ignored, not applied: one not newer than the region's
 * latest (reports may arrive out of order; the newest stands).
 */
export function decideReport(
  v: VerifiedEvent,
  reports: ReadonlyMap<string, RegionReport>,
  now: Date,
): Verdict<CoordinatorRecord> {
  const body = v.event.reported;
  if (body === undefined) return plan();
  const refuse = (reason: string, message: string, field: string) =>
    refusal(new StafettError("ERR_NOT_AUTHORISED", message, { reason, field }));
  if (v.issuer.role !== "hub") return refuse("not_hub", "only a hub reports a region", "/source");
  if (v.issuer.id !== hubId(v.issuer.country, body.region) || v.issuer.country !== ownCountry(v))
    return refuse("not_region_hub", "a hub reports its own region only", "/reported/region");
  const time = Date.parse(v.event.time);
  // A time the clock cannot read (NaN: a leap second) would pass every comparison below, and
  // evolve would never replace it, nor the overview mark it stale.
  if (!Number.isFinite(time))
    return refusal(
      new StafettError("ERR_MALFORMED", "the report's time cannot be read", {
        reason: "time",
        field: "/time",
      }),
    );
  if (time > now.getTime() + REPORT_FUTURE_SKEW_MS)
    return refusal(
      new StafettError("ERR_STALE", "the report is dated ahead of the coordinator's clock", {
        reason: "future",
        field: "/time",
      }),
    );
  const { region, ...counts } = body;
  const open = openOf(counts);
  if (
    open.byState !== open.byUrgency ||
    (counts.overdue ?? 0) > open.byState ||
    (counts.escalated ?? 0) > open.byState ||
    (counts.nearestDeadline === undefined) !== (open.byState === 0)
  )
    return refusal(
      new StafettError("ERR_MALFORMED", "the report's counts disagree", {
        reason: "inconsistent",
        field: "/reported",
      }),
    );
  const held = reports.get(region);
  if (held !== undefined && time <= Date.parse(held.reportedAt)) return plan();
  return plan([
    {
      k: "reported",
      report: {
        region,
        hub: v.issuer.id,
        eventId: v.event.id,
        reportedAt: v.event.time,
        receivedAt: now.toISOString(),
        counts,
      },
    },
  ]);
}

/** The coordinator's own country: the addressee's (the pipeline checked it is this coordinator). */
const ownCountry = (v: VerifiedEvent): string => parseOrgId(v.event.addressee).country;

/**
 * An officer's step with escalation `eventId`: acknowledged first, then assigned (again, to hand
 * it on) until it is resolved; nothing after that. A step out of order is refused with
 * ERR_NOT_AUTHORISED and a reason naming the rule.
 */
export function decideHandling(
  escalation: Escalation | undefined,
  eventId: string,
  handling: Handling,
  by: Officer,
  now: Date,
): Verdict<CoordinatorRecord> {
  const refuse = (reason: string, message: string) =>
    refusal(new StafettError("ERR_NOT_AUTHORISED", message, { reason, field: "eventId" }));
  if (escalation === undefined)
    return refusal(
      new StafettError("ERR_NOT_FOUND", "no such escalation", {
        reason: "unknown",
        field: "eventId",
      }),
    );
  if (escalation.resolved !== undefined) return refuse("resolved", "the escalation is resolved");
  if (handling.step === "acknowledged" && escalation.acknowledged !== undefined)
    return refuse("acknowledged", "the escalation is already acknowledged");
  if (handling.step !== "acknowledged" && escalation.acknowledged === undefined)
    return refuse("not_acknowledged", "acknowledge the escalation first");
  return plan([
    {
      k: "handled",
      eventId,
      by: by.subject,
      ...(by.name === undefined ? {} : { name: by.name }),
      at: now.toISOString(),
      ...handling,
    },
  ]);
}

/** The state after one journal record (on replay and after each append). */
export function evolve(state: CoordinatorState, r: CoordinatorRecord): void {
  const { escalations, reports } = state;
  // Journals written before handling existed hold escalations without `k`.
  if ("escalation" in r) {
    escalations.set(r.escalation.eventId, r.escalation);
    return;
  }
  if (r.k === "reported") {
    // The newest stands, whatever order records were appended in (reports are handled
    // concurrently: they belong to no referral, whose lock would order them).
    const held = reports.get(r.report.region);
    if (held === undefined || Date.parse(r.report.reportedAt) > Date.parse(held.reportedAt))
      reports.set(r.report.region, r.report);
    return;
  }
  const e = escalations.get(r.eventId);
  if (e === undefined) return;
  const who = { by: r.by, ...(r.name === undefined ? {} : { name: r.name }), at: r.at };
  if (r.step === "acknowledged") escalations.set(r.eventId, { ...e, acknowledged: who });
  else if (r.step === "assigned") escalations.set(r.eventId, { ...e, assignee: r.officer });
  else escalations.set(r.eventId, { ...e, resolved: { ...who, note: r.note } });
}
