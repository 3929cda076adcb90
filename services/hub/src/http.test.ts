import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevTokenIssuer, createLogger, type DevTokenIssuer } from "@stafett/shared";
import type { Hub } from "./hub.js";
import { buildHubHttp } from "./http.js";
import { HubState } from "./state.js";

const ORG = "se:hub:vast";

let tokens: DevTokenIssuer;
let app: FastifyInstance;

beforeAll(async () => {
  tokens = await createDevTokenIssuer();
  const standIn: Pick<Hub, "state"> = { state: new HubState() };
  app = await buildHubHttp(standIn as Hub, {
    auth: tokens.config,
    org: ORG,
    log: createLogger({ service: "hub-http-test", level: "silent" }),
  });
  await app.ready();
});

afterAll(async () => {
  await app.close();
});

describe("the hub's HTTP API on the shared layer", () => {
  it("answers /healthz without a token", async () => {
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it("refuses a triage forward without a body with 400 ERR_SCHEMA_INVALID", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/v1/triage/4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10/forward",
      headers: { authorization: `Bearer ${await tokens.mint(ORG)}` },
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "ERR_SCHEMA_INVALID", field: "/" });
  });
});
