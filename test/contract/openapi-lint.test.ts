/**
 * The published OpenAPI documents (schemas/api/*.yaml) as a stock OpenAPI tool sees them:
 * Redocly's linter (@redocly/openapi-core, its "recommended" rules) finds no error, resolves
 * every `$ref`, and validates every example against its schema. The documents are
 * self-contained (`npm run gen` copies the JSON Schemas they use into their components), so no
 * `$ref` leaves the document and nothing is fetched.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createConfig, lint } from "@redocly/openapi-core";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { isJsonObject, schemasDir, type Json } from "./contract-files.js";

const DOCUMENTS = readdirSync(join(schemasDir, "api"))
  .filter((f) => f.endsWith(".yaml"))
  .sort();

/** Problems that mean a reference or an example could not be followed or does not fit. */
const UNRESOLVED = /resolve|can't find|cannot find|not found/i;
const EXAMPLE_RULES = ["no-invalid-media-type-examples", "no-invalid-schema-examples"];

function refsIn(node: Json): string[] {
  if (Array.isArray(node)) return node.flatMap(refsIn);
  if (!isJsonObject(node)) return [];
  return Object.entries(node).flatMap(([k, v]) =>
    k === "$ref" && typeof v === "string" ? [v] : refsIn(v),
  );
}

describe("the published OpenAPI documents", () => {
  it("are the gateway's and the hub's", () => {
    expect(DOCUMENTS).toEqual(["hub-openapi.yaml", "openapi.yaml"]);
  });

  it.each(DOCUMENTS)("%s refers only inside itself", (name) => {
    const doc = parse(readFileSync(join(schemasDir, "api", name), "utf8")) as Json;
    const refs = refsIn(doc);
    expect(refs.length).toBeGreaterThan(0);
    expect(refs.filter((r) => !r.startsWith("#/"))).toEqual([]);
  });

  it.each(DOCUMENTS)(
    "%s: Redocly's recommended rules find no error and resolve everything",
    { timeout: 60_000 },
    async (name) => {
      const config = await createConfig({ extends: ["recommended"] });
      const problems = await lint({ ref: join(schemasDir, "api", name), config });
      const show = (p: (typeof problems)[number]) =>
        `${p.severity} ${p.ruleId} at ${p.location[0]?.pointer ?? "?"}: ${p.message}`;
      expect(problems.filter((p) => p.severity === "error").map(show)).toEqual([]);
      expect(problems.filter((p) => p.ruleId === "no-unresolved-refs").map(show)).toEqual([]);
      expect(problems.filter((p) => UNRESOLVED.test(p.message)).map(show)).toEqual([]);
      expect(problems.filter((p) => EXAMPLE_RULES.includes(p.ruleId)).map(show)).toEqual([]);
    },
  );
});
