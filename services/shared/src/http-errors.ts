/**
 * One mapping from anything a request handler throws to an HTTP answer, for every service's API:
 * a coded body (`code`, never a value from the request), the status, and `Retry-After` when the
 * caller should simply try again.
 */
import { isRetryablePublishError } from "./bus.js";
import { isStafettError, type ErrorCode } from "./errors.js";
import { AuthError } from "./http-auth.js";

export interface ErrorReply {
  status: number;
  body: Record<string, unknown>;
  headers: Record<string, string>;
}

/** Status per code where it is not 400 (a problem with the request). */
const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  ERR_NOT_FOUND: 404,
  ERR_GONE: 410,
  ERR_NOT_AUTHORISED: 409,
  ERR_REPLAY: 409,
  ERR_IDEMPOTENCY_MISMATCH: 422,
  ERR_OUTBOUND_POLICY: 409,
  ERR_UNAVAILABLE: 503,
  ERR_JOURNAL_WRITE: 503,
  ERR_CLOCK_SKEW: 503,
  ERR_JOURNAL_DAMAGED: 500,
  ERR_KEY_NOT_VALID: 503,
  // Only the service's own key can be revoked under an HTTP request: an operator's matter.
  ERR_KEY_REVOKED: 503,
  ERR_UNKNOWN_KEY: 503,
  ERR_NOT_RECIPIENT: 500,
  ERR_DECRYPT_FAILED: 500,
  ERR_HANDLER_FAILED: 500,
  ERR_CONFIG_INVALID: 500,
};

const RETRY = { "Retry-After": "5" };
const BUS_UNAVAILABLE =
  /maximum messages|maximum bytes|resource limits|no responders|timeout|closed|disconnect/i;

export function errorReply(err: unknown, bodyLimit: number): ErrorReply {
  if (err instanceof AuthError)
    return { status: err.status, body: { code: err.code, message: err.message }, headers: {} };
  if (isStafettError(err)) {
    const status = STATUS_OF[err.code] ?? 400;
    return { status, body: { ...err.toJSON() }, headers: status === 503 ? RETRY : {} };
  }
  if (
    isRetryablePublishError(err) ||
    BUS_UNAVAILABLE.test(String((err as Error | undefined)?.message))
  ) {
    // The bus cannot take it now; nothing was accepted, so the caller retries (with its Idempotency-Key).
    return {
      status: 503,
      body: {
        code: "ERR_UNAVAILABLE",
        message: "the message bus is not available right now; retry later",
      },
      headers: RETRY,
    };
  }
  const status = (err as { statusCode?: number } | undefined)?.statusCode;
  if (status === 413)
    return {
      status,
      body: { code: "ERR_OVERSIZE", message: `request body is larger than ${bodyLimit} bytes` },
      headers: {},
    };
  if (status !== undefined && status < 500)
    return {
      status,
      body: { code: "ERR_BAD_REQUEST", message: "the request is not valid" },
      headers: {},
    };
  return { status: 500, body: { code: "ERR_INTERNAL", message: "internal error" }, headers: {} };
}
