/**
 * The national overview of open referrals (`GET /v1/overview`, the Desk's overview page): each
 * region's latest report, its age, and the totals. Pure: from the reports held and the time.
 * Counts only, as the hubs sent them: no referral, no municipality, nothing about a child.
 */
import {
  REPORTED_COUNTS,
  type Overview,
  type OverviewCounts,
  type RegionOverview,
} from "@stafett/shared";
import { openOf, type RegionReport } from "./decide.js";

/**
 * A region whose latest report is older than this is marked stale: a hub reports at least every
 * 5 minutes, so two heartbeats were missed.
 */
export const DEFAULT_STALE_AFTER_MS = 12 * 60_000;

function countsOf(r: RegionReport | undefined): OverviewCounts {
  const c = r?.counts ?? {};
  return {
    open: openOf(c).byState,
    ...Object.fromEntries(REPORTED_COUNTS.map((k) => [k, c[k] ?? 0] as const)),
    ...(c.nearestDeadline === undefined ? {} : { nearestDeadline: c.nearestDeadline }),
  } as OverviewCounts;
}

const earlier = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined ? b : b === undefined || Date.parse(a) <= Date.parse(b) ? a : b;

/**
 * The overview at `now`: one row per region of `regions` and per region that reported (sorted by
 * slug), and the totals of the latest reports, stale ones included (the best knowledge there is;
 * the rows say which are stale).
 */
export function overviewOf(
  reports: ReadonlyMap<string, RegionReport>,
  regions: Iterable<string>,
  now: Date,
  staleAfterMs = DEFAULT_STALE_AFTER_MS,
): Overview {
  const slugs = [...new Set([...regions, ...reports.keys()])].sort();
  const rows = slugs.map((region): RegionOverview => {
    const r = reports.get(region);
    return {
      region,
      ...(r === undefined
        ? {}
        : { hub: r.hub, reportedAt: r.reportedAt, receivedAt: r.receivedAt }),
      ...countsOf(r),
      stale: r === undefined || now.getTime() - Date.parse(r.reportedAt) > staleAfterMs,
    };
  });
  const totals = countsOf(undefined);
  for (const row of rows) {
    totals.open += row.open;
    for (const k of REPORTED_COUNTS) totals[k] += row[k];
    const nearest = earlier(totals.nearestDeadline, row.nearestDeadline);
    if (nearest !== undefined) totals.nearestDeadline = nearest;
  }
  return { at: now.toISOString(), staleAfterMs, regions: rows, totals };
}
