/**
 * What a party tells whoever watches it (operations.ts: metrics): the smallest hook into the
 * runtime, called where the event happens, never in the way of it.
 */
import type { ErrorCode } from "./errors.js";

export interface PartyObserver {
  /** A journal append settled: how long it took, in seconds, and whether it failed. */
  journalAppended?(seconds: number, failed: boolean): void;
  /** The party refused a message it received (it is then quarantined). */
  refused?(code: ErrorCode): void;
  /** The quarantine stream confirmed the copy of a refused message. */
  quarantined?(code: ErrorCode): void;
}
