/**
 * The proto and the JSON Schemas must agree (docs/contract.md, "Wire format": a test proves it
 * for every type). The proto is read by reflection, so a field added to either side without the
 * other fails here; the agreement check is itself tested against a deliberately broken proto and
 * broken schemas below.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import type { Enum, Field, Type } from "protobufjs";
import { describe, expect, it } from "vitest";
import {
  CANONICAL_JSON,
  EVENT_TYPES,
  createAjv,
  eventSchemaId,
  example,
  isJsonObject,
  protoFile,
  schemaFiles,
  type EventType,
  type Json,
  type JsonObject,
} from "./contract-files.js";

/** proto3 JSON name (the protobuf language guide's JSON mapping): lowerCamelCase of the field name. */
function jsonName(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** Follows $ref across the schema files (by $id) and merges the sibling keywords along the way. */
class SchemaResolver {
  private readonly documents = new Map<string, JsonObject>();

  constructor(documents: readonly { id: string; schema: JsonObject }[]) {
    for (const d of documents) this.documents.set(d.id, d.schema);
  }

  resolve(node: Json | undefined, base: string): { schema: JsonObject; base: string } {
    if (!isJsonObject(node)) throw new Error(`not a schema object under ${base}`);
    const ref = node.$ref;
    if (typeof ref !== "string") return { schema: node, base };
    const url = new URL(ref, base);
    const docId = url.href.slice(0, url.href.length - url.hash.length);
    const document = this.documents.get(docId);
    if (document === undefined) throw new Error(`$ref to unknown document ${docId}`);
    let target: Json | undefined = document;
    for (const token of decodeURIComponent(url.hash.replace(/^#/, ""))
      .split("/")
      .filter((t) => t !== "")) {
      target = isJsonObject(target)
        ? target[token.replace(/~1/g, "/").replace(/~0/g, "~")]
        : undefined;
    }
    const resolved = this.resolve(target, docId);
    const { $ref: _ref, ...siblings } = node;
    return { schema: { ...resolved.schema, ...siblings }, base: resolved.base };
  }
}

const SCALAR_JSON_TYPES: Record<string, string> = {
  string: "string",
  bytes: "string",
  bool: "boolean",
  int32: "integer",
  uint32: "integer",
  sint32: "integer",
  fixed32: "integer",
  sfixed32: "integer",
  // proto3 JSON writes 64-bit integers as decimal strings (longs: String).
  int64: "string",
  uint64: "string",
  sint64: "string",
  fixed64: "string",
  sfixed64: "string",
  double: "number",
  float: "number",
};

function enumNamesWithoutDefault(e: Enum): string[] {
  return Object.entries(e.values)
    .filter(([, value]) => value !== 0)
    .map(([name]) => name)
    .sort();
}

/**
 * Every difference between a protobuf message (or its listed fields) and an object schema.
 * An empty list means they agree.
 */
function disagreements(
  fields: readonly Field[],
  node: Json | undefined,
  base: string,
  resolver: SchemaResolver,
  path: string,
): string[] {
  const problems: string[] = [];
  const { schema, base: schemaBase } = resolver.resolve(node, base);
  if (schema.type !== "object")
    problems.push(`${path}: schema type is ${String(schema.type)}, not object`);
  if (schema.additionalProperties !== false)
    problems.push(`${path}: schema does not forbid other properties`);
  const properties = isJsonObject(schema.properties) ? schema.properties : {};
  const byJsonName = new Map(fields.map((f) => [jsonName(f.name), f]));
  for (const name of byJsonName.keys()) {
    if (!(name in properties)) problems.push(`${path}.${name}: proto field has no schema property`);
  }
  for (const name of Object.keys(properties)) {
    if (!byJsonName.has(name)) problems.push(`${path}.${name}: schema property has no proto field`);
  }
  for (const [name, field] of byJsonName) {
    if (!(name in properties)) continue;
    // The false schema: a field this type never sets (a report's referralId); nothing to agree on.
    if (properties[name] === false) continue;
    problems.push(
      ...fieldDisagreements(field, properties[name], schemaBase, resolver, `${path}.${name}`),
    );
  }
  return problems;
}

function fieldDisagreements(
  field: Field,
  node: Json | undefined,
  base: string,
  resolver: SchemaResolver,
  path: string,
  asElement = false,
): string[] {
  if (field.map) return [`${path}: map fields are not supported by this check`];
  const { schema, base: schemaBase } = resolver.resolve(node, base);
  if (field.repeated && !asElement) {
    if (schema.type !== "array")
      return [`${path}: repeated field but schema type is ${String(schema.type)}`];
    return fieldDisagreements(field, schema.items, schemaBase, resolver, `${path}[]`, true);
  }
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    const problems: string[] = [];
    if (schema.type !== "string")
      problems.push(`${path}: enum ${resolved.name} but schema type is ${String(schema.type)}`);
    const zero = Object.entries(resolved.values).find(([, v]) => v === 0)?.[0];
    if (zero === undefined || !zero.endsWith("_UNSPECIFIED"))
      problems.push(`${path}: enum ${resolved.name} has no *_UNSPECIFIED zero value`);
    const values = Array.isArray(schema.enum) ? schema.enum.map((v) => String(v)).sort() : [];
    const expected = enumNamesWithoutDefault(resolved);
    if (JSON.stringify(values) !== JSON.stringify(expected)) {
      problems.push(
        `${path}: schema enum [${values.join(", ")}] differs from proto ${resolved.name} [${expected.join(", ")}]`,
      );
    }
    return problems;
  }
  if (resolved instanceof protobuf.Type) {
    return disagreements(resolved.fieldsArray, node, base, resolver, path);
  }
  const expected = SCALAR_JSON_TYPES[field.type];
  if (expected === undefined)
    return [`${path}: proto type ${field.type} is not known to this check`];
  const problems: string[] = [];
  if (schema.type !== expected)
    problems.push(
      `${path}: proto ${field.type} but schema type is ${String(schema.type)}, not ${expected}`,
    );
  if (field.type === "bytes" && schema.contentEncoding !== "base64") {
    problems.push(`${path}: proto bytes but schema does not say contentEncoding base64`);
  }
  return problems;
}

interface Contract {
  event: Type;
  /** The fields of Event outside the body oneof. */
  envelope: Field[];
  /** The members of the body oneof, by name. */
  bodies: Map<string, Field>;
}

/** Reads a proto with its original field names, as the JSON mapping defines them. */
function contractOf(root: protobuf.Root): Contract {
  root.resolveAll();
  const event = root.lookupType("stafett.v1.Event");
  const body = event.oneofs?.body;
  if (body === undefined) throw new Error("Event has no oneof body");
  const envelope = event.fieldsArray.filter((f) => f.partOf !== body);
  return { event, envelope, bodies: new Map(body.fieldsArray.map((f) => [f.name, f])) };
}

function eventDisagreements(
  contract: Contract,
  type: string,
  files: readonly { id: string; schema: JsonObject }[],
): string[] {
  const resolver = new SchemaResolver(files);
  const id = eventSchemaId(type as EventType);
  const schema = files.find((f) => f.id === id)?.schema;
  if (schema === undefined) return [`${type}: no schema file`];
  const bodyField = contract.bodies.get(type);
  if (bodyField === undefined) return [`${type}: no member of Event.body`];
  // The event schema is the Event message restricted to one member of the oneof.
  return disagreements([...contract.envelope, bodyField], schema, id, resolver, type);
}

const files = schemaFiles();
const contract = contractOf(new protobuf.Root().loadSync(protoFile, { keepCase: true }));

describe("proto and schemas agree", () => {
  it("the body oneof has exactly the eleven event types", () => {
    expect([...contract.bodies.keys()].sort()).toEqual([...EVENT_TYPES].sort());
  });

  it("Event has no field outside the envelope and the body", () => {
    expect(contract.envelope.map((f) => jsonName(f.name))).toEqual([
      "id",
      "type",
      "source",
      "addressee",
      "time",
      "dataschema",
      "referralId",
    ]);
  });

  it.each(EVENT_TYPES.map((t) => [t] as const))(
    "%s: envelope and body fields, types and enums",
    (type) => {
      expect(eventDisagreements(contract, type, files)).toEqual([]);
    },
  );

  it("the JSON names used here are protobufjs's own", () => {
    const camel = contractOf(protobuf.loadSync(protoFile));
    expect(camel.envelope.map((f) => f.name)).toEqual(
      contract.envelope.map((f) => jsonName(f.name)),
    );
    for (const [type, field] of contract.bodies) {
      const other = camel.bodies.get(type);
      const own = field.resolvedType;
      if (!(own instanceof protobuf.Type) || !(other?.resolvedType instanceof protobuf.Type))
        continue;
      expect(other.resolvedType.fieldsArray.map((f) => f.name)).toEqual(
        own.fieldsArray.map((f) => jsonName(f.name)),
      );
    }
  });
});

describe("the agreement check can fail", () => {
  const source = readFileSync(protoFile, "utf8");

  function contractFromText(text: string): Contract {
    return contractOf(protobuf.parse(text, new protobuf.Root(), { keepCase: true }).root);
  }

  function withSchema(
    type: EventType,
    edit: (schema: JsonObject) => void,
  ): { id: string; schema: JsonObject }[] {
    return files.map((f) => {
      if (f.id !== eventSchemaId(type)) return f;
      const schema = structuredClone(f.schema);
      edit(schema);
      return { id: f.id, schema };
    });
  }

  function bodyOf(schema: JsonObject, type: string): JsonObject {
    const properties = schema.properties;
    const body = isJsonObject(properties) ? properties[type] : undefined;
    if (!isJsonObject(body) || !isJsonObject(body.properties)) throw new Error(`no body ${type}`);
    return body;
  }

  it("a proto field without a schema property", () => {
    const text = source.replace("message Opened {", "message Opened {\n  string case_number = 99;");
    expect(text).not.toBe(source);
    expect(eventDisagreements(contractFromText(text), "opened", files)).toContain(
      "opened.opened.caseNumber: proto field has no schema property",
    );
  });

  it("a new envelope field", () => {
    const text = source.replace(
      "  string referral_id = 7;",
      "  string referral_id = 7;\n  string trace_parent = 8;",
    );
    expect(text).not.toBe(source);
    expect(eventDisagreements(contractFromText(text), "closed", files)).toContain(
      "closed.traceParent: proto field has no schema property",
    );
  });

  it("a new enum value", () => {
    const text = source.replace(
      "  URGENCY_NORMAL = 3;",
      "  URGENCY_NORMAL = 3;\n  URGENCY_LOW = 4;",
    );
    expect(text).not.toBe(source);
    expect(eventDisagreements(contractFromText(text), "opened", files).join("\n")).toMatch(
      /opened\.opened\.urgency: schema enum/,
    );
  });

  it("a changed scalar type", () => {
    const text = source.replace("  string of_event_id = 1;\n}", "  bytes of_event_id = 1;\n}");
    expect(text).not.toBe(source);
    expect(eventDisagreements(contractFromText(text), "accepted", files).join("\n")).toMatch(
      /accepted\.accepted\.ofEventId: proto bytes/,
    );
  });

  it("a schema property without a proto field", () => {
    const edited = withSchema("withdrawn", (s) => {
      const props = bodyOf(s, "withdrawn").properties;
      if (isJsonObject(props)) props.note = { type: "string" };
    });
    expect(eventDisagreements(contract, "withdrawn", edited)).toContain(
      "withdrawn.withdrawn.note: schema property has no proto field",
    );
  });

  it("a schema enum that lists UNSPECIFIED", () => {
    const edited = withSchema("closed", (s) => {
      const props = bodyOf(s, "closed").properties;
      if (isJsonObject(props)) {
        props.outcome = {
          type: "string",
          enum: [
            "CLOSE_OUTCOME_UNSPECIFIED",
            "CLOSE_OUTCOME_ACCEPTED",
            "CLOSE_OUTCOME_WITHDRAWN",
            "CLOSE_OUTCOME_OTHER",
          ],
        };
      }
    });
    expect(eventDisagreements(contract, "closed", edited).join("\n")).toMatch(
      /closed\.closed\.outcome: schema enum/,
    );
  });

  it("a nested message whose schema is not closed", () => {
    const edited = withSchema("declined", (s) => {
      const props = bodyOf(s, "declined").properties;
      if (isJsonObject(props))
        props.suggested = { type: "object", properties: { country: { type: "string" } } };
    });
    const problems = eventDisagreements(contract, "declined", edited);
    expect(problems).toContain(
      "declined.declined.suggested: schema does not forbid other properties",
    );
    expect(problems).toContain(
      "declined.declined.suggested.region: proto field has no schema property",
    );
  });
});

describe("examples round-trip through the protobuf encoding", () => {
  const root = protobuf.loadSync(protoFile);
  const Event = root.lookupType("stafett.v1.Event");
  const SignedEvent = root.lookupType("stafett.v1.SignedEvent");

  it.each(EVENT_TYPES.map((t) => [t] as const))("%s", (type) => {
    const json = example(type);
    const bytes = Event.encode(Event.fromObject(json)).finish();
    const decoded = Event.decode(bytes);
    expect(Event.toObject(decoded, CANONICAL_JSON)).toEqual(json);
    // The body that is set is the one the type names.
    expect((decoded as unknown as { body?: string }).body).toBe(type);
  });

  it("the forwarded example relays the signed opened example, and the receipt names its digest", () => {
    const forwarded = example("forwarded").forwarded;
    const received = example("received").received;
    if (
      !isJsonObject(forwarded) ||
      typeof forwarded.original !== "string" ||
      !isJsonObject(received)
    ) {
      throw new Error("examples lack forwarded.original or received");
    }
    const original = Buffer.from(forwarded.original, "base64");
    const signed = SignedEvent.toObject(SignedEvent.decode(original), { bytes: Array }) as {
      event: number[];
      signatures: string[];
    };
    expect(signed.signatures.length).toBeGreaterThan(0);
    for (const jws of signed.signatures) expect(jws).toMatch(/^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/);
    const relayed = Event.toObject(Event.decode(Uint8Array.from(signed.event)), CANONICAL_JSON);
    expect(relayed).toEqual(example("opened"));
    expect(createAjv().getSchema(eventSchemaId("opened"))?.(relayed)).toBe(true);
    expect(received.digest).toBe(
      `sha-256:${createHash("sha256").update(original).digest("base64url")}`,
    );
  });
});
