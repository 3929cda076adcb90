/**
 * The hub's report to the national coordinator (`reported`; docs/contract.md, "The regional
 * reports"): its region's open referrals in aggregate, and when to send it. Pure: hub.ts reads
 * the state, asks these functions and carries the report out through the party runtime.
 *
 * Data minimisation: the report is built from counts alone. No referral id, no municipality and
 * nothing about a child enters it, so nothing of that kind can leave with it.
 */
import { REPORTED_COUNTS, type ReportedCount, type ReportedJson } from "@stafett/shared";
import { awaitsResponsibility, type HubReferral } from "./state.js";

/**
 * A report is sent at least this often, changed or not: the coordinator's proof of life. A change
 * goes out within the gap below, so this only bounds how late a dead hub is noticed; each report
 * is a journal line at the hub and at the coordinator (288 a day per region at 5 minutes).
 */
export const DEFAULT_REPORT_EVERY_MS = 5 * 60_000;
/** And at most once in this time, however often the counts change (a burst is one report). */
export const DEFAULT_REPORT_GAP_MS = 2_000;

/** Where an open referral stands, as the report counts it. */
function standing(ref: HubReferral): "triage" | "forwarded" | "rerouted" {
  if (ref.status === "forwarded") return "forwarded";
  if (ref.status === "rerouted") return "rerouted";
  // Received (a moment before it is routed), held for triage, or declined and to be routed again.
  return "triage";
}

const URGENCY_COUNT = {
  URGENCY_IMMEDIATE: "immediate",
  URGENCY_HIGH: "high",
  URGENCY_NORMAL: "normal",
} as const satisfies Record<HubReferral["urgency"], ReportedCount>;

/**
 * The region's open referrals (those nobody has taken responsibility for: `awaitsResponsibility`)
 * at `now`, counted by where they stand, by urgency, past their deadline and escalated, with the
 * nearest deadline. Counts at zero are left out, as the proto3 JSON mapping leaves them out.
 */
export function regionReport(
  region: string,
  referrals: Iterable<HubReferral>,
  now: Date,
): ReportedJson {
  const counts = new Map<ReportedCount, number>();
  const add = (k: ReportedCount) => counts.set(k, (counts.get(k) ?? 0) + 1);
  let nearest: number | undefined;
  for (const ref of referrals) {
    if (!awaitsResponsibility(ref)) continue;
    add(standing(ref));
    add(URGENCY_COUNT[ref.urgency]);
    const deadline = Date.parse(ref.deadline);
    if (deadline <= now.getTime()) add("overdue");
    if (ref.escalated) add("escalated");
    if (nearest === undefined || deadline < nearest) nearest = deadline;
  }
  return {
    region,
    ...Object.fromEntries(
      REPORTED_COUNTS.flatMap((k) => (counts.has(k) ? [[k, counts.get(k)]] : [])),
    ),
    ...(nearest === undefined ? {} : { nearestDeadline: new Date(nearest).toISOString() }),
  };
}

/** The last report sent: what it said and when. */
export interface LastReport {
  report: ReportedJson;
  at: number;
}

/**
 * Whether to send `current` now: when the counts differ from the last report's and the last one
 * is at least `gapMs` old (a change waits for the gap to pass: at most one report per gap), or
 * when the last one is `everyMs` old whatever it said (the heartbeat). The first is sent at once.
 */
export function reportDue(
  last: LastReport | undefined,
  current: ReportedJson,
  now: number,
  { everyMs = DEFAULT_REPORT_EVERY_MS, gapMs = DEFAULT_REPORT_GAP_MS } = {},
): boolean {
  if (last === undefined) return true;
  const age = now - last.at;
  if (age >= everyMs) return true;
  return age >= gapMs && !sameReport(last.report, current);
}

function sameReport(a: ReportedJson, b: ReportedJson): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof ReportedJson>;
  return [...keys].every((k) => a[k] === b[k]);
}
