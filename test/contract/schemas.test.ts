/**
 * The JSON Schemas in schemas/ are the contract (docs/contract.md, "Wire format"): they compile
 * in Ajv's strict mode, every example satisfies them, and typical mistakes are refused with an
 * error that says where (instancePath) and which rule (schemaPath).
 */
import { describe, expect, it } from "vitest";
import type { ErrorObject } from "ajv/dist/2020.js";
import {
  COMMON_ID,
  EVENT_TYPES,
  PERSONAL_ID,
  WITHOUT_REFERRAL,
  SCHEMA_BASE,
  TRUST_LIST_ID,
  createAjv,
  eventSchemaId,
  example,
  isJsonObject,
  schemaFiles,
  type EventType,
  type Json,
  type JsonObject,
} from "./contract-files.js";

const ajv = createAjv();

function eventSchema(type: EventType): JsonObject {
  const schema = schemaFiles().find((f) => f.id === eventSchemaId(type))?.schema;
  if (schema === undefined) throw new Error(`no schema for ${type}`);
  return schema;
}

interface Verdict {
  valid: boolean;
  errors: ErrorObject[];
}

function check(id: string, value: Json): Verdict {
  const validate = ajv.getSchema(id);
  if (validate === undefined) throw new Error(`no schema ${id}`);
  const valid = validate(value) as boolean;
  return { valid, errors: [...(validate.errors ?? [])] };
}

/** A JSON object at a slash-separated path of an example (the path must exist). */
function at(root: JsonObject, path: string): JsonObject {
  let node: Json = root;
  for (const key of path.split("/").filter((k) => k !== "")) {
    if (!isJsonObject(node)) throw new Error(`no object at ${path}`);
    node = node[key] ?? null;
  }
  if (!isJsonObject(node)) throw new Error(`no object at ${path}`);
  return node;
}

interface Mutation {
  name: string;
  apply: (value: JsonObject) => void;
  /** The error that must be among those reported. */
  expect: { keyword: string; instancePath: string };
}

