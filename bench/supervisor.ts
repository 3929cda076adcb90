/**
 * The bench runs as a child process of a supervisor, in its own process group, so that it ends
 * in bounded time whatever happens inside it: an in-process timer cannot fire while the main
 * thread is stuck in native code (bench/repro-jwk-export-deadlock.mjs shows such a hang). Past
 * the deadline the supervisor SIGKILLs the group (the bench, its service processes and
 * nats-servers) and removes the temporary directories the bench registered.
 */
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, rmSync } from "node:fs";

const CLEANUP_ENV = "STAFETT_BENCH_CLEANUP";

/** True in the supervised child (where the bench itself runs). */
export function isSupervised(): boolean {
  return process.env[CLEANUP_ENV] !== undefined;
}

/** Registers a temporary directory for the supervisor to remove if the bench is killed. */
export function registerTempDir(dir: string | undefined): void {
  const manifest = process.env[CLEANUP_ENV];
  if (manifest !== undefined && dir !== undefined && dir !== "")
    appendFileSync(manifest, `${dir}\n`);
}

/** Runs `script` (this same file) supervised; resolves with the exit code to end with. */
export function supervise(script: string, manifest: string, deadlineMs: number): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, script, ...process.argv.slice(2)], {
    stdio: "inherit",
    detached: true,
    env: { ...process.env, [CLEANUP_ENV]: manifest },
  });
  // Only while the bench runs: its process group id cannot have been reused then.
  const killGroup = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // the group is gone already
    }
  };
  const timer = setTimeout(() => {
    console.error(`bench: still running after ${deadlineMs / 1_000} s; killing it`);
    killGroup();
  }, deadlineMs);
  const forward = (signal: NodeJS.Signals): void => {
    if (child.pid !== undefined) process.kill(child.pid, signal);
  };
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      // Directories of a bench that was killed (one that ends by itself removes its own).
      if (existsSync(manifest)) {
        for (const dir of readFileSync(manifest, "utf8").split("\n").filter(Boolean)) {
          rmSync(dir, { recursive: true, force: true });
        }
        rmSync(manifest, { force: true });
      }
      resolve(signal === null ? (code ?? 1) : 1);
    });
  });
}
