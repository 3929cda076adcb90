/**
 * Part 8: what a hub keeps. A hub process (built output) starts on a journal as its own handling
 * would have written it for N referrals (each: the received line with the opened bytes and the
 * plan that forwards them, marked done; closed ones also accepted and closed, long enough ago
 * that their metadata period has passed), applies retention, compacts, and is measured: RSS and
 * journal size, against a fresh hub in the same run. The closed case should stay within a small
 * constant of the fresh hub; the open one grows with what it holds.
 */
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { waitFor } from "@stafett/devkit";
import { Journal, type Logger } from "@stafett/shared";
import type { HubRecord } from "../services/hub/src/state.js";
import { benchCountry, memoryOf, serviceEnv, startService, stopService } from "./services.js";
import { HUB, ORIGIN } from "./sample.js";

export interface HubHolding {
  case: "fresh" | "open" | "closed";
  referrals: number;
  /** The journal as written, before the hub started. */
  journalBytesWritten: number;
  /** The journal once the hub applied retention and compacted. */
  journalBytes: number;
  /** RSS once retention was applied, in the process that replayed the journal as written. */
  rssMB: number;
  /** RSS after a restart on the journal as it is then (what a long-running hub keeps). */
  rssRestartedMB: number;
}

export interface RetentionResult {
  referrals: number;
  cases: HubHolding[];
  /** RSS of the hub after N closed referrals over a fresh hub's (in the same process). */
  closedRssRatio: number;
  /** The same, after a restart of each. */
  closedRssRestartedRatio: number;
  /** Journal bytes after N closed referrals over a fresh hub's. */
  closedJournalRatio: number;
  openRssRatio: number;
}

/** When the closed referrals ended: beyond any metadata period. */
const LONG_AGO = "2020-01-01T00:00:00.000Z";
/** The open ones' deadline: not passed while the bench runs (nothing escalates). */
const FAR_AHEAD = "2100-01-01T00:00:00.000Z";

/** Writes the journal a hub would have for `n` referrals, open or closed. */
async function writeHubJournal(
  path: string,
  n: number,
  closed: boolean,
  opened: string,
): Promise<number> {
  const { journal } = Journal.open<Record<string, unknown>>(path);
  const BATCH = 500;
  for (let start = 0; start < n; start += BATCH) {
    const lines: Promise<unknown>[] = [];
    for (let i = start; i < Math.min(n, start + BATCH); i++) {
      const referralId = `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
      const received: HubRecord = {
        k: "received",
        referralId,
        openedId: `opened-${i}`,
        origin: ORIGIN,
        opened,
        urgency: "URGENCY_NORMAL",
        deadline: FAR_AHEAD,
        destination: { country: "se", municipality: "1480" },
        from: ORIGIN,
        at: LONG_AGO,
      };
      const forwarded: HubRecord = {
        k: "forwarded",
        referralId,
        to: "se:municipality:1480",
        eventId: `forwarded-${i}`,
        at: LONG_AGO,
      };
      lines.push(
        journal
          .append({
            seen: { id: `opened-${i}`, seq: i + 1, durable: "hub", referralId },
            rs: [received, forwarded],
            out: [{ subject: "stafett.se.bench", headers: {}, bytes: opened }],
          })
          .then((at) => journal.append({ done: at.seq })),
      );
      if (closed) {
        const accepted: HubRecord = {
          k: "accepted",
          referralId,
          by: "se:municipality:1480",
          eventId: `accepted-${i}`,
          at: LONG_AGO,
        };
        const end: HubRecord = { k: "closed", referralId, eventId: `closed-${i}`, at: LONG_AGO };
        lines.push(
          journal.append({
            seen: { id: `accepted-${i}`, seq: n + 2 * i + 1, durable: "hub", referralId },
            rs: [accepted],
          }),
          journal.append({
            seen: { id: `closed-${i}`, seq: n + 2 * i + 2, durable: "hub", referralId },
            rs: [end],
          }),
        );
      }
    }
    await Promise.all(lines);
  }
  await journal.close();
  return statSync(path).size;
}

export async function runRetention(
  log: Logger,
  options: { referrals: number; opened: string; nodeArgs?: readonly string[] },
): Promise<RetentionResult> {
  const local = await benchCountry(log);
  const cases: HubHolding[] = [];
  try {
    for (const kind of ["fresh", "open", "closed"] as const) {
      const stateDir = join(local.stateRoot, `retention-${kind}`);
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      const journalPath = join(stateDir, "journal.jsonl");
      const n = kind === "fresh" ? 0 : options.referrals;
      const written =
        n === 0 ? 0 : await writeHubJournal(journalPath, n, kind === "closed", options.opened);
      const env = serviceEnv(local, HUB, {
        STAFETT_STATE_DIR: stateDir,
        STAFETT_RETENTION_SWEEP: "1s",
      });
      let hub = await startService("hub", HUB, env, options.nodeArgs);
      try {
        // Retention applied and the journal compacted: the closed referrals are forgotten.
        if (kind === "closed")
          await waitFor(() => statSync(journalPath).size < written / 100, {
            timeoutMs: 300_000,
            message: "the hub's journal compacted",
          });
        // A few sweeps later (nothing left to do), measured at rest.
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        const rssMB = memoryOf(hub.pid).rssMB;
        await stopService(hub);
        hub = await startService("hub", HUB, env, options.nodeArgs);
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        cases.push({
          case: kind,
          referrals: n,
          journalBytesWritten: written,
          journalBytes: statSync(journalPath, { throwIfNoEntry: false })?.size ?? 0,
          rssMB,
          rssRestartedMB: memoryOf(hub.pid).rssMB,
        });
      } finally {
        await stopService(hub);
      }
    }
  } finally {
    await local.stop();
  }
  const of = (k: HubHolding["case"]): HubHolding => {
    const c = cases.find((x) => x.case === k);
    if (c === undefined) throw new Error(`no ${k} case`);
    return c;
  };
  const fresh = of("fresh");
  return {
    referrals: options.referrals,
    cases,
    closedRssRatio: of("closed").rssMB / fresh.rssMB,
    closedRssRestartedRatio: of("closed").rssRestartedMB / fresh.rssRestartedMB,
    // A fresh hub's journal may be empty: count it as one line's worth (no division by zero).
    closedJournalRatio: of("closed").journalBytes / Math.max(fresh.journalBytes, 100),
    openRssRatio: of("open").rssMB / fresh.rssMB,
  };
}

/** The lines `npm run bench` prints for part 8. */
export function retentionLines(r: RetentionResult): string[] {
  return [
    ...r.cases.map(
      (c) =>
        `hub, ${c.case} (${c.referrals} referrals): RSS ${c.rssMB.toFixed(1)} MB (restarted ${c.rssRestartedMB.toFixed(1)} MB), journal ${(c.journalBytes / 1e6).toFixed(2)} MB (written ${(c.journalBytesWritten / 1e6).toFixed(1)} MB)`,
    ),
    `closed/fresh: RSS x${r.closedRssRatio.toFixed(2)} (restarted x${r.closedRssRestartedRatio.toFixed(2)}), journal x${r.closedJournalRatio.toFixed(1)}; open/fresh: RSS x${r.openRssRatio.toFixed(2)}`,
  ];
}
