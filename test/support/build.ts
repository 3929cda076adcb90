/**
 * The built output, for tests that run what ships (`npm run build`, then dist/): built once per
 * test run, however many files ask, and never while another file of the run is building or
 * copying it (`npm run build` removes every dist/ first). Files of one `vitest run` share its
 * process as their parent, which names the run.
 */
import { execFileSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmdirSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "@stafett/devkit";

export const root = realpathSync(fileURLToPath(new URL("../../", import.meta.url)));

/** Runs `npm run build` unless this test run already did; holds a lock while it does. */
export async function buildOnce(): Promise<void> {
  const cache = join(root, "node_modules/.cache");
  mkdirSync(cache, { recursive: true });
  const run = String(process.ppid);
  const lock = join(cache, `stafett-build-${run}.lock`);
  const stamp = join(cache, "stafett-build.stamp");
  await waitFor(
    () => {
      try {
        mkdirSync(lock);
        return true;
      } catch {
        return false;
      }
    },
    { timeoutMs: 240_000, intervalMs: 250, message: "the build lock of this test run" },
  );
  try {
    if (existsSync(stamp) && readFileSync(stamp, "utf8") === run) return;
    execFileSync("npm", ["run", "build"], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    writeFileSync(stamp, run);
  } finally {
    rmdirSync(lock);
  }
}

/** What `npm pack` would put in each package's tarball. */
export function packList(workspaces: readonly string[]): { name: string; files: string[] }[] {
  const out = execFileSync(
    "npm",
    ["pack", "--dry-run", "--json", ...workspaces.flatMap((w) => ["--workspace", w])],
    { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] },
  );
  return (JSON.parse(out) as { name: string; files: { path: string }[] }[]).map((p) => ({
    name: p.name,
    files: p.files.map((f) => f.path),
  }));
}

/**
 * DIR/node_modules as an install would leave it: a copy of each shipped package's packed files,
 * and a link to every other installed package (they resolve their own dependencies where they
 * are installed).
 */
export function install(
  into: string,
  workspaces: readonly string[],
  packed: readonly { name: string; files: string[] }[],
): void {
  const modules = join(into, "node_modules");
  const installed = join(root, "node_modules");
  mkdirSync(join(modules, "@stafett"), { recursive: true });
  for (const entry of readdirSync(installed)) {
    if (entry.startsWith(".") || entry === "@stafett") continue;
    symlinkSync(realpathSync(join(installed, entry)), join(modules, entry));
  }
  for (const [i, workspace] of workspaces.entries()) {
    const pkg = packed[i];
    if (pkg === undefined) throw new Error(`npm pack listed nothing for ${workspace}`);
    for (const file of pkg.files) {
      const to = join(modules, pkg.name, file);
      mkdirSync(dirname(to), { recursive: true });
      cpSync(join(root, workspace, file), to);
    }
  }
}
