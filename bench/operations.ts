/**
 * What one referral costs in primitive and transport operations, the kinds the primitive and
 * transport baselines (parts 1 and 2) price: declared for the pipeline (PIPELINE_OPERATIONS in
 * pipeline.ts), and counted in the service processes for the handoff and the catch-up
 * (bench/op-count.mjs, loaded into them).
 */
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The node:crypto operations part 2 measures, one thread each. `x25519Agree` is the X25519
 * shared secret plus the Concat KDF (one SHA-256) that ECDH-ES applies to it.
 */
export const PRIMITIVES = [
  "ed25519Sign",
  "ed25519Verify",
  "x25519KeyGen",
  "x25519Agree",
  "aesKwWrap",
  "aesKwUnwrap",
  "aesGcmEncrypt",
  "aesGcmDecrypt",
] as const;

export type Primitive = (typeof PRIMITIVES)[number];

/** The primitive and transport operations of one referral: how many of each. */
export type Operations = Record<Primitive | "publish" | "consume", number>;

const OPERATION_KINDS: readonly (keyof Operations)[] = [...PRIMITIVES, "publish", "consume"];

const here = dirname(fileURLToPath(import.meta.url));

/** The primitive operations a service process was counted doing (bench/op-count.mjs), by kind. */
export type OperationCounts = Partial<Record<keyof Operations, number>>;

/**
 * Counting the node:crypto operations of the service processes started with `withCounter`:
 * each writes its counts into `dir` when it exits, and `read` returns them, one entry per
 * process that exited cleanly.
 */
export class OperationCounter {
  readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, "op-count");
  }

  /** A service's environment and Node flags, with the counter loaded. */
  withCounter(
    env: Record<string, string>,
    nodeArgs: readonly string[] = [],
  ): { env: Record<string, string>; nodeArgs: string[] } {
    mkdirSync(this.dir, { recursive: true });
    return {
      env: { ...env, STAFETT_BENCH_OPCOUNT_DIR: this.dir },
      nodeArgs: [...nodeArgs, `--import=${join(here, "op-count.mjs")}`],
    };
  }

  /**
   * What the processes that have exited wrote. Never throws: a process killed while writing
   * leaves a torn file, which is left out (the caller sees one process fewer).
   */
  read(): { service: string; counts: OperationCounts }[] {
    const out: { service: string; counts: OperationCounts }[] = [];
    let files: string[] = [];
    try {
      files = readdirSync(this.dir);
    } catch {
      return out;
    }
    for (const f of files) {
      try {
        out.push(
          JSON.parse(readFileSync(join(this.dir, f), "utf8")) as {
            service: string;
            counts: OperationCounts;
          },
        );
      } catch {
        // torn: left out
      }
    }
    return out;
  }
}

/**
 * One referral's operations: the counted crypto of the given processes, divided by the
 * referrals they handled, and the messages each referral published and consumed.
 */
export function operationsPerReferral(
  counts: readonly OperationCounts[],
  referrals: number,
  messages: { publish: number; consume: number },
): Operations {
  const ops = Object.fromEntries(OPERATION_KINDS.map((k) => [k, 0])) as Record<
    keyof Operations,
    number
  >;
  for (const c of counts) {
    for (const [k, n] of Object.entries(c)) {
      if (Object.hasOwn(ops, k) && typeof n === "number")
        ops[k as keyof Operations] += n / referrals;
    }
  }
  return { ...ops, publish: messages.publish, consume: messages.consume };
}
