/** A service logger whose lines a test can read: to see the coded line a fault must leave. */
import { createLogger, type Logger } from "@stafett/shared";

export interface CapturedLog {
  log: Logger;
  /** Every line logged so far, parsed. */
  lines(): Record<string, unknown>[];
  /** The lines carrying `code` (and `reason`, when given). */
  coded(code: string, reason?: string): Record<string, unknown>[];
}

export function capturedLog(service: string): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(
    { service, level: "info" },
    {
      write(line: string) {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
  return {
    log,
    lines: () => [...lines],
    coded: (code, reason) =>
      lines.filter((l) => l.code === code && (reason === undefined || l.reason === reason)),
  };
}
