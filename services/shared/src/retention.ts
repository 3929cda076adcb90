/**
 * How long a party keeps what it holds about a referral (docs/contract.md, principle 10;
 * GDPR art. 5(1)(e), storage limitation), and what a compaction of its journal keeps.
 *
 * A referral's handling ends at this party when it is closed, withdrawn or handed on. From then
 * on, its personal part (the sealed JWE inside the signed bytes the party kept) is kept for
 * `personalMs`, then erased; its metadata (the timeline, without personal data) for
 * `metadataMs`, then forgotten. An erasure on request erases the personal part at once.
 * Erasing and forgetting are journal lines; a compaction then rewrites the journal without the
 * bytes they cover (journal.ts `compact`), so they leave the disk.
 */
import type { KeptLine } from "./journal.js";

/** A party's retention periods, in milliseconds after a referral's handling ended here. */
export interface Retention {
  /** How long the personal part is kept (default 30 days). */
  personalMs: number;
  /** How long the metadata (timeline, no personal data) is kept (default 2 years). */
  metadataMs: number;
}

const DAY_MS = 24 * 3_600_000;

/**
 * The defaults. 30 days after the end: long enough for an officer to answer a question about a
 * case that was handed on; two years of metadata: the timeline an audit or a complaint asks
 * about. Both far beyond the 24-hour duplicate window and the 14-day age limit of events
 * (pipeline.ts `DEFAULT_MAX_AGE_MS`): a forgotten referral's event ids can no longer be replayed
 * against it, because a copy that old is refused as stale.
 */
export const DEFAULT_RETENTION: Readonly<Retention> = Object.freeze({
  personalMs: 30 * DAY_MS,
  metadataMs: 730 * DAY_MS,
});

/**
 * Metadata is kept at least this long: longer than events may be old (14 days) plus the clock
 * tolerance, so that the seen-message ids a compaction drops with a forgotten referral cannot
 * be replayed (a copy would be refused as stale before it is looked up).
 */
export const MIN_METADATA_MS = 15 * DAY_MS;

/** Why a referral's personal part was erased. */
export type ErasureCause = "request" | "retention";

/** What a service's state does for retention (implemented by each role's state). */
export interface Holdings<R> {
  /** The referral a record is about. */
  referralOf(record: R): string | undefined;
  /** The record without the personal part it carries (bytes holding the sealed JWE). */
  strip(record: R): R;
  /** Referrals whose handling here has ended, and when (ISO time). */
  ended(): Iterable<{ referralId: string; at: string }>;
  /** Whether the state holds this referral. */
  holds(referralId: string): boolean;
  /** Drops what leads to the referral's personal part (it is erased). */
  erase(referralId: string): void;
  /** Drops the referral altogether (its metadata expired). */
  forget(referralId: string): void;
  /** Empties the state before the compacted journal is replayed into it. */
  reset(): void;
}

/** The referral a line's seen message names (lines without records), or its first record's. */
function lineReferral<R>(
  line: Record<string, unknown>,
  referralOf: (r: R) => string | undefined,
): string | undefined {
  const seen = line.seen as { referralId?: unknown } | undefined;
  if (typeof seen?.referralId === "string") return seen.referralId;
  const rs = line.rs as R[] | undefined;
  for (const r of rs ?? []) {
    const id = referralOf(r);
    if (id !== undefined) return id;
  }
  return undefined;
}

/**
 * What a compaction keeps of a party's journal lines (pure; `lines` is read twice). The result replays to the same
 * state as the lines given: the same records (stripped where the referral is erased, which its
 * erase line does to the state anyway), the same erasures, the same plans not yet published
 * (their events byte for byte: exactly-once needs them), the same crash counts; and the same
 * seen-message ids, except those of forgotten referrals.
 *
 * - `{ done }` lines go, and with them the events of the plans they mark published;
 * - a forgotten referral's lines go (records, seen ids, erase and forget lines), except the
 *   events of a plan not yet published;
 * - an erased referral's records lose their personal part (`strip`);
 * - a `{ tried }` line stays only while no later line handled that delivery.
 */
export function compactLines<R>(
  lines: () => Iterable<KeptLine<Record<string, unknown>>>,
  holdings: Pick<Holdings<R>, "referralOf" | "strip">,
): KeptLine<Record<string, unknown>>[] {
  const done = new Set<number>();
  const forgotten = new Set<string>();
  const erased = new Set<string>();
  const triedOpen = new Map<string, number>();
  for (const { seq, record: l } of lines()) {
    if (typeof l.done === "number") done.add(l.done);
    const forget = l.forget as { referralId?: string } | undefined;
    if (forget?.referralId !== undefined) forgotten.add(forget.referralId);
    const erase = l.erase as { referralId?: string } | undefined;
    if (erase?.referralId !== undefined) erased.add(erase.referralId);
    const tried = l.tried as { durable: string; seq: number } | undefined;
    if (tried !== undefined) triedOpen.set(`${tried.durable}:${tried.seq}`, seq);
    const seen = l.seen as { durable: string; seq: number } | undefined;
    if (seen !== undefined) triedOpen.delete(`${seen.durable}:${seen.seq}`);
  }
  const triedKept = new Set(triedOpen.values());
  const out: KeptLine<Record<string, unknown>>[] = [];
  for (const { seq, record: l } of lines()) {
    if ("done" in l || "forget" in l) continue;
    if ("tried" in l) {
      if (triedKept.has(seq)) out.push({ seq, record: l });
      continue;
    }
    if ("erase" in l) {
      const id = (l.erase as { referralId: string }).referralId;
      if (!forgotten.has(id)) out.push({ seq, record: l });
      continue;
    }
    const undone = Array.isArray(l.out) && !done.has(seq);
    const referral = lineReferral(l, holdings.referralOf);
    if (!undone && referral !== undefined && forgotten.has(referral)) continue;
    const rs = Array.isArray(l.rs)
      ? (l.rs as R[])
          .filter((r) => !forgotten.has(holdings.referralOf(r) ?? ""))
          .map((r) => (erased.has(holdings.referralOf(r) ?? "") ? holdings.strip(r) : r))
      : undefined;
    const kept: Record<string, unknown> = {};
    if (l.seen !== undefined) kept.seen = l.seen;
    if (rs !== undefined) kept.rs = rs;
    if (undone) kept.out = l.out;
    if ("r" in l) kept.r = l.r;
    if (kept.seen === undefined && (rs?.length ?? 0) === 0 && !undone && !("r" in l)) continue;
    out.push({ seq, record: kept });
  }
  return out;
}
