/**
 * What a role decided, as data. Each service's rules are pure functions (`decide`, in its
 * `decide.ts`) from its state, a verified event or an officer's command, and the time, to a
 * `Verdict`: a plan of events to send and records to journal, or a coded refusal. The party
 * runtime (party.ts) alone carries a plan out: it seals, signs, publishes, journals and applies.
 * So the rules can be read in one file per role and tested with tables, without a broker.
 */
import type { StafettError } from "./errors.js";
import type { IssueInput } from "./pipeline.js";

/**
 * The personal part an outgoing event carries (at `body.personal`), worked out when the plan is
 * carried out, because it needs the recipients' current keys and, perhaps, the own key.
 */
export interface Reseal {
  /** Who must be able to read it. */
  to: readonly string[];
  /** The JWE at hand. When it is already sealed to every one of `to`, `carried` is sent instead. */
  current?: string;
  /** What the event carries when `current` already reaches everyone (nothing: receivers use the original's). */
  carried?: string;
  /** The plaintext, when at hand; else `current` is opened with the own key. */
  plaintext?: unknown;
  /** Seal anew even when `current` already reaches everyone (a partner's JWE is not passed on). */
  fresh?: boolean;
}

/** One thing to send. */
export type Outgoing =
  /** An event this party issues and signs (its personal part sealed as `reseal` says, if given). */
  | { issue: IssueInput; reseal?: Reseal }
  /**
   * Someone else's signed event, countersigned by this party and published as is to `subject`
   * (a liaison handing an event to a partner). Waits while the partner's link is down.
   */
  | { countersign: { bytes: Uint8Array; subject: string; headers?: Record<string, string> } };

/** A decision to act: what to send, in this order and in one batch, then what to journal. */
export interface Plan<R> {
  send: Outgoing[];
  records: R[];
}

/** A decision to refuse: the message is quarantined and its sender answered (or the command fails). */
export interface Refusal {
  refuse: StafettError;
}

export type Verdict<R> = Plan<R> | Refusal;

export const plan = <R>(records: R[] = [], send: Outgoing[] = []): Plan<R> => ({ send, records });

export const refusal = (error: StafettError): Refusal => ({ refuse: error });

export const isRefusal = <R>(v: Verdict<R>): v is Refusal => "refuse" in v;

/** Two plans carried out as one: the first's events and records before the second's. */
export function join<R>(a: Plan<R>, b: Plan<R>): Plan<R> {
  return { send: [...a.send, ...b.send], records: [...a.records, ...b.records] };
}
