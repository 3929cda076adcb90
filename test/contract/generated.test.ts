import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..");

describe("generated code", () => {
  // The services validate with gen/validators.cjs and decode with gen/stafett.js: both must be
  // what schemas/ and proto/ produce today, or a schema change would not reach the services.
  it("services/shared/src/gen/ is what `npm run gen` makes from schemas/ and proto/", () => {
    let stderr = "";
    let status = 0;
    try {
      execFileSync(process.execPath, [join(root, "scripts/gen.mjs"), "--check"], {
        cwd: root,
        stdio: ["ignore", "ignore", "pipe"],
      });
    } catch (err) {
      const e = err as { status?: number; stderr?: Buffer };
      status = e.status ?? 1;
      stderr = e.stderr?.toString() ?? "";
    }
    expect(stderr).toBe("");
    expect(status).toBe(0);
  }, 60_000);
});
