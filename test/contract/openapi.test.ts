/**
 * schemas/api/openapi.yaml (the municipality gateway) and schemas/api/hub-openapi.yaml (the
 * regional hub) describe the HTTP APIs the services really serve: every route is documented and
 * every documented operation is served, every `$ref` resolves, every example satisfies its schema,
 * and what the route handlers answer (status, headers, body) is what the documents promise.
 *
 * The apps are built without NATS: the gateway and the hub are replaced by stand-ins that only
 * provide what the handlers call, so the HTTP layer (auth, error mapping, views) is the real one.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import type { FastifyInstance, HTTPMethods, InjectOptions, LightMyRequestResponse } from "fastify";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createDevTokenIssuer,
  createLogger,
  payloadOf,
  StafettError,
  type DevTokenIssuer,
  type HttpServiceOptions,
} from "@stafett/shared";
import type { Gateway, OpenedReferral } from "../../services/gateway/src/gateway.js";
import { BODY_LIMIT, buildGatewayHttp } from "../../services/gateway/src/http.js";
import { GatewayState, type InboxItem } from "../../services/gateway/src/state.js";
import type { Hub } from "../../services/hub/src/hub.js";
import { buildHubHttp } from "../../services/hub/src/http.js";
import { HubState, type HubReferral } from "../../services/hub/src/state.js";
import {
  SCHEMA_BASE,
  example,
  isJsonObject,
  readJsonObject,
  schemasDir,
  type Json,
  type JsonObject,
} from "./contract-files.js";

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
type Method = (typeof HTTP_METHODS)[number];

interface ApiDoc {
  name: string;
  file: string;
  /** The URI the document would have next to the schemas' `$id`s; relative `$ref`s resolve from it. */
  uri: string;
  text: string;
  doc: JsonObject;
}

function loadDoc(name: string): ApiDoc {
  const file = join(schemasDir, "api", name);
  const text = readFileSync(file, "utf8");
  const doc = parse(text) as unknown as Json;
  if (!isJsonObject(doc)) throw new Error(`${name} is not a YAML mapping`);
  return { name, file, uri: `${SCHEMA_BASE}api/${name}`, text, doc };
}

const GATEWAY = loadDoc("openapi.yaml");
const HUB = loadDoc("hub-openapi.yaml");
const DOCS = [GATEWAY, HUB];

function obj(value: Json | undefined, where: string): JsonObject {
  if (!isJsonObject(value)) throw new Error(`${where} is not an object`);
  return value;
}

function members(value: Json | undefined): JsonObject {
  return isJsonObject(value) ? value : {};
}

/** RFC 6901 JSON pointer (the part after `#`) into a document. */
function pointer(root: Json, fragment: string): Json | undefined {
  if (fragment === "" || fragment === "/") return fragment === "" ? root : undefined;
  let node: Json | undefined = root;
  for (const raw of fragment.slice(1).split("/")) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    if (Array.isArray(node)) node = node[Number(key)];
    else if (isJsonObject(node)) node = node[key];
    else return undefined;
  }
  return node;
}

/** A component (`#/components/...`) reference is followed; anything else is returned as is. */
function deref(api: ApiDoc, value: Json | undefined, where: string): JsonObject {
  const o = obj(value, where);
  const ref = o.$ref;
  if (typeof ref !== "string" || !ref.startsWith("#/components/")) return o;
  return deref(api, pointer(api.doc, ref.slice(1)), ref);
}

interface Operation {
  method: Method;
  path: string;
  op: JsonObject;
  /** Path-level and operation-level parameters, dereferenced. */
  parameters: JsonObject[];
}

function operations(api: ApiDoc): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(obj(api.doc.paths, `${api.name} paths`))) {
    const pathItem = obj(item, path);
    const shared = Array.isArray(pathItem.parameters) ? pathItem.parameters : [];
    for (const method of HTTP_METHODS) {
      const op = pathItem[method];
      if (op === undefined) continue;
      const own = obj(op, `${method} ${path}`);
      const params = [...shared, ...(Array.isArray(own.parameters) ? own.parameters : [])];
      out.push({
        method,
        path,
        op: own,
        parameters: params.map((p, i) => deref(api, p, `${method} ${path} parameter ${i}`)),
      });
    }
  }
  return out;
}

function operation(api: ApiDoc, method: Method, path: string): Operation {
  const found = operations(api).find((o) => o.method === method && o.path === path);
  if (found === undefined) throw new Error(`${api.name} does not document ${method} ${path}`);
  return found;
}

/** Every `$ref` in a document, with where it is. */
function refsIn(node: Json, at = "#"): { at: string; ref: string }[] {
  if (Array.isArray(node)) return node.flatMap((n, i) => refsIn(n, `${at}/${i}`));
  if (!isJsonObject(node)) return [];
  return Object.entries(node).flatMap(([k, v]) =>
    k === "$ref" && typeof v === "string" ? [{ at, ref: v }] : refsIn(v, `${at}/${k}`),
  );
}

