/**
 * The shipped `stafett` command loads nothing from the dev kit: not the demo, not the chaos
 * engine, not the nats-server launcher, not the services the dev kit starts. Checked twice: the
 * modules a real `stafett` process resolves (every production command is imported statically by
 * cli.ts, so `--help` loads them all), and the import specifiers written in the CLI's sources
 * (which also catches a dynamic `import()` that `--help` would not reach), with its package.json
 * and tsconfig.json.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const cliDir = join(root, "services/cli");
/** Workspace packages the CLI must not load: the dev kit and the services it runs. */
const NOT_SHIPPED = ["devkit", "gateway", "hub", "liaison", "coordinator"];
const notShipped = (path: string): boolean =>
  NOT_SHIPPED.some((p) => path.startsWith(`services/${p}/`) || path === `@stafett/${p}`) ||
  NOT_SHIPPED.some((p) => path.startsWith(`@stafett/${p}/`));

const tmp = mkdtempSync(join(tmpdir(), "stafett-cli-graph-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Repository-relative paths of the files a `stafett` process resolved (node: built-ins aside). */
function resolvedBy(args: string[]): string[] {
  const record = join(tmp, `resolved-${args.join("-")}.txt`);
  execFileSync(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      join(root, "node_modules/tsx/dist/esm/index.mjs"),
      "--import",
      join(root, "test/support/record-resolved.mjs"),
      join(cliDir, "src/main.ts"),
      ...args,
    ],
    { cwd: tmp, env: { ...process.env, STAFETT_RECORD_RESOLVED: record }, stdio: "pipe" },
  );
  const urls = readFileSync(record, "utf8").split("\n").filter(Boolean);
  return [
    ...new Set(
      urls
        .filter((u) => u.startsWith("file:"))
        .map((u) => relative(root, realpathSync(fileURLToPath(u)))),
    ),
  ];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")
        ? [join(dir, e.name)]
        : [],
  );
}

describe("the shipped stafett command", () => {
  it("resolves no module of the dev kit or of a service", { timeout: 60_000 }, () => {
    const files = resolvedBy(["--help"]);
    // The graph was really recorded: the CLI, every command module and the shared library.
    expect(files).toContain("services/cli/src/cli.ts");
    for (const command of readdirSync(join(cliDir, "src/commands")).filter(
      (f) => f.endsWith(".ts") && !f.endsWith(".test.ts"),
    )) {
      expect(files).toContain(`services/cli/src/commands/${command}`);
    }
    expect(files).toContain("services/shared/src/mod.ts");
    expect(files.filter(notShipped)).toEqual([]);
  });

  it("imports nothing from the dev kit or a service in its sources, statically or dynamically", () => {
    const files = sourceFiles(join(cliDir, "src"));
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) {
      const info = ts.preProcessFile(readFileSync(file, "utf8"), true, true);
      for (const { fileName } of info.importedFiles) {
        const target = fileName.startsWith(".")
          ? relative(root, join(file, "..", fileName))
          : fileName;
        expect(notShipped(target), `${relative(root, file)} imports ${fileName}`).toBe(false);
      }
    }
  });

  it("does not depend on the dev kit or a service in package.json and tsconfig.json", () => {
    const pkg = JSON.parse(readFileSync(join(cliDir, "package.json"), "utf8")) as {
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    };
    const deps = Object.keys({
      ...pkg.dependencies,
      ...pkg.devDependencies,
      ...pkg.peerDependencies,
    });
    expect(deps.filter(notShipped)).toEqual([]);
    const tsconfig = JSON.parse(readFileSync(join(cliDir, "tsconfig.json"), "utf8")) as {
      references?: { path: string }[];
    };
    const refs = (tsconfig.references ?? []).map((r) => relative(root, join(cliDir, r.path)) + "/");
    expect(refs.filter(notShipped)).toEqual([]);
  });
});
