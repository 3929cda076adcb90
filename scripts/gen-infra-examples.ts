/**
 * Writes infra/examples/ from `infraExamples()` (`npm run gen:infra`), and removes any other
 * file there, so the directory holds exactly what the code produces. The drift check is
 * test/contract/infra.test.ts, which only reads.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { INFRA_EXAMPLES_DIR, infraExamples } from "./infra-examples.js";

const dir = join(dirname(fileURLToPath(import.meta.url)), "..", INFRA_EXAMPLES_DIR);
const files = infraExamples();
mkdirSync(dir, { recursive: true });
for (const stale of readdirSync(dir).filter((f) => !files.has(f))) {
  rmSync(join(dir, stale));
  console.log(`removed ${INFRA_EXAMPLES_DIR}/${stale}`);
}
for (const [name, text] of files) writeFileSync(join(dir, name), text);
console.log(`wrote ${files.size} files to ${INFRA_EXAMPLES_DIR}/`);