// ---------------------------------------------------------------------------------------------
// JSON Schema validation: every schema under schemas/ plus each document's component schemas,
// with the documents' `$ref`s made absolute (file refs against the document's URI, component
// refs to the id the component is registered under).

function componentId(api: ApiDoc, name: string): string {
  return `${api.uri}/components/schemas/${name}`;
}

function absoluteRefs(node: Json, api: ApiDoc): Json {
  if (Array.isArray(node)) return node.map((n) => absoluteRefs(n, api));
  if (!isJsonObject(node)) return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "$ref" && typeof v === "string") {
      const component = /^#\/components\/schemas\/([^/]+)$/.exec(v)?.[1];
      out[k] = component !== undefined ? componentId(api, component) : new URL(v, api.uri).href;
    } else {
      out[k] = absoluteRefs(v, api);
    }
  }
  return out;
}

function schemaFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? schemaFilesUnder(join(dir, e.name))
      : e.name.endsWith(".schema.json")
        ? [join(dir, e.name)]
        : [],
  );
}

function createApiAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  for (const file of schemaFilesUnder(schemasDir)) ajv.addSchema(readJsonObject(file));
  for (const api of DOCS) {
    const schemas = members(members(api.doc.components).schemas);
    for (const [name, schema] of Object.entries(schemas)) {
      ajv.addSchema({ ...obj(absoluteRefs(schema, api), name), $id: componentId(api, name) });
    }
  }
  return ajv;
}

const ajv = createApiAjv();

function compile(api: ApiDoc, schema: Json | undefined, where: string): ValidateFunction {
  if (schema === undefined) throw new Error(`${where} has no schema`);
  return ajv.compile(obj(absoluteRefs(schema, api), where));
}

