/**
 * A small filesystem to fill up: a tmpfs mounted on a fresh directory (needs root). Fault tests
 * put a service's journal on it, fill it to ENOSPC mid-flow and free it again.
 */
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SmallFs {
  readonly dir: string;
  /** Fills what is left with a filler file, to the last byte the filesystem gives. */
  fill(): void;
  /** Removes the filler. */
  free(): void;
  /** Gives back `bytes` of the filler (another writer's write taken back, say). */
  release(bytes: number): void;
  unmount(): void;
}

/**
 * Mounts a tmpfs of `bytes`. Returns why not when it cannot (not root, no mount): the caller
 * skips, loudly, except in CI (CI=true), where it must not.
 */
export function mountSmallFs(bytes: number): SmallFs | string {
  const dir = mkdtempSync(join(tmpdir(), "stafett-smallfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes},mode=0700`, "tmpfs", dir], {
      stdio: "pipe",
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const why = `cannot mount a small tmpfs (${(err as Error).message.split("\n")[0] ?? ""})`;
    if (process.env.CI === "true") throw new Error(`${why}; CI must run this test`);
    return why;
  }
  const filler = join(dir, "filler");
  return {
    dir,
    fill() {
      for (const chunk of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
        const block = Buffer.alloc(chunk, 0x2e);
        for (;;) {
          try {
            appendFileSync(filler, block);
          } catch {
            break;
          }
        }
      }
    },
    free() {
      rmSync(filler, { force: true });
    },
    release(bytes: number) {
      truncateSync(filler, Math.max(0, statSync(filler).size - bytes));
    },
    unmount() {
      try {
        execFileSync("umount", ["-l", dir], { stdio: "pipe" });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
