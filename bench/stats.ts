/**
 * Measuring helpers: operation rates (warm-up first, then as many operations as fit in a time
 * budget) and latency percentiles. Rates are per second on one thread.
 */

export interface Rate {
  ops: number;
  ms: number;
  perSecond: number;
}

export interface Percentiles {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

function rateOf(ops: number, ms: number): Rate {
  return { ops, ms, perSecond: ms > 0 ? (ops * 1_000) / ms : 0 };
}

/** Runs `fn` in batches until `budgetMs` has passed (after a short warm-up). */
export function rateSync(fn: () => unknown, budgetMs = 800, batch = 16): Rate {
  const warmUntil = performance.now() + Math.min(150, budgetMs / 4);
  while (performance.now() < warmUntil) for (let i = 0; i < batch; i++) fn();
  let ops = 0;
  const start = performance.now();
  const end = start + budgetMs;
  let now = start;
  while (now < end) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    now = performance.now();
  }
  return rateOf(ops, now - start);
}

/** As `rateSync`, for an operation that returns a promise (awaited one at a time). */
export async function rateAsync(fn: () => Promise<unknown>, budgetMs = 800): Promise<Rate> {
  const warmUntil = performance.now() + Math.min(150, budgetMs / 4);
  while (performance.now() < warmUntil) await fn();
  let ops = 0;
  const start = performance.now();
  const end = start + budgetMs;
  let now = start;
  while (now < end) {
    await fn();
    ops += 1;
    now = performance.now();
  }
  return rateOf(ops, now - start);
}

/**
 * Rates of several operations measured in `rounds` interleaved rounds, each keeping its best
 * round: on a shared machine a burst of someone else's work then lowers one round of every
 * operation rather than all rounds of one.
 */
export async function bestRates<K extends string>(
  ops: Record<K, () => unknown>,
  totalBudgetMs: number,
  rounds = 4,
): Promise<Record<K, number>> {
  const names = Object.keys(ops) as K[];
  const best = {} as Record<K, number>;
  const perRound = totalBudgetMs / rounds / names.length;
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const op = ops[name];
      const probe = op();
      const rate =
        probe instanceof Promise
          ? await (async () => {
              await probe;
              return (await rateAsync(op as () => Promise<unknown>, perRound)).perSecond;
            })()
          : rateSync(op, perRound).perSecond;
      best[name] = Math.max(best[name] ?? 0, rate);
    }
  }
  return best;
}

export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0) return { count: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  // Nearest-rank percentile: the smallest value with at least p% of the values at or below it.
  const at = (p: number): number =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    count: sorted.length,
    mean: sum / sorted.length,
    p50: at(50),
    p95: at(95),
    p99: at(99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}

/**
 * Runs `worker(i)` for i in [0, count) with at most `concurrency` running at once; resolves
 * when all are done and rejects on the first failure.
 */
export async function boundedAll(
  count: number,
  concurrency: number,
  worker: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      await worker(i);
    }
  });
  await Promise.all(lanes);
}

/** A counting semaphore: `acquire` waits while `limit` holders are in. */
export class Semaphore {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async acquire(): Promise<void> {
    if (this.held < this.limit) {
      this.held += 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next === undefined) this.held -= 1;
    else next();
  }
}

/** Resolves when `cond` holds, polling every `intervalMs`; rejects at the deadline. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const round = (n: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};
