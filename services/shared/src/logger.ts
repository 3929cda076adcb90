/**
 * One pino logger per service; components take `child({ component })`. Messages are constant
 * strings and data goes in the object. Personal data is never passed to a logger; redaction of
 * the fields that could carry it is only a backstop, compiled once here.
 */
import { pino, type DestinationStream, type Logger, type LoggerOptions } from "pino";

export type { Logger };

/** Paths that must never reach a log line, whatever a careless caller passes. */
export const REDACT_PATHS = [
  "personal",
  "*.personal",
  "*.*.personal",
  "child",
  "*.child",
  "payload",
  "*.payload",
  "body",
  "*.body",
  "data",
  "*.data",
  "event",
  "*.event",
  "authorization",
  "*.authorization",
  "req.headers.authorization",
  "privateJwk",
  "*.d",
];

export interface LoggerConfig {
  service: string;
  level?: string;
}

export function createLogger(config: LoggerConfig, destination?: DestinationStream): Logger {
  const options: LoggerOptions = {
    level: config.level ?? "info",
    base: { service: config.service },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    // An Error is logged by its coded fields only (StafettError.toJSON): library errors can
    // carry payloads, so their messages and stacks are not logged.
    serializers: { err: serializeError, error: serializeError },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}

function serializeError(err: unknown): unknown {
  if (
    err !== null &&
    typeof err === "object" &&
    "toJSON" in err &&
    typeof err.toJSON === "function"
  ) {
    return (err as { toJSON(): unknown }).toJSON();
  }
  if (err instanceof Error) return { name: err.name };
  return { name: typeof err };
}
