import { fastify, type FastifyInstance, type LightMyRequestResponse } from "fastify";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { StafettError } from "./errors.js";
import { createDevTokenIssuer, type DevTokenIssuer } from "./http-auth.js";
import { BODY_LIMIT, httpService, requestBody, type HttpServiceOptions } from "./http-service.js";
import { samplePersonal } from "@stafett/devkit/fixtures";

const ORG = "se:hub:vast";
/** A synthetic value that stands for anything a request carries: it must never reach a log line. */
const MARKER = "Zq7MarkerValue";

let tokens: DevTokenIssuer;
let app: FastifyInstance;
/** Every line the service's logger wrote, parsed. */
const lines: Record<string, unknown>[] = [];
/** The same lines as written. */
let written = "";

function logger(): HttpServiceOptions["log"] {
  // A bare pino, without the service logger's redaction and error serializers: the HTTP layer
  // itself must hand it nothing from the request.
  return pino(
    { level: "debug" },
    {
      write: (line: string) => {
        written += line;
        lines.push(JSON.parse(line) as Record<string, unknown>);
      },
    },
  );
}

async function build(): Promise<FastifyInstance> {
  const a = fastify();
  await a.register(httpService, { auth: tokens.config, org: ORG, log: logger() });
  a.get("/v1/own", { config: { access: "own-org" } }, async (req) => ({
    principal: req.principal,
  }));
  a.get("/v1/hubs", { config: { access: { roles: ["hub"] } } }, async (req) => ({
    principal: req.principal,
  }));
  a.post<{ Params: { id: string } }>(
    "/v1/boom/:id",
    { config: { access: "own-org" }, schema: { body: requestBody("referral-request") } },
    async (req) => {
      const body = req.body as { personal: { child: { givenNames: string } } };
      throw new TypeError(`cannot handle ${body.personal.child.givenNames} (${req.params.id})`, {
        cause: new Error(MARKER),
      });
    },
  );
  a.post(
    "/v1/coded",
    { config: { access: "own-org" }, schema: { body: requestBody("empty-request") } },
    async () => {
      throw new StafettError("ERR_NOT_RECIPIENT", "not a recipient", { reason: "no_key" });
    },
  );
  a.post(
    "/v1/forward",
    { config: { access: "own-org" }, schema: { body: requestBody("forward-request") } },
    async (req) => ({ got: req.body }),
  );
  await a.ready();
  return a;
}

beforeAll(async () => {
  tokens = await createDevTokenIssuer();
  app = await build();
});

afterAll(async () => {
  await app.close();
});

beforeEach(() => {
  lines.length = 0;
  written = "";
});

async function bearer(org = ORG): Promise<Record<string, string>> {
  return { authorization: `Bearer ${await tokens.mint(org)}` };
}

function coded(res: LightMyRequestResponse): { code?: unknown; message?: unknown } {
  return res.json<{ code?: unknown; message?: unknown }>();
}

