/**
 * A process that compacts one gateway journal as a gateway's party would (the party's own
 * `compactLines`, the gateway state's `strip`), for test/fault/compaction-kill.test.ts, which
 * kills it at random points. Prints "ready" once the journal is open, "done <ms>" at the end.
 */
// The modules themselves, not the package's barrel: the process starts in a fraction of the time.
import { Journal, type KeptLine } from "../../services/shared/src/journal.js";
import { compactLines } from "../../services/shared/src/retention.js";
import { GatewayState } from "../../services/gateway/src/state.js";

const path = process.argv[2];
if (path === undefined) throw new Error("usage: compact-child <journal>");
const { journal } = Journal.open<Record<string, unknown>>(path);
const state = new GatewayState();
process.stdout.write("ready\n");
const started = performance.now();
await journal.compact(
  (lines) =>
    compactLines(lines, state as unknown as Parameters<typeof compactLines>[1]) as KeptLine<
      Record<string, unknown>
    >[],
);
process.stdout.write(`done ${Math.round(performance.now() - started)}\n`);
await journal.close();
