/**
 * Fault injection for tests, and the clock services read. Inert unless a test sets one of the
 * `STAFETT_TEST_*` variables in a service's environment (never set in production; ignored when
 * NODE_ENV is "production"):
 *
 * - `STAFETT_TEST_CRASH_AT=<point>[:<n>]`: the process kills itself (SIGKILL, as a crash would)
 *   the n-th time (default the first) it reaches that point of a handling: see `CrashPoint`.
 * - `STAFETT_TEST_POISON=<referral id>`: handling any event about that referral kills the
 *   process, every time (a crash-looping handler).
 * - `STAFETT_TEST_CLOCK_OFFSET_MS=<ms>`: the service's clock runs this far ahead (negative:
 *   behind) of the machine's.
 */

/**
 * The steps of carrying out a plan, in order: `before-journal` (decided and issued, nothing
 * written), `after-journal` (written, nothing published), `after-publish-<i>` (the i-th event
 * of the plan published, from 1), `after-publish` (all published, not yet acked). A handled
 * message's points are prefixed `handle:`, a timer's or an officer's `carry:`.
 */
export type CrashPoint = string;

const env = process.env.NODE_ENV === "production" ? {} : process.env;

function parseCrashAt(value: string | undefined): { point: string; nth: number } | undefined {
  if (value === undefined || value === "") return undefined;
  const m = /^(.*?)(?::(\d+))?$/.exec(value);
  return { point: m?.[1] ?? value, nth: Number(m?.[2] ?? 1) };
}

const crashAt = parseCrashAt(env.STAFETT_TEST_CRASH_AT);
const poison = env.STAFETT_TEST_POISON;
let crashHits = 0;

/** True when a test asked for crashes: plans are then published one event at a time. */
export const crashInjection = crashAt !== undefined;

/** Kills the process here if a test asked for it (`STAFETT_TEST_CRASH_AT`). */
export function crashPoint(point: CrashPoint): void {
  if (crashAt === undefined || crashAt.point !== point) return;
  crashHits += 1;
  if (crashHits === crashAt.nth) process.kill(process.pid, "SIGKILL");
}

/** Kills the process if a test made this referral poison (`STAFETT_TEST_POISON`). */
export function poisonPoint(referralId: string): void {
  if (poison !== undefined && poison === referralId) process.kill(process.pid, "SIGKILL");
}

const clockOffsetMs = Number(env.STAFETT_TEST_CLOCK_OFFSET_MS ?? 0) || 0;

/** The time as services read it: the machine's clock (shifted only by a test). */
export function systemNow(): Date {
  return new Date(Date.now() + clockOffsetMs);
}