function expectValid(api: ApiDoc, schema: Json | undefined, value: unknown, where: string): void {
  const validate = compile(api, schema, where);
  const valid = validate(value);
  expect(valid, `${where}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

interface Example {
  where: string;
  schema: Json | undefined;
  value: Json;
}

/** The examples of a media type object: `example`, and each of `examples` (by value). */
function mediaExamples(api: ApiDoc, media: JsonObject, where: string): Example[] {
  const out: Example[] = [];
  if (media.example !== undefined) out.push({ where, schema: media.schema, value: media.example });
  for (const [name, ex] of Object.entries(members(media.examples))) {
    const value = deref(api, ex, `${where} example ${name}`).value;
    if (value === undefined) throw new Error(`${where} example ${name} has no value`);
    out.push({ where: `${where} example ${name}`, schema: media.schema, value });
  }
  return out;
}

function requestExamples(api: ApiDoc): Example[] {
  return operations(api).flatMap(({ method, path, op }) => {
    if (op.requestBody === undefined) return [];
    const body = deref(api, op.requestBody, `${method} ${path} requestBody`);
    return Object.entries(members(body.content)).flatMap(([type, media]) =>
      mediaExamples(api, obj(media, type), `${method} ${path} request ${type}`),
    );
  });
}

function otherExamples(api: ApiDoc): Example[] {
  return operations(api).flatMap(({ method, path, op, parameters }) => {
    const out: Example[] = [];
    for (const p of parameters) {
      if (p.example !== undefined) {
        out.push({
          where: `${method} ${path} parameter ${String(p.name)}`,
          schema: p.schema,
          value: p.example,
        });
      }
    }
    for (const [status, response] of Object.entries(members(op.responses))) {
      const r = deref(api, response, `${method} ${path} ${status}`);
      for (const [name, header] of Object.entries(members(r.headers))) {
        const h = deref(api, header, `${method} ${path} ${status} header ${name}`);
        if (h.example !== undefined) {
          out.push({
            where: `${method} ${path} ${status} ${name}`,
            schema: h.schema,
            value: h.example,
          });
        }
      }
      for (const [type, media] of Object.entries(members(r.content))) {
        out.push(...mediaExamples(api, obj(media, type), `${method} ${path} ${status} ${type}`));
      }
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// The routes a fastify app serves, read from its route tree (fastify has no route list API).

/** "METHOD /path/{param}" for every route but HEAD (fastify adds HEAD to every GET). */
function servedRoutes(app: FastifyInstance): string[] {
  const out: string[] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    if (line.trim() === "") continue;
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (m === null) throw new Error(`unexpected printRoutes line: ${JSON.stringify(line)}`);
    const depth = (m[1] ?? "").length / 4;
    const path = (depth === 0 ? "" : (stack[depth - 1] ?? "")) + (m[2] ?? "");
    stack.length = depth;
    stack.push(path);
    for (const method of (m[3] ?? "").split(", ").filter((s) => s !== "" && s !== "HEAD")) {
      // The parse is checked against the router itself.
      expect(app.hasRoute({ method: method as HTTPMethods, url: path }), `${method} ${path}`).toBe(
        true,
      );
      out.push(`${method} ${path.replace(/:([A-Za-z0-9_]+)/g, "{$1}")}`);
    }
  }
  return out.sort();
}

function documentedRoutes(api: ApiDoc): string[] {
  return operations(api)
    .filter((o) => o.method !== "head")
    .map((o) => `${o.method.toUpperCase()} ${o.path}`)
    .sort();
}

function fastifyPath(path: string): string {
  return path.replace(/\{([^}]+)\}/g, ":$1");
}

/** True when the operation needs a token (its own `security`, else the document's). */
function secured(api: ApiDoc, op: JsonObject): boolean {
  const security = op.security ?? api.doc.security;
  return Array.isArray(security) && security.length > 0;
}

// ---------------------------------------------------------------------------------------------
// Stand-ins and sample state.

const GATEWAY_ORG = "se:municipality:1280";
const HUB_ORG = "se:hub:vast";
const SENT_ID = "4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10";
const INBOX_ID = "8a3e5f1c-7d29-4b64-9c02-e6f1a4b8d357";
const TRIAGE_ID = "b1c2d3e4-f5a6-4b7c-8d9e-0f1a2b3c4d5e";
const UNKNOWN_ID = "00000000-0000-4000-8000-000000000000";
const REPLAYED_KEY = "case-2026-04711-retry";

/** What the next call to the bus-facing stand-in methods throws, if anything. */
const control: { failWith: Error | undefined } = { failWith: undefined };

function failIfAsked(): void {
  if (control.failWith !== undefined) throw control.failWith;
}

/** The journal place the sample records would have; the stand-in never reads them back. */
const NOWHERE = { offset: 0, length: 0 };

function sampleGatewayState(): GatewayState {
  const state = new GatewayState();
  const at = (s: string) => `2026-11-27T${s}Z`;
  state.apply(
    {
      k: "sent",
      referralId: SENT_ID,
      openedId: "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3",
      hub: "se:hub:vast",
      destination: { country: "se", region: "vast", municipality: "1480" },
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      deadline: at("21:15:00.000"),
      at: at("09:15:00.000"),
      idempotencyKey: REPLAYED_KEY,
    },
    NOWHERE,
  );
  const entries = [
    { type: "received", by: "se:hub:vast" },
    { type: "rejected", by: "se:hub:vast", code: "ERR_STALE", reason: "too_old" },
    { type: "forwarded", by: "se:hub:vast", to: "se:municipality:1480" },
    { type: "declined", by: "se:municipality:1480", reason: "DECLINE_REASON_WRONG_MUNICIPALITY" },
    { type: "rerouted", by: "se:hub:vast", to: "se:hub:stockholm" },
    { type: "escalated", by: "se:hub:stockholm" },
    { type: "updated", by: GATEWAY_ORG },
    { type: "accepted", by: "se:municipality:0180" },
    { type: "closed", by: GATEWAY_ORG },
  ] as const;
  entries.forEach((entry, i) => {
    state.apply(
      {
        k: "timeline",
        referralId: SENT_ID,
        entry: {
          ...entry,
          at: at(`10:0${i}:00.000`),
          eventId: `0000000${i}-0000-4000-8000-000000000001`,
        },
      },
      NOWHERE,
    );
  });
  state.apply(
    {
      k: "inbox",
      referralId: INBOX_ID,
      forwardedId: "9b2d4f60-1e7a-4c38-b6a9-0d5e3f8c1a72",
      openedId: "1d5f8b3a-9c47-4e62-a0b8-7e2c4d9f6a15",
      origin: "se:municipality:0180",
      via: "se:hub:syd",
      urgency: "URGENCY_NORMAL",
      reason: "REASON_CATEGORY_MOVED",
      deadline: at("23:00:00.000"),
      bytes: "AAAA",
      at: at("09:30:00.000"),
    },
    NOWHERE,
  );
  state.apply(
    {
      k: "inbox-event",
      referralId: INBOX_ID,
      type: "updated",
      eventId: "6e0a2c9f-4b81-4d35-8f7e-3a9c1b5d2e60",
      bytes: "AAAA",
      at: at("09:45:00.000"),
    },
    NOWHERE,
  );
  return state;
}

function gatewayStandIn(state: GatewayState): Gateway {
  const standIn: Pick<
    Gateway,
    "state" | "referral" | "inboxItem" | "personalOf" | "openReferral" | "follow" | "answer"
  > = {
    state,
    referral: (id) => state.sent.get(id),
    inboxItem: (id) => state.inbox.get(id),
    personalOf: async () => example("personal"),
    openReferral: async (request, key): Promise<OpenedReferral> => {
      failIfAsked();
      return {
        referralId: SENT_ID,
        eventId: "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3",
        deadline: request.deadline ?? "2026-11-27T21:15:00.000Z",
        addressee: "se:hub:vast",
        replayed: key === REPLAYED_KEY,
      };
    },
    follow: async (_id, type) => {
      failIfAsked();
      return {
        type,
        at: "2026-11-27T11:00:00.000Z",
        eventId: "a7c3e9f1-5b28-4d64-8e10-6f2b9d4c3a85",
        by: GATEWAY_ORG,
      };
    },
    answer: async (id, decision): Promise<InboxItem> => {
      failIfAsked();
      const item = state.inbox.get(id);
      if (item === undefined) throw new Error(`the stand-in has no ${id}`);
      return { ...item, status: decision };
    },
  };
  return standIn as Gateway;
}

function sampleHubState(): HubState {
  const state = new HubState();
  const received = (referralId: string, destination: HubReferral["destination"]) =>
    state.apply(
      {
        k: "received",
        referralId,
        openedId: "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3",
        origin: GATEWAY_ORG,
        opened: "AAAA",
        urgency: "URGENCY_HIGH",
        deadline: "2026-11-27T21:15:00Z",
        destination,
        from: GATEWAY_ORG,
        at: "2026-11-27T09:15:00.402Z",
      },
      NOWHERE,
    );
  received(SENT_ID, { country: "se", region: "vast", municipality: "1480" });
  const base = { referralId: SENT_ID, at: "2026-11-27T10:00:00.000Z" };
  state.apply(
    { k: "forwarded", ...base, to: "se:municipality:1480", eventId: UNKNOWN_ID },
    NOWHERE,
  );
  state.apply(
    {
      k: "declined",
      ...base,
      by: "se:municipality:1480",
      eventId: UNKNOWN_ID,
      reason: "DECLINE_REASON_WRONG_MUNICIPALITY",
    },
    NOWHERE,
  );
  state.apply({ k: "triage", ...base }, NOWHERE);
  state.apply(
    { k: "forwarded", ...base, to: "se:municipality:1481", eventId: UNKNOWN_ID },
    NOWHERE,
  );
  state.apply({ k: "escalated", ...base, eventId: UNKNOWN_ID }, NOWHERE);
  state.apply({ k: "updated", ...base, eventId: UNKNOWN_ID }, NOWHERE);
  state.apply({ k: "accepted", ...base, by: "se:municipality:1481", eventId: UNKNOWN_ID }, NOWHERE);
  state.apply(
    {
      k: "note",
      ...base,
      type: "forwarded:received",
      eventId: UNKNOWN_ID,
      from: "se:municipality:1481",
    },
    NOWHERE,
  );
  state.apply({ k: "closed", ...base, eventId: UNKNOWN_ID }, NOWHERE);
  received(TRIAGE_ID, { country: "se", region: "vast" });
  state.apply({ k: "triage", referralId: TRIAGE_ID, at: "2026-11-27T09:15:00.500Z" }, NOWHERE);
  return state;
}

function hubStandIn(state: HubState): Hub {
  const standIn: Pick<Hub, "state" | "triageForward"> = {
    state,
    triageForward: async (id, municipality) => {
      failIfAsked();
      const ref = state.referrals.get(id);
      if (ref === undefined) throw new Error(`the stand-in has no ${id}`);
      return { ...ref, status: "forwarded", holder: `se:municipality:${municipality}` };
    },
  };
  return standIn as Hub;
}

// ---------------------------------------------------------------------------------------------
// Calling an app and checking the answer against the document.

/** A notifier with nothing to tell: GET /v1/events is served as in a running service. */
const NO_EVENTS: NonNullable<HttpServiceOptions["events"]> = {
  subscribe: () => () => true,
  since: function* () {},
  payload: (n) => payloadOf(n, "http://127.0.0.1"),
};

let tokens: DevTokenIssuer;
let gatewayApp: FastifyInstance;
let hubApp: FastifyInstance;

beforeAll(async () => {
  tokens = await createDevTokenIssuer();
  const log = createLogger({ service: "openapi-test", level: "silent" });
  gatewayApp = await buildGatewayHttp(gatewayStandIn(sampleGatewayState()), {
    auth: tokens.config,
    org: GATEWAY_ORG,
    log,
    events: NO_EVENTS,
  });
  hubApp = await buildHubHttp(hubStandIn(sampleHubState()), {
    auth: tokens.config,
    org: HUB_ORG,
    log,
    events: NO_EVENTS,
  });
  await Promise.all([gatewayApp.ready(), hubApp.ready()]);
});

afterAll(async () => {
  await Promise.all([gatewayApp.close(), hubApp.close()]);
});

/** Checks that the answer's status, required headers and body are what the operation documents. */
function expectDocumented(api: ApiDoc, method: Method, path: string, res: LightMyRequestResponse) {
  const where = `${api.name} ${method.toUpperCase()} ${path} -> ${res.statusCode}`;
  const { op } = operation(api, method, path);
  const documented = members(op.responses)[String(res.statusCode)];
  expect(documented, `${where} is not documented (body ${res.body})`).toBeDefined();
  const response = deref(api, documented, where);
  for (const [name, header] of Object.entries(members(response.headers))) {
    const h = deref(api, header, `${where} header ${name}`);
    const value = res.headers[name.toLowerCase()];
    if (h.required === true) expect(value, `${where} header ${name}`).toBeDefined();
    if (value === undefined) continue;
    const type = members(h.schema).type;
    expectValid(
      api,
      h.schema,
      type === "integer" ? Number(value) : value,
      `${where} header ${name}`,
    );
  }
  const content = members(response.content);
  if (res.body === "") {
    expect(Object.keys(content), `${where}: empty body`).toEqual([]);
    return;
  }
  const type = String(res.headers["content-type"] ?? "").split(";")[0] ?? "";
  const media = content[type];
  expect(media, `${where}: content type ${type} is not documented`).toBeDefined();
  if (type === "application/json") {
    expectValid(api, obj(media, where).schema, res.json(), `${where} body`);
  }
}

type Auth = "token" | "none" | "other-org";

async function call(
  app: FastifyInstance,
  org: string,
  method: Method,
  url: string,
  options: { auth?: Auth; body?: InjectOptions["payload"]; headers?: Record<string, string> } = {},
): Promise<LightMyRequestResponse> {
  const auth = options.auth ?? "token";
  const headers: Record<string, string> = { ...options.headers };
  if (auth !== "none") {
    headers.authorization = `Bearer ${await tokens.mint(auth === "token" ? org : "se:municipality:0180")}`;
  }
  return app.inject({
    method: method.toUpperCase() as InjectOptions["method"],
    url,
    headers,
    ...(options.body === undefined ? {} : { payload: options.body }),
  });
}

/** The operation's first JSON request example, read when the test runs. */
function requestExample(api: ApiDoc, method: Method, path: string): () => Json {
  return () => {
    const first = requestExamples(api).find((e) =>
      e.where.startsWith(`${method} ${path} request application/json`),
    );
    if (first === undefined) throw new Error(`no request example for ${method} ${path}`);
    return first.value;
  };
}

const busUnavailable = () => new Error("nats: maximum messages exceeded");

interface Case {
  name: string;
  method: Method;
  /** The documented path. */
  path: string;
  url: string;
  auth?: Auth;
  body?: InjectOptions["payload"] | (() => Json);
  headers?: Record<string, string>;
  failWith?: () => Error;
  status: number;
  check?: (res: LightMyRequestResponse) => void;
}

function runCases(api: ApiDoc, app: () => FastifyInstance, org: string, cases: Case[]): void {
  for (const c of cases) {
    it(`${c.method.toUpperCase()} ${c.url}: ${c.name} -> ${c.status}`, async () => {
      control.failWith = c.failWith?.();
      try {
        const res = await call(app(), org, c.method, c.url, {
          ...(c.auth === undefined ? {} : { auth: c.auth }),
          ...(c.body === undefined
            ? {}
            : { body: typeof c.body === "function" ? c.body() : c.body }),
          ...(c.headers === undefined ? {} : { headers: c.headers }),
        });
        expect(res.statusCode, res.body).toBe(c.status);
        expectDocumented(api, c.method, c.path, res);
        c.check?.(res);
      } finally {
        control.failWith = undefined;
      }
    });
  }
}

function bodyOf(res: LightMyRequestResponse): JsonObject {
  return obj(res.json<Json>(), "response body");
}

// ---------------------------------------------------------------------------------------------

describe.each(DOCS)("$name", (api) => {
  it("is OpenAPI 3.1.0 with a title, a version and a bearer JWT scheme", () => {
    expect(api.doc.openapi).toBe("3.1.0");
    const info = obj(api.doc.info, "info");
    expect(typeof info.title).toBe("string");
    expect(typeof info.version).toBe("string");
    expect(typeof info.description).toBe("string");
    const scheme = obj(pointer(api.doc, "/components/securitySchemes/bearerAuth"), "bearerAuth");
    expect(scheme).toMatchObject({ type: "http", scheme: "bearer", bearerFormat: "JWT" });
    for (const claim of ["iss", "aud", "exp", "sub", "org"]) {
      expect(String(scheme.description), claim).toContain(`\`${claim}\``);
    }
  });

  it("resolves every $ref: component pointers inside the document, files (and $defs) next to it", () => {
    const refs = refsIn(api.doc);
    expect(refs.length).toBeGreaterThan(0);
    for (const { at, ref } of refs) {
      const [target = "", fragment] = ref.split("#", 2);
      if (target === "") {
        expect(pointer(api.doc, fragment ?? ""), `${at}: ${ref}`).toBeDefined();
        continue;
      }
      const file = resolve(dirname(api.file), target);
      expect(existsSync(file), `${at}: ${ref} (${file})`).toBe(true);
      const schema = readJsonObject(file);
      // Validation resolves file refs through the schemas' $id, so the two must agree.
      expect(schema.$id, `${at}: ${ref}`).toBe(new URL(target, api.uri).href);
      if (fragment !== undefined && fragment !== "") {
        expect(pointer(schema, fragment), `${at}: ${ref}`).toBeDefined();
      }
    }
  });

  it("has unique operation ids and declares every path parameter", () => {
    const ops = operations(api);
    const ids = ops.map((o) => o.op.operationId);
    expect(ids.every((id) => typeof id === "string")).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { method, path, parameters } of ops) {
      const inPath = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      const declared = parameters
        .filter((p) => p.in === "path")
        .map((p) => p.name)
        .sort();
      expect(declared, `${method} ${path}`).toEqual(inPath);
      expect(
        parameters.filter((p) => p.in === "path").every((p) => p.required === true),
        `${method} ${path}`,
      ).toBe(true);
    }
  });

  it("has request examples that satisfy the referenced request schemas", () => {
    const withBody = operations(api).filter((o) => o.op.requestBody !== undefined);
    expect(withBody.length).toBeGreaterThan(0);
    const examples = requestExamples(api);
    for (const { method, path } of withBody) {
      expect(
        examples.some((e) => e.where.startsWith(`${method} ${path} `)),
        `${method} ${path} has no request example`,
      ).toBe(true);
    }
    for (const e of examples) expectValid(api, e.schema, e.value, e.where);
  });

  it("has response, parameter and header examples that satisfy their schemas", () => {
    const examples = otherExamples(api);
    expect(examples.length).toBeGreaterThan(0);
    for (const e of examples) expectValid(api, e.schema, e.value, e.where);
  });
});

