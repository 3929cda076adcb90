/**
 * `stafett journal check|repair --state DIR`: examine a service's journal (DIR/journal.jsonl),
 * and, after an operator decided to, repair it. A service refuses to start on a journal damaged
 * in the middle (ERR_JOURNAL_DAMAGED, naming the file and the byte offset); `check` lists every
 * damaged line; `repair` (with the service stopped) keeps the damaged lines aside in
 * `journal.jsonl.damaged-<time>`, a copy of the whole journal in
 * `journal.jsonl.before-repair-<time>`, and leaves the journal with its good lines, so the
 * service can start. What the damaged lines recorded is lost to the service.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Journal, StafettError, type CheckReport } from "@stafett/shared";
import type { Io } from "../io.js";

function describe(r: CheckReport, io: Io): void {
  io.out(
    `${r.path}: ${r.bytes} bytes, ${r.records} record line(s) (${r.legacy} without checksums), ` +
      `${r.duplicates} repeated, ${r.damaged.length} damaged in the middle` +
      `${r.tornTail === undefined ? "" : `, a torn tail of ${r.tornTail.bytes} bytes at ${r.tornTail.offset}`}\n`,
  );
  for (const d of r.damaged)
    io.out(`  damaged at byte ${d.offset} (${d.length} bytes): ${d.reason}\n`);
}

export function journal(args: { action: string; state: string }, io: Io): number {
  const path = join(args.state, "journal.jsonl");
  if (!existsSync(path))
    throw new StafettError("ERR_NOT_FOUND", `no journal at ${path}`, { reason: "no_journal" });
  switch (args.action) {
    case "check": {
      const report = Journal.check(path);
      describe(report, io);
      if (report.damaged.length > 0) {
        io.out(
          "the service will not start on this journal; `stafett journal repair` keeps the damaged lines aside (stop the service first)\n",
        );
        return 1;
      }
      if (report.tornTail !== undefined)
        io.out(
          "the torn tail was never acknowledged; the service drops it (kept aside) at start\n",
        );
      return 0;
    }
    case "repair": {
      const report = Journal.repair(path);
      describe(report, io);
      if (report.backup === undefined) {
        io.out("nothing to repair\n");
        return 0;
      }
      io.out(
        `repaired: ${report.damaged.length} damaged line(s)${report.tornTail === undefined ? "" : " and the torn tail"} kept in ${report.keptIn ?? "-"}; the journal as it was in ${report.backup}\n`,
      );
      return 0;
    }
    default:
      throw new StafettError("ERR_CONFIG_INVALID", "journal takes check or repair", {
        reason: "action",
      });
  }
}
