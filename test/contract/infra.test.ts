import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findNatsServer } from "@stafett/devkit";

const dir = join(import.meta.dirname, "../../infra/examples");
const servers = readdirSync(dir).filter((f) => f.startsWith("nats-") || f.startsWith("cluster-"));

describe("infra/examples", () => {
  it.each(servers)("%s is a configuration nats-server accepts", (file) => {
    const tmp = mkdtempSync(join(tmpdir(), "stafett-infra-"));
    try {
      const config = readFileSync(join(dir, file), "utf8").replaceAll(
        "/var/lib/nats-server",
        join(tmp, "js"),
      );
      writeFileSync(join(tmp, file), config);
      const r = spawnSync(findNatsServer(), ["-t", "-c", join(tmp, file)], { encoding: "utf8" });
      expect(`${r.stdout}${r.stderr}`).toContain("is valid");
      expect(r.status).toBe(0);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("are what the code produces today (regenerate with scripts/gen-infra-examples.ts)", () => {
    const before = new Map(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), "utf8")]));
    execFileSync(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "scripts/gen-infra-examples.ts"],
      { cwd: join(import.meta.dirname, "../..") },
    );
    for (const [f, text] of before)
      expect({ f, text: readFileSync(join(dir, f), "utf8") }).toEqual({ f, text });
  });
});
