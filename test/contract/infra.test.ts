import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { findNatsServer } from "@stafett/devkit";
import { INFRA_EXAMPLES_DIR, infraExamples } from "../../scripts/infra-examples.js";

const dir = join(import.meta.dirname, "../..", INFRA_EXAMPLES_DIR);
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

  // A drift check only reads: a stale file fails here, and `npm run gen:infra` rewrites them.
  it("are what the code produces today, file for file (regenerate with `npm run gen:infra`)", () => {
    const expected = infraExamples();
    expect(readdirSync(dir).sort(), "files in infra/examples/").toEqual(
      [...expected.keys()].sort(),
    );
    for (const [f, text] of expected)
      expect({ f, text: readFileSync(join(dir, f), "utf8") }).toEqual({ f, text });
  });
});
