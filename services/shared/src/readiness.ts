/**
 * Whether a service can do its work: each thing it needs on the bus (the connection, its durable
 * consumers and the stream they read, the trust bucket) reports itself here when it goes missing
 * and when it is back. A service is ready when nothing is missing; an HTTP readiness probe reads
 * `ready`, and `problems` says what is missing, by code (never with any message content).
 */
import type { ErrorCode } from "./errors.js";

export interface ReadinessProblem {
  /** What is missing, e.g. "consumer:STAFETT_SE.se-hub-vast", "trust", "connection". */
  component: string;
  code: ErrorCode;
  reason: string;
  /** When it went missing (ISO 8601). */
  since: string;
}

export class Readiness {
  private readonly missing = new Map<string, ReadinessProblem>();

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

  get problems(): ReadinessProblem[] {
    return [...this.missing.values()];
  }
}
