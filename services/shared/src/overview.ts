/**
 * The national overview of open referrals as the coordinator's API answers it (`GET /v1/overview`)
 * and its Desk shows it: the shapes only, shared by the service that builds it
 * (services/coordinator/src/overview.ts) and the page that renders it (desk/plugin.ts).
 */
import type { ReportedCount } from "./types.js";

/**
 * The counts of a region, or of all of them: `open`, and every count of a report (REPORTED_COUNTS),
 * zero included; the earliest deadline among the open referrals, absent when none is open.
 */
export type OverviewCounts = { open: number; nearestDeadline?: string } & Record<
  ReportedCount,
  number
>;

export interface RegionOverview extends OverviewCounts {
  region: string;
  /** The hub that reported; absent when the region has not reported. */
  hub?: string;
  /** When the hub took the counts (its report's time), and when the coordinator received them. */
  reportedAt?: string;
  receivedAt?: string;
  /** No report, or the latest is older than `staleAfterMs`: the counts may be out of date. */
  stale: boolean;
}

export interface Overview {
  at: string;
  staleAfterMs: number;
  regions: RegionOverview[];
  totals: OverviewCounts;
}