function expectRejected(id: string, base: JsonObject, m: Mutation): void {
  const value = structuredClone(base);
  m.apply(value);
  const { valid, errors } = check(id, value);
  expect(valid, m.name).toBe(false);
  expect(errors.length, m.name).toBeGreaterThan(0);
  for (const e of errors) {
    expect(typeof e.instancePath, m.name).toBe("string");
    expect(e.schemaPath, m.name).toMatch(/#\//);
  }
  const found = errors.some(
    (e) => e.instancePath === m.expect.instancePath && e.keyword === m.expect.keyword,
  );
  const summary = errors
    .map((e) => `${e.instancePath || "/"} ${e.keyword} (${e.schemaPath})`)
    .join("; ");
  expect(
    found,
    `${m.name}: expected ${m.expect.keyword} at "${m.expect.instancePath}", got ${summary}`,
  ).toBe(true);
}

const set =
  (path: string, key: string, value: Json) =>
  (root: JsonObject): void => {
    at(root, path)[key] = value;
  };
const remove =
  (path: string, key: string) =>
  (root: JsonObject): void => {
    delete at(root, path)[key];
  };

const ENVELOPE = ["id", "type", "source", "addressee", "time", "dataschema", "referralId"] as const;

/** The envelope members a type's events carry: all of them, except a referral id for a report. */
const envelopeOf = (type: EventType): readonly string[] =>
  WITHOUT_REFERRAL.includes(type) ? ENVELOPE.filter((k) => k !== "referralId") : ENVELOPE;

/** Mistakes that every event type must refuse. */
function envelopeMutations(type: EventType): Mutation[] {
  const other: EventType = type === "opened" ? "closed" : "opened";
  return [
    ...[...envelopeOf(type), type].map((key) => ({
      name: `missing ${key}`,
      apply: remove("", key),
      expect: { keyword: "required", instancePath: "" },
    })),
    {
      name: "type of another event",
      apply: set("", "type", other),
      expect: { keyword: "const", instancePath: "/type" },
    },
    {
      name: "unknown type",
      apply: set("", "type", "moved"),
      expect: { keyword: "const", instancePath: "/type" },
    },
    {
      name: "dataschema of another event",
      apply: set("", "dataschema", eventSchemaId(other)),
      expect: { keyword: "const", instancePath: "/dataschema" },
    },
    {
      name: "extra property",
      apply: set("", "note", "x"),
      expect: { keyword: "additionalProperties", instancePath: "" },
    },
    {
      name: "second body",
      apply: set("", other, {}),
      expect: { keyword: "additionalProperties", instancePath: "" },
    },
    {
      name: "extra body property",
      apply: set(type, "comment", "x"),
      expect: { keyword: "additionalProperties", instancePath: `/${type}` },
    },
    {
      name: "id not a uuid",
      apply: set("", "id", "0b6f4e52"),
      expect: { keyword: "format", instancePath: "/id" },
    },
    {
      name: "id in upper case",
      apply: set("", "id", "0B6F4E52-3C1D-4A8E-9F27-5D84C1E0A6B3"),
      expect: { keyword: "pattern", instancePath: "/id" },
    },
    {
      name: "id as urn",
      apply: set("", "id", "urn:uuid:0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3"),
      expect: { keyword: "pattern", instancePath: "/id" },
    },
    WITHOUT_REFERRAL.includes(type)
      ? {
          // Data minimisation: a report names no referral, not even a well-formed id.
          name: "a referralId",
          apply: set("", "referralId", "4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10"),
          expect: { keyword: "false schema", instancePath: "/referralId" },
        }
      : {
          name: "referralId not a uuid",
          apply: set("", "referralId", "referral-1"),
          expect: { keyword: "format", instancePath: "/referralId" },
        },
    {
      name: "time with an offset",
      apply: set("", "time", "2026-11-27T10:15:00+01:00"),
      expect: { keyword: "pattern", instancePath: "/time" },
    },
    {
      name: "time without a zone",
      apply: set("", "time", "2026-11-27T09:15:00"),
      expect: { keyword: "format", instancePath: "/time" },
    },
    {
      name: "time as a date",
      apply: set("", "time", "2026-11-27"),
      expect: { keyword: "format", instancePath: "/time" },
    },
    {
      name: "time as a number",
      apply: set("", "time", 1795771200),
      expect: { keyword: "type", instancePath: "/time" },
    },
    {
      name: "source with a short code",
      apply: set("", "source", "se:municipality:180"),
      expect: { keyword: "pattern", instancePath: "/source" },
    },
    {
      name: "addressee in upper case",
      apply: set("", "addressee", "SE:hub:vast"),
      expect: { keyword: "pattern", instancePath: "/addressee" },
    },
    {
      name: "addressee of an unknown role",
      apply: set("", "addressee", "se:police"),
      expect: { keyword: "pattern", instancePath: "/addressee" },
    },
    {
      name: "body not an object",
      apply: set("", type, "x"),
      expect: { keyword: "type", instancePath: `/${type}` },
    },
  ];
}

/**
 * The body fields each event type requires, pinned here rather than read from the schema under
 * test: a schema that drops a requirement must fail these tests, not lose one of them.
 */
const REQUIRED_BODY: Record<EventType, readonly string[]> = {
  opened: ["urgency", "reason", "destination", "deadline", "personal"],
  received: ["ofEventId", "digest"],
  rejected: ["code", "reason"],
  forwarded: ["original"],
  accepted: ["ofEventId"],
  declined: ["ofEventId", "reason"],
  updated: [],
  withdrawn: ["reason"],
  escalated: ["deadline", "holder"],
  closed: ["outcome"],
  reported: ["region"],
};

const DIGEST_BAD = "sha256:Xq3c9vB0pYkL2mWn7TfR4sUaE1hJdG6iKoZ8yC5xNbM";

/** Mistakes specific to each body; every required body field is also removed in turn. */
const bodyMutations: Record<EventType, Mutation[]> = {
  opened: [
    {
      name: "urgency UNSPECIFIED",
      apply: set("opened", "urgency", "URGENCY_UNSPECIFIED"),
      expect: { keyword: "enum", instancePath: "/opened/urgency" },
    },
    {
      name: "urgency as a number",
      apply: set("opened", "urgency", 2),
      expect: { keyword: "type", instancePath: "/opened/urgency" },
    },
    {
      name: "reason unknown",
      apply: set("opened", "reason", "MISSING"),
      expect: { keyword: "enum", instancePath: "/opened/reason" },
    },
    {
      name: "destination without country",
      apply: remove("opened/destination", "country"),
      expect: { keyword: "required", instancePath: "/opened/destination" },
    },
    {
      name: "destination country in upper case",
      apply: set("opened/destination", "country", "SE"),
      expect: { keyword: "pattern", instancePath: "/opened/destination/country" },
    },
    {
      name: "destination municipality of three digits",
      apply: set("opened/destination", "municipality", "180"),
      expect: { keyword: "pattern", instancePath: "/opened/destination/municipality" },
    },
    {
      name: "destination region with a digit",
      apply: set("opened/destination", "region", "vast2"),
      expect: { keyword: "pattern", instancePath: "/opened/destination/region" },
    },
    {
      name: "destination extra property",
      apply: set("opened/destination", "city", "Göteborg"),
      expect: { keyword: "additionalProperties", instancePath: "/opened/destination" },
    },
    {
      name: "deadline not UTC",
      apply: set("opened", "deadline", "2026-11-27T22:15:00+01:00"),
      expect: { keyword: "pattern", instancePath: "/opened/deadline" },
    },
    {
      name: "personal as plaintext",
      apply: set(
        "opened",
        "personal",
        "Amal Exempel, born 2011, last seen at Malmö C, speaks Somali and Arabic",
      ),
      expect: { keyword: "pattern", instancePath: "/opened/personal" },
    },
    {
      name: "personal as a JSON object instead of a string",
      apply: set("opened", "personal", { ciphertext: "x" }),
      expect: { keyword: "type", instancePath: "/opened/personal" },
    },
    {
      name: "personal as JSON without ciphertext",
      apply: set(
        "opened",
        "personal",
        JSON.stringify({ recipients: [{}], child: { givenNames: "Amal", familyName: "Exempel" } }),
      ),
      expect: { keyword: "pattern", instancePath: "/opened/personal" },
    },
  ],
  received: [
    {
      name: "digest of another algorithm",
      apply: set("received", "digest", DIGEST_BAD),
      expect: { keyword: "pattern", instancePath: "/received/digest" },
    },
    {
      name: "digest in standard base64",
      apply: set("received", "digest", "sha-256:Xq3c9vB0pYkL2mWn7TfR4sUaE1hJdG6iKoZ8yC5x+b/="),
      expect: { keyword: "pattern", instancePath: "/received/digest" },
    },
    {
      name: "ofEventId not a uuid",
      apply: set("received", "ofEventId", "42"),
      expect: { keyword: "format", instancePath: "/received/ofEventId" },
    },
  ],
  rejected: [
    {
      name: "code not an ERR_ code",
      apply: set("rejected", "code", "signature invalid"),
      expect: { keyword: "pattern", instancePath: "/rejected/code" },
    },
    {
      name: "empty reason",
      apply: set("rejected", "reason", ""),
      expect: { keyword: "minLength", instancePath: "/rejected/reason" },
    },
    {
      name: "bad digest",
      apply: set("rejected", "digest", "sha-256:abc"),
      expect: { keyword: "pattern", instancePath: "/rejected/digest" },
    },
  ],
  forwarded: [
    {
      name: "original not base64",
      apply: set("forwarded", "original", "not base64!"),
      expect: { keyword: "pattern", instancePath: "/forwarded/original" },
    },
    {
      name: "original in base64url",
      apply: set("forwarded", "original", "CqcQ-_8="),
      expect: { keyword: "pattern", instancePath: "/forwarded/original" },
    },
    {
      name: "destination with a bad municipality",
      apply: set("forwarded/destination", "municipality", "Göteborg"),
      expect: { keyword: "pattern", instancePath: "/forwarded/destination/municipality" },
    },
  ],
  accepted: [
    {
      name: "ofEventId not a uuid",
      apply: set("accepted", "ofEventId", "latest"),
      expect: { keyword: "format", instancePath: "/accepted/ofEventId" },
    },
  ],
  declined: [
    {
      name: "reason UNSPECIFIED",
      apply: set("declined", "reason", "DECLINE_REASON_UNSPECIFIED"),
      expect: { keyword: "enum", instancePath: "/declined/reason" },
    },
    {
      name: "reason as free text",
      apply: set("declined", "reason", "the child does not live here"),
      expect: { keyword: "enum", instancePath: "/declined/reason" },
    },
    {
      name: "suggested without country",
      apply: remove("declined/suggested", "country"),
      expect: { keyword: "required", instancePath: "/declined/suggested" },
    },
  ],
  updated: [
    {
      name: "empty body",
      apply: (v) => {
        v.updated = {};
      },
      expect: { keyword: "minProperties", instancePath: "/updated" },
    },
    {
      name: "urgency UNSPECIFIED",
      apply: set("updated", "urgency", "URGENCY_UNSPECIFIED"),
      expect: { keyword: "enum", instancePath: "/updated/urgency" },
    },
    {
      name: "deadline without seconds",
      apply: set("updated", "deadline", "2026-11-27T11:02Z"),
      expect: { keyword: "format", instancePath: "/updated/deadline" },
    },
  ],
  withdrawn: [
    {
      name: "reason of another enum",
      apply: set("withdrawn", "reason", "CLOSE_OUTCOME_WITHDRAWN"),
      expect: { keyword: "enum", instancePath: "/withdrawn/reason" },
    },
  ],
  escalated: [
    {
      name: "holder not an organisation id",
      apply: set("escalated", "holder", "Regionkoordinator Väst"),
      expect: { keyword: "pattern", instancePath: "/escalated/holder" },
    },
    {
      name: "deadline in lower case",
      apply: set("escalated", "deadline", "2026-11-27t21:15:00z"),
      expect: { keyword: "pattern", instancePath: "/escalated/deadline" },
    },
  ],
  closed: [
    {
      name: "accepted without holder",
      apply: remove("closed", "holder"),
      expect: { keyword: "required", instancePath: "/closed" },
    },
    {
      name: "outcome UNSPECIFIED",
      apply: set("closed", "outcome", "CLOSE_OUTCOME_UNSPECIFIED"),
      expect: { keyword: "enum", instancePath: "/closed/outcome" },
    },
  ],
  reported: [
    {
      name: "a negative count",
      apply: set("reported", "triage", -1),
      expect: { keyword: "minimum", instancePath: "/reported/triage" },
    },
    {
      name: "a fractional count",
      apply: set("reported", "forwarded", 1.5),
      expect: { keyword: "type", instancePath: "/reported/forwarded" },
    },
    {
      name: "a municipality's count (no detail below the region)",
      apply: set("reported", "municipalities", { "1480": 2 }),
      expect: { keyword: "additionalProperties", instancePath: "/reported" },
    },
    {
      name: "a referral's id in the body",
      apply: set("reported", "referralIds", ["4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10"]),
      expect: { keyword: "additionalProperties", instancePath: "/reported" },
    },
    {
      name: "region with a digit",
      apply: set("reported", "region", "vast2"),
      expect: { keyword: "pattern", instancePath: "/reported/region" },
    },
    {
      name: "nearest deadline with an offset",
      apply: set("reported", "nearestDeadline", "2026-11-27T10:15:00+01:00"),
      expect: { keyword: "pattern", instancePath: "/reported/nearestDeadline" },
    },
  ],
};

/** Object schemas must be closed; walks properties, items and $defs but not applicator fragments. */
function openObjects(node: Json, path: string, out: string[]): string[] {
  if (!isJsonObject(node)) return out;
  if (node.type === "object" && node.additionalProperties !== false) out.push(path);
  for (const key of ["properties", "$defs"] as const) {
    const children = node[key];
    if (isJsonObject(children)) {
      for (const [name, child] of Object.entries(children))
        openObjects(child, `${path}/${key}/${name}`, out);
    }
  }
  if (node.items !== undefined) openObjects(node.items, `${path}/items`, out);
  return out;
}

describe("schemas compile", () => {
  const files = schemaFiles();

  it("has one schema per event type, common, personal and trust list", () => {
    expect(files.map((f) => f.id).sort()).toEqual(
      [...EVENT_TYPES.map(eventSchemaId), COMMON_ID, PERSONAL_ID, TRUST_LIST_ID].sort(),
    );
  });

  it.each(files.map((f) => [f.file, f] as const))(
    "%s is a valid 2020-12 schema and compiles in strict mode",
    (_, f) => {
      expect(f.schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
      expect(f.id).toBe(`${SCHEMA_BASE}${f.file}`);
      expect(ajv.validateSchema(f.schema)).toBe(true);
      expect(() => ajv.getSchema(f.id)).not.toThrow();
      expect(ajv.getSchema(f.id)).toBeTypeOf("function");
    },
  );

  it("compiles every shared definition on its own", () => {
    const defs = files.find((f) => f.id === COMMON_ID)?.schema.$defs;
    if (!isJsonObject(defs)) throw new Error("common.schema.json has no $defs");
    for (const name of Object.keys(defs)) {
      expect(() => ajv.getSchema(`${COMMON_ID}#/$defs/${name}`), name).not.toThrow();
    }
  });

  it.each(files.map((f) => [f.file, f] as const))("%s closes every object schema", (_, f) => {
    const open = openObjects(f.schema, "#", []).filter(
      // The JWE annotation (contentSchema) is left open on purpose: RFC 7516 section 7.2.1
      // allows members that a reader ignores, and validators never apply it.
      (p) => p !== "#/$defs/jweGeneralJson" && !p.startsWith("#/$defs/jweGeneralJson/"),
    );
    expect(open).toEqual([]);
  });

  it.each(EVENT_TYPES.map((t) => [t] as const))(
    "%s names its type, its $id and exactly one body",
    (type) => {
      const schema = eventSchema(type);
      const properties = schema.properties;
      if (!isJsonObject(properties)) throw new Error("no properties");
      // A report's schema names referralId only to forbid it (the false schema).
      expect(Object.keys(properties).sort()).toEqual([...ENVELOPE, type].sort());
      if (WITHOUT_REFERRAL.includes(type)) expect(properties.referralId).toBe(false);
      expect(at(properties, "type").const).toBe(type);
      expect(at(properties, "dataschema").const).toBe(schema.$id);
      expect(schema.required).toEqual([...envelopeOf(type), type]);
    },
  );

  it.each(EVENT_TYPES.map((t) => [t, REQUIRED_BODY[t]] as const))(
    "%s requires exactly the body fields %j",
    (type, fields) => {
      const required = at(at(eventSchema(type), "properties"), type).required;
      expect([...(Array.isArray(required) ? required : [])].sort()).toEqual([...fields].sort());
    },
  );
});

describe("examples validate", () => {
  it.each(EVENT_TYPES.map((t) => [t] as const))("%s", (type) => {
    const { valid, errors } = check(eventSchemaId(type), example(type));
    expect(errors).toEqual([]);
    expect(valid).toBe(true);
  });

  it("personal", () => {
    expect(check(PERSONAL_ID, example("personal")).errors).toEqual([]);
  });

  it("trust-list", () => {
    expect(check(TRUST_LIST_ID, example("trust-list")).errors).toEqual([]);
  });

  it("every example event is between organisations of the example trust list, as its policy allows", () => {
    const list = example("trust-list");
    const roles = new Map<string, string>();
    for (const o of Array.isArray(list.organisations) ? list.organisations : []) {
      if (isJsonObject(o) && typeof o.id === "string" && typeof o.role === "string")
        roles.set(o.id, o.role);
    }
    const allowed = new Set<string>();
    for (const rule of Array.isArray(list.policy) ? list.policy : []) {
      if (!isJsonObject(rule) || !Array.isArray(rule.types)) continue;
      for (const t of rule.types)
        allowed.add(`${String(rule.from)}>${String(rule.to)}:${String(t)}`);
    }
    for (const type of EVENT_TYPES) {
      const e = example(type);
      const from = roles.get(String(e.source));
      const to = roles.get(String(e.addressee));
      expect(from, `${type} source`).toBeDefined();
      expect(to, `${type} addressee`).toBeDefined();
      expect(allowed.has(`${from}>${to}:${type}`), `${type}: ${from} to ${to}`).toBe(true);
    }
  });

  it("no example validates against another type's schema", () => {
    for (const type of EVENT_TYPES) {
      for (const other of EVENT_TYPES.filter((t) => t !== type)) {
        expect(check(eventSchemaId(other), example(type)).valid, `${type} as ${other}`).toBe(false);
      }
    }
  });
});

describe("invalid events are refused with a path", () => {
  for (const type of EVENT_TYPES) {
    describe(type, () => {
      const base = example(type);
      const mutations: Mutation[] = [
        ...envelopeMutations(type),
        ...REQUIRED_BODY[type].map((key) => ({
          name: `missing ${type}.${key}`,
          apply: remove(type, key),
          expect: { keyword: "required", instancePath: `/${type}` },
        })),
        ...bodyMutations[type],
      ];
      it.each(mutations.map((m) => [m.name, m] as const))("%s", (_, m) => {
        expectRejected(eventSchemaId(type), base, m);
      });
    });
  }

  it("accepts a closed event without holder when the outcome is not ACCEPTED", () => {
    const closed = example("closed");
    at(closed, "closed").outcome = "CLOSE_OUTCOME_WITHDRAWN";
    delete at(closed, "closed").holder;
    expect(check(eventSchemaId("closed"), closed).errors).toEqual([]);
  });

  it("accepts a rejected event without ofEventId (bytes that did not decode)", () => {
    const rejected = example("rejected");
    delete at(rejected, "rejected").ofEventId;
    delete at(rejected, "rejected").field;
    expect(check(eventSchemaId("rejected"), rejected).errors).toEqual([]);
  });

  it("accepts fractional seconds in UTC", () => {
    const opened = example("opened");
    opened.time = "2026-11-27T09:15:00.123456789Z";
    expect(check(eventSchemaId("opened"), opened).errors).toEqual([]);
  });
});

describe("invalid personal parts are refused with a path", () => {
  const base = example("personal");
  const mutations: Mutation[] = [
    ...["child", "childViewsHeard", "legalBasis", "contact"].map((key) => ({
      name: `missing ${key}`,
      apply: remove("", key),
      expect: { keyword: "required", instancePath: "" },
    })),
    {
      name: "extra property",
      apply: set("", "caseNumber", "IFO-2026-1"),
      expect: { keyword: "additionalProperties", instancePath: "" },
    },
    {
      name: "both date of birth and estimated age",
      apply: set("child", "dateOfBirth", "2011-03-04"),
      expect: { keyword: "oneOf", instancePath: "/child" },
    },
    {
      name: "neither date of birth nor estimated age",
      apply: remove("child", "estimatedAgeYears"),
      expect: { keyword: "oneOf", instancePath: "/child" },
    },
    {
      name: "estimated age of an adult",
      apply: set("child", "estimatedAgeYears", 18),
      expect: { keyword: "maximum", instancePath: "/child/estimatedAgeYears" },
    },
    {
      name: "estimated age not whole",
      apply: set("child", "estimatedAgeYears", 14.5),
      expect: { keyword: "type", instancePath: "/child/estimatedAgeYears" },
    },
    {
      name: "date of birth not a date",
      apply: (v) => {
        delete at(v, "child").estimatedAgeYears;
        at(v, "child").dateOfBirth = "04/03/2011";
      },
      expect: { keyword: "format", instancePath: "/child/dateOfBirth" },
    },
    {
      name: "nothing to recognise the child by",
      apply: (v) => {
        for (const key of ["givenNames", "familyName", "aliases", "description"])
          delete at(v, "child")[key];
      },
      expect: { keyword: "anyOf", instancePath: "/child" },
    },
    {
      name: "sex unknown value",
      apply: set("child", "sex", "f"),
      expect: { keyword: "enum", instancePath: "/child/sex" },
    },
    {
      name: "nationality in lower case",
      apply: set("child", "nationalities", ["so"]),
      expect: { keyword: "pattern", instancePath: "/child/nationalities/0" },
    },
    {
      name: "language not a BCP 47 tag",
      apply: set("child", "languages", ["Somali"]),
      expect: { keyword: "pattern", instancePath: "/child/languages/0" },
    },
    {
      name: "risk indicator outside the list",
      apply: set("", "riskIndicators", ["runaway"]),
      expect: { keyword: "enum", instancePath: "/riskIndicators/0" },
    },
    {
      name: "risk indicator twice",
      apply: set("", "riskIndicators", ["self_harm", "self_harm"]),
      expect: { keyword: "uniqueItems", instancePath: "/riskIndicators" },
    },
    {
      name: "asylum status unknown value",
      apply: set("", "asylumStatus", "pending"),
      expect: { keyword: "enum", instancePath: "/asylumStatus" },
    },
    {
      name: "guardianship unknown value",
      apply: set("", "guardianship", "yes"),
      expect: { keyword: "enum", instancePath: "/guardianship" },
    },
    {
      name: "child's views without heard",
      apply: remove("childViewsHeard", "heard"),
      expect: { keyword: "required", instancePath: "/childViewsHeard" },
    },
    {
      name: "heard as a string",
      apply: set("childViewsHeard", "heard", "yes"),
      expect: { keyword: "type", instancePath: "/childViewsHeard/heard" },
    },
    {
      name: "empty legal basis",
      apply: set("", "legalBasis", ""),
      expect: { keyword: "minLength", instancePath: "/legalBasis" },
    },
    {
      name: "contact names a person",
      apply: set("contact", "person", "Handläggare Exempel"),
      expect: { keyword: "additionalProperties", instancePath: "/contact" },
    },
    {
      name: "contact email invalid",
      apply: set("contact", "email", "mottagning"),
      expect: { keyword: "format", instancePath: "/contact/email" },
    },
    {
      name: "contact phone not E.164",
      apply: set("contact", "phone", "040-628 04 00"),
      expect: { keyword: "pattern", instancePath: "/contact/phone" },
    },
    {
      name: "last known time not a date-time",
      apply: set("lastKnown", "time", "yesterday"),
      expect: { keyword: "format", instancePath: "/lastKnown/time" },
    },
  ];
  it.each(mutations.map((m) => [m.name, m] as const))("%s", (_, m) => {
    expectRejected(PERSONAL_ID, base, m);
  });
});

describe("invalid trust lists are refused with a path", () => {
  const base = example("trust-list");
  const org =
    (role: string) =>
    (v: JsonObject): JsonObject => {
      const orgs = v.organisations;
      const found = Array.isArray(orgs)
        ? orgs.find((o) => isJsonObject(o) && o.role === role)
        : undefined;
      if (!isJsonObject(found)) throw new Error(`no ${role} in the example trust list`);
      return found;
    };
  const indexOf = (role: string): number => {
    const orgs = base.organisations;
    return Array.isArray(orgs) ? orgs.findIndex((o) => isJsonObject(o) && o.role === role) : -1;
  };
  const firstKey = (o: JsonObject, use: string): JsonObject => {
    const keys = o.keys;
    const found = Array.isArray(keys)
      ? keys.find((k) => isJsonObject(k) && k.use === use)
      : undefined;
    if (!isJsonObject(found)) throw new Error(`no ${use} key`);
    return found;
  };
  const m = indexOf("municipality");
  const h = indexOf("hub");
  const mutations: Mutation[] = [
    ...["version", "country", "issuer", "issuedAt", "organisations", "policy"].map((key) => ({
      name: `missing ${key}`,
      apply: remove("", key),
      expect: { keyword: "required", instancePath: "" },
    })),
    {
      name: "extra property",
      apply: set("", "comment", "x"),
      expect: { keyword: "additionalProperties", instancePath: "" },
    },
    {
      name: "version zero",
      apply: set("", "version", 0),
      expect: { keyword: "minimum", instancePath: "/version" },
    },
    {
      name: "version as a string",
      apply: set("", "version", "7"),
      expect: { keyword: "type", instancePath: "/version" },
    },
    {
      name: "issuer not a coordinator",
      apply: set("", "issuer", "se:liaison"),
      expect: { keyword: "pattern", instancePath: "/issuer" },
    },
    {
      name: "issuedAt not UTC",
      apply: set("", "issuedAt", "2026-11-20T09:00:00+01:00"),
      expect: { keyword: "pattern", instancePath: "/issuedAt" },
    },
    {
      name: "private key member d",
      apply: (v) => {
        at(firstKey(org("municipality")(v), "sig"), "jwk").d =
          "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
      },
      expect: { keyword: "false schema", instancePath: `/organisations/${m}/keys/0/jwk/d` },
    },
    {
      name: "signing key on the X25519 curve",
      apply: (v) => {
        at(firstKey(org("municipality")(v), "sig"), "jwk").crv = "X25519";
      },
      expect: { keyword: "const", instancePath: `/organisations/${m}/keys/0/jwk/crv` },
    },
    {
      name: "key type RSA",
      apply: (v) => {
        at(firstKey(org("municipality")(v), "enc"), "jwk").kty = "RSA";
      },
      expect: { keyword: "const", instancePath: `/organisations/${m}/keys/1/jwk/kty` },
    },
    {
      name: "public key of the wrong length",
      apply: (v) => {
        at(firstKey(org("municipality")(v), "enc"), "jwk").x = "AAAA";
      },
      expect: { keyword: "pattern", instancePath: `/organisations/${m}/keys/1/jwk/x` },
    },
    {
      name: "key use unknown",
      apply: (v) => {
        firstKey(org("municipality")(v), "sig").use = "both";
      },
      expect: { keyword: "enum", instancePath: `/organisations/${m}/keys/0/use` },
    },
    {
      name: "key without notAfter",
      apply: (v) => {
        delete firstKey(org("municipality")(v), "sig").notAfter;
      },
      expect: { keyword: "required", instancePath: `/organisations/${m}/keys/0` },
    },
    {
      name: "revokedAt not a date-time",
      apply: (v) => {
        firstKey(org("municipality")(v), "sig").revokedAt = "now";
      },
      expect: { keyword: "format", instancePath: `/organisations/${m}/keys/0/revokedAt` },
    },
    {
      name: "municipality without its code",
      apply: (v) => {
        delete org("municipality")(v).municipality;
      },
      expect: { keyword: "required", instancePath: `/organisations/${m}` },
    },
    {
      name: "hub with a municipality code",
      apply: (v) => {
        org("hub")(v).municipality = "1480";
      },
      expect: { keyword: "false schema", instancePath: `/organisations/${h}/municipality` },
    },
    {
      name: "role that does not match the id",
      apply: (v) => {
        org("hub")(v).role = "liaison";
      },
      expect: { keyword: "pattern", instancePath: `/organisations/${h}/id` },
    },
    {
      name: "unknown role",
      apply: (v) => {
        org("hub")(v).role = "police";
      },
      expect: { keyword: "enum", instancePath: `/organisations/${h}/role` },
    },
    {
      name: "organisation without keys",
      apply: (v) => {
        org("hub")(v).keys = [];
      },
      expect: { keyword: "minItems", instancePath: `/organisations/${h}/keys` },
    },
    {
      name: "policy with an unknown event type",
      apply: (v) => {
        const policy = v.policy;
        if (Array.isArray(policy) && isJsonObject(policy[0])) policy[0].types = ["opened", "moved"];
      },
      expect: { keyword: "enum", instancePath: "/policy/0/types/1" },
    },
  ];
  it.each(mutations.map((x) => [x.name, x] as const))("%s", (_, x) => {
    expectRejected(TRUST_LIST_ID, base, x);
  });
});