describe("httpService: who may call a route", () => {
  it("answers /healthz without a token", async () => {
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it("refuses a missing token with 401 ERR_UNAUTHENTICATED", async () => {
    const res = await app.inject({ method: "GET", url: "/v1/own" });
    expect(res.statusCode).toBe(401);
    expect(coded(res)).toEqual({
      code: "ERR_UNAUTHENTICATED",
      message: "a bearer token is required",
    });
  });

  it("refuses a token from another issuer's key with 401 ERR_UNAUTHENTICATED", async () => {
    const stranger = await createDevTokenIssuer();
    const res = await app.inject({
      method: "GET",
      url: "/v1/own",
      headers: { authorization: `Bearer ${await stranger.mint(ORG)}` },
    });
    expect(res.statusCode).toBe(401);
    expect(coded(res).code).toBe("ERR_UNAUTHENTICATED");
  });

  it("refuses another organisation's valid token with 403 ERR_FORBIDDEN", async () => {
    const res = await app.inject({
      method: "GET",
      url: "/v1/own",
      headers: await bearer("se:municipality:1480"),
    });
    expect(res.statusCode).toBe(403);
    expect(coded(res)).toEqual({
      code: "ERR_FORBIDDEN",
      message: "the token is not for this organisation",
    });
  });

  it("admits its own organisation and tells the handler who called", async () => {
    const res = await app.inject({ method: "GET", url: "/v1/own", headers: await bearer() });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ principal: { org: ORG, subject: "case-system", roles: [] } });
  });

  it("decides on the matched route, not the raw URL (percent-escapes)", async () => {
    expect((await app.inject({ method: "GET", url: "/%761/own" })).statusCode).toBe(401);
    expect((await app.inject({ method: "GET", url: "/%68ealthz" })).statusCode).toBe(200);
  });

  it("admits by role: any organisation of the roles in the service's country, 403 otherwise", async () => {
    const status = async (org: string) =>
      (await app.inject({ method: "GET", url: "/v1/hubs", headers: await bearer(org) })).statusCode;
    expect(await status("se:hub:stockholm")).toBe(200);
    expect(await status(ORG)).toBe(200);
    expect(await status("se:municipality:1480")).toBe(403);
    expect(await status("no:hub:oslo")).toBe(403);
    expect(await status("not an organisation id")).toBe(403);
    const res = await app.inject({
      method: "GET",
      url: "/v1/hubs",
      headers: await bearer("se:liaison"),
    });
    expect(coded(res).code).toBe("ERR_FORBIDDEN");
  });

  it("answers an unknown route 404 ERR_NOT_FOUND", async () => {
    const res = await app.inject({ method: "GET", url: `/v1/${MARKER}`, headers: await bearer() });
    expect(res.statusCode).toBe(404);
    expect(coded(res)).toEqual({ code: "ERR_NOT_FOUND", message: "no such route" });
  });
});

describe("httpService: request bodies", () => {
  it("refuses a body over BODY_LIMIT with 413 ERR_OVERSIZE", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/v1/forward",
      headers: { ...(await bearer()), "content-type": "application/json" },
      payload: JSON.stringify({ municipality: "1480", padding: "x".repeat(BODY_LIMIT) }),
    });
    expect(res.statusCode).toBe(413);
    expect(coded(res)).toEqual({
      code: "ERR_OVERSIZE",
      message: `request body is larger than ${BODY_LIMIT} bytes`,
    });
  });

  it("takes a body just under BODY_LIMIT to validation", async () => {
    const body = JSON.stringify({ municipality: "1480", padding: "" });
    const padded = body.replace('""', `"${"x".repeat(BODY_LIMIT - body.length)}"`);
    expect(padded.length).toBe(BODY_LIMIT);
    const res = await app.inject({
      method: "POST",
      url: "/v1/forward",
      headers: { ...(await bearer()), "content-type": "application/json" },
      payload: padded,
    });
    expect(res.statusCode).toBe(400);
    expect(coded(res).code).toBe("ERR_SCHEMA_INVALID");
  });

  it("validates against the route's schema: a valid body reaches the handler", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/v1/forward",
      headers: await bearer(),
      payload: { municipality: "1480" },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ got: { municipality: "1480" } });
  });

  it("refuses a missing body with 400 ERR_SCHEMA_INVALID", async () => {
    const res = await app.inject({ method: "POST", url: "/v1/forward", headers: await bearer() });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "ERR_SCHEMA_INVALID", reason: "type", field: "/" });
  });

  it("refuses a body that breaks the schema with every issue and without its values", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/v1/forward",
      headers: await bearer(),
      payload: { municipality: MARKER, extra: MARKER },
    });
    expect(res.statusCode).toBe(400);
    expect(res.body).not.toContain(MARKER);
    expect(res.json<{ issues: unknown[] }>().issues).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ field: "/municipality", reason: "pattern" }),
        expect.objectContaining({ field: "/", reason: "additionalProperties" }),
      ]),
    );
  });

  it("refuses malformed JSON with 400 ERR_BAD_REQUEST", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/v1/forward",
      headers: { ...(await bearer()), "content-type": "application/json" },
      payload: `{"municipality": "${MARKER}"`,
    });
    expect(res.statusCode).toBe(400);
    expect(coded(res).code).toBe("ERR_BAD_REQUEST");
    expect(res.body).not.toContain(MARKER);
  });
});

