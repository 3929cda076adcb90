/**
 * Deadline-based waiting for tests: poll a condition until it holds or the deadline passes.
 * Never a fixed sleep (docs/style.md, "Tests").
 */

export interface WaitOptions {
  /** Give up after this long; default 5 000 ms. */
  timeoutMs?: number;
  /** Pause between attempts; default 25 ms. */
  intervalMs?: number;
  /** What was awaited, for the timeout error ("stream ORDERS has a leader"). */
  message?: string;
}

/** Thrown when a condition did not hold before its deadline; `cause` is the last error seen. */
export class WaitTimeoutError extends Error {
  override readonly name = "WaitTimeoutError";
  readonly timeoutMs: number;
  readonly attempts: number;

  constructor(message: string, timeoutMs: number, attempts: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.timeoutMs = timeoutMs;
    this.attempts = attempts;
  }
}

const NOT_YET: unique symbol = Symbol("not yet");

/**
 * Resolves with the first value `probe` returns that is not `undefined`. A probe that throws
 * counts as "not yet" (a server that is still starting refuses connections); the last error
 * becomes the timeout error's `cause`, so nothing is hidden when the deadline passes.
 */
export async function waitForValue<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  const intervalMs = options.intervalMs ?? 25;
  const started = Date.now();
  const deadline = started + timeoutMs;
  let attempts = 0;
  let lastError: unknown;

  for (;;) {
    attempts++;
    const remaining = deadline - Date.now();
    try {
      // A probe that hangs must not outlive the deadline.
      const value = await raceDeadline(Promise.resolve().then(probe), Math.max(remaining, 1));
      if (value !== NOT_YET && value !== undefined) {
        return value;
      }
    } catch (err) {
      lastError = err;
    }
    if (Date.now() + intervalMs > deadline) {
      const what = options.message ?? "condition";
      const last = lastError instanceof Error ? `; last error: ${lastError.message}` : "";
      throw new WaitTimeoutError(
        `timed out after ${Date.now() - started} ms (${attempts} attempts) waiting for ${what}${last}`,
        timeoutMs,
        attempts,
        lastError,
      );
    }
    await pause(intervalMs);
  }
}

/** Resolves once `cond` returns true; throws a {@link WaitTimeoutError} at the deadline. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  options: WaitOptions = {},
): Promise<void> {
  await waitForValue(async () => ((await cond()) ? true : undefined), options);
}

function raceDeadline<T>(work: Promise<T>, ms: number): Promise<T | typeof NOT_YET> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof NOT_YET>((resolve) => {
    timer = setTimeout(() => resolve(NOT_YET), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
