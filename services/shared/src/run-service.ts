/**
 * A service's entry point: start it, stop it by draining on SIGINT or SIGTERM, and, when it
 * cannot start, say why in one line (the coded refusal, or the system error's code) and exit 1,
 * never with a stack trace that prints paths and library internals.
 */
import { isStafettError } from "./errors.js";

export interface Stoppable {
  stop(): Promise<void>;
}

/** The one line a refused start-up prints on stderr. */
export function startupFailure(service: string, err: unknown): string {
  if (isStafettError(err))
    return `${service}: rejected: ${err.code} (${err.reason})${err.field === undefined ? "" : ` at ${err.field}`}: ${err.message}`;
  const code = (err as { code?: unknown } | undefined)?.code;
  const name = err instanceof Error ? err.name : "Error";
  return `${service}: could not start (${name}${typeof code === "string" ? `: ${code}` : ""})`;
}

export async function runService(service: string, start: () => Promise<Stoppable>): Promise<void> {
  let running: Stoppable;
  try {
    running = await start();
  } catch (err) {
    process.stderr.write(`${startupFailure(service, err)}\n`);
    process.exitCode = 1;
    return;
  }
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.once(signal, () => void running.stop());
}