describe("httpService: errors and logs", () => {
  it("answers a thrown non-Stafett error 500 ERR_INTERNAL and logs it with a code, without a value", async () => {
    const personal = samplePersonal();
    personal.child = { ...(personal.child as object), givenNames: MARKER };
    const res = await app.inject({
      method: "POST",
      url: `/v1/boom/${MARKER}?q=${MARKER}`,
      headers: { ...(await bearer()), "x-case": MARKER },
      payload: {
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "se", municipality: "1480" },
        personal,
      },
    });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ code: "ERR_INTERNAL", message: "internal error" });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 50,
        msg: "request failed",
        method: "POST",
        route: "/v1/boom/:id",
        status: 500,
        code: "ERR_INTERNAL",
        error: "TypeError",
      }),
    );
    expect(written).not.toContain(MARKER);
  });

  it("logs a coded 500 with its code and reason", async () => {
    const res = await app.inject({ method: "POST", url: "/v1/coded", headers: await bearer() });
    expect(res.statusCode).toBe(500);
    expect(coded(res).code).toBe("ERR_NOT_RECIPIENT");
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: "request failed",
        code: "ERR_NOT_RECIPIENT",
        reason: "no_key",
      }),
    );
  });

  it("logs every request with its method, route pattern, status and duration only", async () => {
    await app.inject({ method: "GET", url: `/v1/own?q=${MARKER}`, headers: await bearer() });
    await app.inject({ method: "GET", url: `/v1/${MARKER}` });
    await app.inject({ method: "POST", url: "/v1/forward", payload: { municipality: MARKER } });
    const requests = lines.filter((l) => l.msg === "request");
    expect(requests).toHaveLength(3);
    for (const line of requests) {
      const { level, time, pid, hostname, msg, component, ...fields } = line;
      expect({ level, msg, component }).toEqual({ level: 30, msg: "request", component: "http" });
      expect([typeof time, typeof pid, typeof hostname]).toEqual(["number", "number", "string"]);
      expect(Object.keys(fields).sort()).toEqual(["duration_ms", "method", "route", "status"]);
      expect(typeof fields.duration_ms).toBe("number");
    }
    expect(requests.map((l) => [l.method, l.route, l.status])).toEqual([
      ["GET", "/v1/own", 200],
      ["GET", null, 404],
      ["POST", "/v1/forward", 401],
    ]);
    expect(written).not.toContain(MARKER);
  });
});

describe("httpService: routes must say who may call them", () => {
  const options = (): HttpServiceOptions => ({
    auth: tokens.config,
    org: ORG,
    log: pino({ level: "silent" }),
  });

  it("refuses to register a route without config.access", async () => {
    const a = fastify();
    await a.register(httpService, options());
    expect(() => a.get("/v1/open", async () => ({}))).toThrow(/declares no config.access/);
    await a.close();
  });

  it("refuses to register a route that takes a body without schema.body", async () => {
    const a = fastify();
    await a.register(httpService, options());
    expect(() => a.post("/v1/x", { config: { access: "own-org" } }, async () => ({}))).toThrow(
      /declares no schema.body/,
    );
    await a.close();
  });

  it("refuses a body schema that is not a schema of schemas/", async () => {
    const a = fastify();
    await a.register(httpService, options());
    a.post(
      "/v1/x",
      { config: { access: "own-org" }, schema: { body: { type: "object" } } },
      async () => ({}),
    );
    await expect(a.ready()).rejects.toThrow(/not \{ \$ref: <schema id> \}/);
    await a.close();
  });

  it("refuses a route of its own body limit", async () => {
    const a = fastify();
    await a.register(httpService, options());
    expect(() =>
      a.post(
        "/v1/x",
        {
          config: { access: "own-org" },
          schema: { body: requestBody("empty-request") },
          bodyLimit: 1024,
        },
        async () => ({}),
      ),
    ).toThrow(/body limit/);
    await a.close();
  });

  it("does not serve a route registered before it that declares no access (500)", async () => {
    const a = fastify();
    // Registered before the plugin, so its onRoute check never saw it; its onRequest hook does.
    a.get("/v1/early", async () => ({ served: true }));
    await a.register(httpService, options());
    const res = await a.inject({ method: "GET", url: "/v1/early" });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain("served");
    await a.close();
  });
});
