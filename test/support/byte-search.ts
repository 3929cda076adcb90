/**
 * Finding a sealed personal part's ciphertext anywhere in a party's state directory, by bytes:
 * the retention and erasure tests' proof that nothing of it is left on disk.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** Every file under `dir`, with its bytes. */
function filesUnder(dir: string): { path: string; bytes: Buffer }[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [{ path, bytes: readFileSync(path) }];
  });
}

/**
 * What to search for to find a JWE's ciphertext on disk: the text itself, and its standard
 * base64 at each of the three alignments (journals keep signed events as base64).
 */
export function needlesOf(ciphertext: string): string[] {
  const chunk = ciphertext.slice(8, 8 + 48);
  return [chunk, ...[0, 1, 2].map((k) => Buffer.from(chunk.slice(k, k + 45)).toString("base64"))];
}

/** The files under `dir` that hold any of `needles`. */
export function holding(dir: string, needles: readonly string[]): string[] {
  return filesUnder(dir)
    .filter((f) => needles.some((n) => f.bytes.includes(n)))
    .map((f) => f.path);
}