describe("the documented routes are the served routes", () => {
  it.each([
    { api: GATEWAY, app: () => gatewayApp },
    { api: HUB, app: () => hubApp },
  ])("$api.name", ({ api, app }) => {
    const served = servedRoutes(app());
    expect(served.length).toBeGreaterThan(3);
    const documented = documentedRoutes(api);
    expect
      .soft(
        served.filter((r) => !documented.includes(r)),
        "served but not documented",
      )
      .toEqual([]);
    expect(
      documented.filter((r) => !served.includes(r)),
      "documented but not served",
    ).toEqual([]);
    for (const { method, path } of operations(api)) {
      const route = { method: method.toUpperCase() as HTTPMethods, url: fastifyPath(path) };
      expect(app().hasRoute(route), `${method} ${path}`).toBe(true);
    }
  });

  it.each([
    { api: GATEWAY, app: () => gatewayApp, org: GATEWAY_ORG },
    { api: HUB, app: () => hubApp, org: HUB_ORG },
  ])("$api.name: an operation needs a token exactly when it documents security", async (c) => {
    for (const { method, path, op } of operations(c.api)) {
      const url = path.replace(/\{[^}]+\}/g, UNKNOWN_ID);
      const res = await call(c.app(), c.org, method, url, { auth: "none" });
      if (secured(c.api, op)) {
        expect(res.statusCode, `${method} ${path}`).toBe(401);
        expectDocumented(c.api, method, path, res);
      } else {
        expect(res.statusCode, `${method} ${path}`).toBe(200);
      }
    }
  });
});

