/**
 * What a service finds missing on the bus: each thing it needs there (the connection, its durable
 * consumers and the stream they read, the trust bucket) reports itself here when it goes missing
 * and when it is back. Operations serve it as the `bus` readiness check: `ready` when nothing is missing, and
 * `problems` says what is, by code (never with any message content).
 */
import type { ErrorCode } from "./errors.js";

export interface BusProblem {
  /** What is missing, e.g. "consumer:STAFETT_SE.se-hub-vast", "trust", "connection". */
  component: string;
  code: ErrorCode;
  reason: string;
  /** When it went missing (ISO 8601). */
  since: string;
}

export class BusHealth {
  private readonly missing = new Map<string, BusProblem>();

  /**
   * Records that `component` is missing. Returns true when this is news (it was there before, or
   * missing for another reason), so that the caller logs a transition once, not on every check.
   */
  fail(component: string, code: ErrorCode, reason: string): boolean {
    const known = this.missing.get(component);
    if (known !== undefined && known.code === code && known.reason === reason) return false;
    this.missing.set(component, {
      component,
      code,
      reason,
      since: known?.since ?? new Date().toISOString(),
    });
    return true;
  }

  /** Records that `component` is there; returns true when it was missing before. */
  ok(component: string): boolean {
    return this.missing.delete(component);
  }

  get ready(): boolean {
    return this.missing.size === 0;
  }

  get problems(): BusProblem[] {
    return [...this.missing.values()];
  }
}
