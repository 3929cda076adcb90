/**
 * One error type for every refusal in Stafett. Callers switch on `code`, never on message text.
 * An error never carries the offending value: `toJSON()` returns only the fixed fields, so a
 * logged error cannot leak a child's data.
 */
export type ErrorCode =
  | "ERR_OVERSIZE"
  | "ERR_MALFORMED"
  | "ERR_SIGNATURE_MISSING"
  | "ERR_SIGNATURE_INVALID"
  | "ERR_ALG_UNSUPPORTED"
  | "ERR_UNKNOWN_KEY"
  | "ERR_KEY_REVOKED"
  | "ERR_KEY_NOT_VALID"
  | "ERR_ISSUER_MISMATCH"
  | "ERR_NOT_AUTHORISED"
  | "ERR_NOT_ADDRESSEE"
  | "ERR_SUBJECT_MISMATCH"
  | "ERR_SCHEMA_INVALID"
  | "ERR_PERSONAL_INVALID"
  | "ERR_NOT_RECIPIENT"
  | "ERR_DECRYPT_FAILED"
  | "ERR_COUNTERSIGNATURE_INVALID"
  | "ERR_COUNTERSIGNATURE_MISSING"
  | "ERR_REPLAY"
  | "ERR_IDEMPOTENCY_MISMATCH"
  | "ERR_HANDLER_FAILED"
  | "ERR_UNAVAILABLE"
  | "ERR_NOT_FOUND"
  | "ERR_GONE"
  | "ERR_OUTBOUND_POLICY"
  | "ERR_STALE"
  | "ERR_TRUST_LIST_INVALID"
  | "ERR_UNKNOWN_ORGANISATION"
  | "ERR_UNKNOWN_MUNICIPALITY"
  | "ERR_ADDRESS_INVALID"
  | "ERR_KEY_INVALID"
  | "ERR_CONFIG_INVALID"
  /** A key or a trust list is within the warning time before its expiry (operations.ts). */
  | "ERR_EXPIRING"
  /** The journal cannot be written now (reason: disk_full, io_error, broken); retried. */
  | "ERR_JOURNAL_WRITE"
  /** A journal line in the middle is damaged (reason: checksum, unparsable, …); start-up stops. */
  | "ERR_JOURNAL_DAMAGED"
  /** The own clock differs from the broker's beyond the tolerance (reason: ahead, behind). */
  | "ERR_CLOCK_SKEW"
  // What a running service finds missing on the bus (logged, and reported as not ready):
  | "ERR_BUS_CONSUMER_MISSING"
  | "ERR_BUS_STREAM_MISSING"
  | "ERR_TRUST_BUCKET_MISSING"
  | "ERR_MAX_DELIVERIES"
  /** A webhook endpoint answered 410 Gone: it is disabled (a log code, notifier.ts). */
  | "ERR_WEBHOOK_GONE"
  /** A notification's delivery failed (retried, or given up after the last retry). */
  | "ERR_DELIVERY_FAILED";

export interface StafettErrorOptions {
  /** A short machine-friendly reason within the code, e.g. "required", "check_failed". */
  reason?: string;
  /** Where the problem is: a JSON pointer, schema path or header name. Never a value. */
  field?: string;
  cause?: unknown;
  /** Every problem found, when there are several (schema validation reports them all). */
  issues?: readonly Issue[];
}

/** One problem: where (a JSON pointer) and which rule failed. Never the value. */
export interface Issue {
  field: string;
  reason: string;
  message: string;
}

export interface StafettErrorJson {
  name: string;
  code: ErrorCode;
  reason: string;
  field?: string;
  message: string;
  issues?: readonly Issue[];
}

export class StafettError extends Error {
  override readonly name = "StafettError";
  readonly code: ErrorCode;
  readonly reason: string;
  readonly field: string | undefined;
  readonly issues: readonly Issue[] | undefined;

  constructor(code: ErrorCode, message: string, options: StafettErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.reason = options.reason ?? "invalid";
    this.field = options.field;
    this.issues = options.issues;
  }

  toJSON(): StafettErrorJson {
    const out: StafettErrorJson = {
      name: this.name,
      code: this.code,
      reason: this.reason,
      message: this.message,
    };
    if (this.field !== undefined) out.field = this.field;
    if (this.issues !== undefined) out.issues = this.issues;
    return out;
  }
}

export function isStafettError(err: unknown): err is StafettError {
  return err instanceof StafettError;
}

/** The coded form of anything thrown, for code paths that must answer with a code. */
export function toStafettError(err: unknown, fallback: ErrorCode, message: string): StafettError {
  if (err instanceof StafettError) return err;
  // The library error is kept as `cause` for debugging but is never serialised (see toJSON).
  return new StafettError(fallback, message, { cause: err });
}