describe("the gateway answers as openapi.yaml documents", () => {
  const g = GATEWAY;
  const withdraw = "/v1/referrals/{id}/withdraw";
  runCases(g, () => gatewayApp, GATEWAY_ORG, [
    { name: "live", method: "get", path: "/healthz", url: "/healthz", auth: "none", status: 200 },
    {
      name: "this document",
      method: "get",
      path: "/openapi.yaml",
      url: "/openapi.yaml",
      auth: "none",
      status: 200,
      check: (res) => expect(res.body).toBe(g.text),
    },
    {
      name: "token for another organisation",
      method: "get",
      path: "/v1/referrals",
      url: "/v1/referrals",
      auth: "other-org",
      status: 403,
    },
    { name: "list", method: "get", path: "/v1/referrals", url: "/v1/referrals", status: 200 },
    {
      name: "one, every kind of timeline entry",
      method: "get",
      path: "/v1/referrals/{id}",
      url: `/v1/referrals/${SENT_ID}`,
      status: 200,
      check: (res) => expect(bodyOf(res).timeline).toHaveLength(10),
    },
    {
      name: "unknown",
      method: "get",
      path: "/v1/referrals/{id}",
      url: `/v1/referrals/${UNKNOWN_ID}`,
      status: 404,
    },
    {
      name: "open",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: requestExample(g, "post", "/v1/referrals"),
      headers: { "idempotency-key": "case-2026-04712" },
      status: 202,
      check: (res) => {
        expect(res.headers.location).toBe(`/v1/referrals/${SENT_ID}`);
        expect(bodyOf(res).replayed).toBe(false);
      },
    },
    {
      name: "retry with the same Idempotency-Key",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: requestExample(g, "post", "/v1/referrals"),
      headers: { "idempotency-key": REPLAYED_KEY },
      status: 200,
      check: (res) => expect(bodyOf(res).replayed).toBe(true),
    },
    {
      name: "Idempotency-Key with a space",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: requestExample(g, "post", "/v1/referrals"),
      headers: { "idempotency-key": "case 1" },
      status: 400,
      check: (res) => expect(bodyOf(res)).toMatchObject({ field: "Idempotency-Key" }),
    },
    {
      name: "refused by the gateway",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: requestExample(g, "post", "/v1/referrals"),
      failWith: () =>
        new StafettError(
          "ERR_UNKNOWN_MUNICIPALITY",
          "destination municipality is not a known code",
          {
            reason: "unknown",
            field: "/destination/municipality",
          },
        ),
      status: 400,
    },
    {
      name: "duplicate referral id",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: requestExample(g, "post", "/v1/referrals"),
      failWith: () =>
        new StafettError("ERR_REPLAY", "a referral with this id was already opened", {
          reason: "duplicate_referral",
          field: "/referralId",
        }),
      status: 409,
    },
    {
      name: "bus full",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: requestExample(g, "post", "/v1/referrals"),
      failWith: busUnavailable,
      status: 503,
      check: (res) => expect(res.headers["retry-after"]).toBe("5"),
    },
    {
      name: "unexpected failure",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: requestExample(g, "post", "/v1/referrals"),
      failWith: () => new TypeError("a bug"),
      status: 500,
    },
    {
      name: "body over the limit",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: JSON.stringify({ padding: "x".repeat(BODY_LIMIT) }),
      headers: { "content-type": "application/json" },
      status: 413,
    },
    {
      name: "not JSON",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: "{not json",
      headers: { "content-type": "application/json" },
      status: 400,
    },
    {
      name: "not a JSON media type",
      method: "post",
      path: "/v1/referrals",
      url: "/v1/referrals",
      body: "<referral/>",
      headers: { "content-type": "application/xml" },
      status: 415,
    },
    {
      name: "update",
      method: "post",
      path: "/v1/referrals/{id}/update",
      url: `/v1/referrals/${SENT_ID}/update`,
      body: requestExample(g, "post", "/v1/referrals/{id}/update"),
      status: 200,
    },
    {
      name: "update with a personal part that breaks the schema (the value is not echoed)",
      method: "post",
      path: "/v1/referrals/{id}/update",
      url: `/v1/referrals/${SENT_ID}/update`,
      body: {
        personal: { ...example("personal"), legalBasis: undefined, asylumStatus: "Amal-secret" },
      },
      status: 400,
      check: (res) => {
        expect(res.body).not.toContain("Amal-secret");
        const issues = bodyOf(res).issues;
        expect(issues).toEqual(
          expect.arrayContaining([
            expect.objectContaining({ field: "/personal/asylumStatus", reason: "enum" }),
            expect.objectContaining({ field: "/personal/legalBasis", reason: "required" }),
          ]),
        );
      },
    },
    {
      name: "withdraw",
      method: "post",
      path: withdraw,
      url: `/v1/referrals/${SENT_ID}/withdraw`,
      body: requestExample(g, "post", withdraw),
      status: 200,
    },
    {
      name: "withdraw without a reason code",
      method: "post",
      path: withdraw,
      url: `/v1/referrals/${SENT_ID}/withdraw`,
      body: { reason: "found her" },
      status: 400,
      check: (res) => expect(res.body).not.toContain("found her"),
    },
    {
      name: "withdraw an ended referral",
      method: "post",
      path: withdraw,
      url: `/v1/referrals/${SENT_ID}/withdraw`,
      body: requestExample(g, "post", withdraw),
      failWith: () =>
        new StafettError("ERR_NOT_AUTHORISED", "the referral is closed", {
          reason: "ended",
          field: "referralId",
        }),
      status: 409,
    },
    {
      name: "withdraw while the bus is down",
      method: "post",
      path: withdraw,
      url: `/v1/referrals/${SENT_ID}/withdraw`,
      body: requestExample(g, "post", withdraw),
      failWith: () => new Error("no responders available for request"),
      status: 503,
    },
    {
      name: "close",
      method: "post",
      path: "/v1/referrals/{id}/close",
      url: `/v1/referrals/${SENT_ID}/close`,
      status: 200,
    },
    { name: "inbox", method: "get", path: "/v1/inbox", url: "/v1/inbox", status: 200 },
    {
      name: "one, with the personal part",
      method: "get",
      path: "/v1/inbox/{id}",
      url: `/v1/inbox/${INBOX_ID}`,
      status: 200,
      check: (res) => expect(bodyOf(res).personal).toEqual(example("personal")),
    },
    {
      name: "unknown",
      method: "get",
      path: "/v1/inbox/{id}",
      url: `/v1/inbox/${UNKNOWN_ID}`,
      status: 404,
    },
    {
      name: "accept",
      method: "post",
      path: "/v1/inbox/{id}/accept",
      url: `/v1/inbox/${INBOX_ID}/accept`,
      status: 200,
      check: (res) => expect(bodyOf(res).status).toBe("accepted"),
    },
    {
      name: "accept twice",
      method: "post",
      path: "/v1/inbox/{id}/accept",
      url: `/v1/inbox/${INBOX_ID}/accept`,
      failWith: () =>
        new StafettError("ERR_NOT_AUTHORISED", "the referral is already accepted", {
          reason: "not_pending",
          field: "referralId",
        }),
      status: 409,
    },
    {
      name: "decline",
      method: "post",
      path: "/v1/inbox/{id}/decline",
      url: `/v1/inbox/${INBOX_ID}/decline`,
      body: requestExample(g, "post", "/v1/inbox/{id}/decline"),
      status: 200,
      check: (res) => expect(bodyOf(res).status).toBe("declined"),
    },
    {
      name: "decline with an unknown reason",
      method: "post",
      path: "/v1/inbox/{id}/decline",
      url: `/v1/inbox/${INBOX_ID}/decline`,
      body: { reason: "DECLINE_REASON_BUSY" },
      status: 400,
      check: (res) =>
        expect(bodyOf(res)).toMatchObject({ code: "ERR_SCHEMA_INVALID", field: "/reason" }),
    },
    {
      name: "decline while the bus is down",
      method: "post",
      path: "/v1/inbox/{id}/decline",
      url: `/v1/inbox/${INBOX_ID}/decline`,
      body: requestExample(g, "post", "/v1/inbox/{id}/decline"),
      failWith: busUnavailable,
      status: 503,
    },
  ]);
});

