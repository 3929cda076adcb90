/**
 * The contract files (schemas/, proto/) as the contract tests see them: read straight from disk
 * and checked with stock libraries only (Ajv, protobufjs, @asyncapi/parser), as a partner in
 * another country would, independently of services/shared.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

/** The eleven event type tokens (docs/contract.md, "The handoff lifecycle"). */
export const EVENT_TYPES = [
  "opened",
  "received",
  "rejected",
  "forwarded",
  "accepted",
  "declined",
  "updated",
  "withdrawn",
  "escalated",
  "closed",
  "reported",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** Types that belong to no referral and so carry no referralId (a regional report). */
export const WITHOUT_REFERRAL: readonly EventType[] = ["reported"];

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
export const schemasDir = join(repoRoot, "schemas");
export const protoFile = join(repoRoot, "proto/stafett/v1/stafett.proto");
export const asyncApiFile = join(schemasDir, "asyncapi.yaml");

export const SCHEMA_BASE = "https://stafett.eu/schemas/v1/";
export const COMMON_ID = `${SCHEMA_BASE}events/common.schema.json`;
export const PERSONAL_ID = `${SCHEMA_BASE}personal.schema.json`;
export const TRUST_LIST_ID = `${SCHEMA_BASE}trust-list.schema.json`;
export const eventSchemaId = (type: EventType): string =>
  `${SCHEMA_BASE}events/${type}.schema.json`;

/** The options that give the canonical JSON form of an Event (proto3 JSON mapping). */
export const CANONICAL_JSON = { enums: String, bytes: String, longs: String, json: true } as const;

export function isJsonObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function readJson(path: string): Json {
  return JSON.parse(readFileSync(path, "utf8")) as Json;
}

export function readJsonObject(path: string): JsonObject {
  const value = readJson(path);
  if (!isJsonObject(value)) throw new Error(`${path} is not a JSON object`);
  return value;
}

export interface SchemaFile {
  /** Path relative to schemas/. */
  file: string;
  id: string;
  schema: JsonObject;
}

/** Every *.schema.json under schemas/ (events/ and the top level). */
export function schemaFiles(): SchemaFile[] {
  const files = [
    ...readdirSync(join(schemasDir, "events")).map((f) => `events/${f}`),
    ...readdirSync(schemasDir),
  ].filter((f) => f.endsWith(".schema.json"));
  return files.sort().map((file) => {
    const schema = readJsonObject(join(schemasDir, file));
    const id = schema.$id;
    if (typeof id !== "string") throw new Error(`${file} has no $id`);
    return { file, id, schema };
  });
}

/** An Ajv 2020-12 instance in strict mode with every schema added (compiled on first use). */
export function createAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  for (const { schema } of schemaFiles()) ajv.addSchema(schema);
  return ajv;
}

/** A fresh copy of schemas/examples/<name>.json, safe to mutate. */
export function example(name: EventType | "personal" | "trust-list"): JsonObject {
  return readJsonObject(join(schemasDir, "examples", `${name}.json`));
}
