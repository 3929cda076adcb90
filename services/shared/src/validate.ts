/**
 * JSON Schema validation of the canonical JSON forms. Each schema is compiled once, on first
 * use, and reused; a rejection names the place (JSON pointer) and the rule, never the value.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { StafettError, type ErrorCode, type Issue } from "./errors.js";
import { repoPath } from "./paths.js";
import { SCHEMA_BASE, type EventType } from "./types.js";

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export const SCHEMA_IDS = {
  personal: `${SCHEMA_BASE}personal.schema.json`,
  trustList: `${SCHEMA_BASE}trust-list.schema.json`,
  event: (type: EventType) => `${SCHEMA_BASE}events/${type}.schema.json`,
  api: (name: "referral-request" | "decline-request" | "update-request" | "withdraw-request") =>
    `${SCHEMA_BASE}api/${name}.schema.json`,
} as const;

let ajv: Ajv2020 | undefined;
const compiled = new Map<string, ValidateFunction>();

function schemaFiles(): string[] {
  const dir = repoPath("schemas/");
  return ["", "events", "api"].flatMap((sub) =>
    readdirSync(join(dir, sub))
      .filter((f) => f.endsWith(".schema.json"))
      .map((f) => join(dir, sub, f)),
  );
}

function instance(): Ajv2020 {
  if (ajv === undefined) {
    const a = new Ajv2020({ allErrors: true, strict: true });
    addFormats(a);
    for (const file of schemaFiles()) a.addSchema(JSON.parse(readFileSync(file, "utf8")) as object);
    ajv = a;
  }
  return ajv;
}

function validator(id: string): ValidateFunction {
  let fn = compiled.get(id);
  if (fn === undefined) {
    fn = instance().getSchema(id);
    if (fn === undefined) throw new Error(`schema ${id} is not in schemas/`);
    compiled.set(id, fn);
  }
  return fn;
}

/** Compiles every schema now (a service calls this at start-up so no message pays for it). */
export function compileSchemas(): void {
  for (const file of schemaFiles()) {
    const id = (JSON.parse(readFileSync(file, "utf8")) as { $id?: string }).$id;
    if (id !== undefined) validator(id);
  }
}

function toIssues(errors: readonly ErrorObject[] | null | undefined): Issue[] {
  return (errors ?? []).map((e) => {
    // additionalProperty and missingProperty name a key of the contract, not a value.
    const key =
      typeof e.params.missingProperty === "string"
        ? e.params.missingProperty
        : typeof e.params.additionalProperty === "string"
          ? e.params.additionalProperty
          : undefined;
    const field = key === undefined ? e.instancePath || "/" : `${e.instancePath}/${key}`;
    return { field, reason: e.keyword, message: `${field}: fails ${e.keyword} (${e.schemaPath})` };
  });
}

/** Validates `value` against the schema `id`; throws a coded error listing every problem. */
export function validate(id: string, value: unknown, code: ErrorCode = "ERR_SCHEMA_INVALID"): void {
  const fn = validator(id);
  if (fn(value)) return;
  const issues = toIssues(fn.errors);
  const first = issues[0] ?? { field: "/", reason: "invalid", message: "invalid" };
  throw new StafettError(code, `${issues.length} schema problem(s); first ${first.message}`, {
    reason: first.reason,
    field: first.field,
    issues,
  });
}

export function validateEvent(type: EventType, json: unknown): void {
  validate(SCHEMA_IDS.event(type), json);
}

export function validatePersonal(json: unknown): void {
  validate(SCHEMA_IDS.personal, json, "ERR_PERSONAL_INVALID");
}

export function validateTrustList(json: unknown): void {
  validate(SCHEMA_IDS.trustList, json, "ERR_TRUST_LIST_INVALID");
}