describe("the hub answers as hub-openapi.yaml documents", () => {
  const forward = "/v1/triage/{id}/forward";
  runCases(HUB, () => hubApp, HUB_ORG, [
    {
      name: "token for another organisation",
      method: "get",
      path: "/v1/referrals",
      url: "/v1/referrals",
      auth: "other-org",
      status: 403,
    },
    { name: "list", method: "get", path: "/v1/referrals", url: "/v1/referrals", status: 200 },
    {
      name: "one, with its history",
      method: "get",
      path: "/v1/referrals/{id}",
      url: `/v1/referrals/${SENT_ID}`,
      status: 200,
    },
    {
      name: "unknown",
      method: "get",
      path: "/v1/referrals/{id}",
      url: `/v1/referrals/${UNKNOWN_ID}`,
      status: 404,
    },
    {
      name: "triage queue",
      method: "get",
      path: "/v1/triage",
      url: "/v1/triage",
      status: 200,
      check: (res) =>
        expect(res.json<{ referralId: string }[]>().map((r) => r.referralId)).toEqual([TRIAGE_ID]),
    },
    {
      name: "forward",
      method: "post",
      path: forward,
      url: `/v1/triage/${TRIAGE_ID}/forward`,
      body: requestExample(HUB, "post", forward),
      status: 200,
    },
    {
      name: "forward without a municipality",
      method: "post",
      path: forward,
      url: `/v1/triage/${TRIAGE_ID}/forward`,
      body: {},
      status: 400,
    },
    {
      name: "forward to an unknown municipality",
      method: "post",
      path: forward,
      url: `/v1/triage/${TRIAGE_ID}/forward`,
      body: { municipality: "9999" },
      failWith: () =>
        new StafettError("ERR_UNKNOWN_MUNICIPALITY", "not a municipality code", {
          reason: "unknown",
          field: "municipality",
        }),
      status: 400,
    },
    {
      name: "forward one that is not in triage",
      method: "post",
      path: forward,
      url: `/v1/triage/${SENT_ID}/forward`,
      body: requestExample(HUB, "post", forward),
      failWith: () =>
        new StafettError("ERR_NOT_AUTHORISED", "no referral held for triage with this id", {
          reason: "not_in_triage",
          field: "referralId",
        }),
      status: 409,
    },
    {
      name: "forward while the bus is down",
      method: "post",
      path: forward,
      url: `/v1/triage/${TRIAGE_ID}/forward`,
      body: requestExample(HUB, "post", forward),
      failWith: busUnavailable,
      status: 503,
    },
    {
      name: "body over 64 KiB",
      method: "post",
      path: forward,
      url: `/v1/triage/${TRIAGE_ID}/forward`,
      body: JSON.stringify({ municipality: "1480", padding: "x".repeat(64 * 1024) }),
      headers: { "content-type": "application/json" },
      status: 413,
    },
    {
      name: "not a JSON media type",
      method: "post",
      path: forward,
      url: `/v1/triage/${TRIAGE_ID}/forward`,
      body: "<forward/>",
      headers: { "content-type": "application/xml" },
      status: 415,
    },
  ]);
});
