// Loaded with `node --import`: a module resolve hook that appends the URL of every module the
// process resolves, one per line, to the file named by $STAFETT_RECORD_RESOLVED. Used to see a
// command's real module graph (test/contract/cli-production-graph.test.ts).
import { appendFileSync } from "node:fs";
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

export async function resolve(specifier, context, nextResolve) {
  const result = await nextResolve(specifier, context);
  const file = process.env.STAFETT_RECORD_RESOLVED;
  if (file !== undefined && file !== "") appendFileSync(file, `${result.url}\n`);
  return result;
}

// The hooks run in their own thread, which loads this file again: register only once.
if (isMainThread) register(import.meta.url);
