import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { samplePersonal } from "@stafett/devkit/fixtures";
import { createDevTokenIssuer, createLogger, type DevTokenIssuer } from "@stafett/shared";
import type { Gateway } from "./gateway.js";
import { buildGatewayHttp } from "./http.js";
import { GatewayState } from "./state.js";

const ORG = "se:municipality:1280";
/** A synthetic child's name: it must never reach the log. */
const NAME = "Qx9Markersdotter";

let tokens: DevTokenIssuer;
let app: FastifyInstance;
let written = "";

beforeAll(async () => {
  tokens = await createDevTokenIssuer();
  const standIn: Pick<Gateway, "state" | "openReferral"> = {
    state: new GatewayState(),
    openReferral: async (request) => {
      throw new TypeError(`cannot open ${JSON.stringify(request.personal)}`);
    },
  };
  const log = createLogger(
    { service: "gateway-http-test", level: "debug" },
    {
      write: (line: string) => {
        written += line;
      },
    },
  );
  app = await buildGatewayHttp(standIn as Gateway, { auth: tokens.config, org: ORG, log });
  await app.ready();
});

afterAll(async () => {
  await app.close();
});

describe("the gateway's HTTP API on the shared layer", () => {
  it("answers /healthz without a token", async () => {
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it("answers a failed referral 500 ERR_INTERNAL and logs neither the child nor the token", async () => {
    const personal = samplePersonal();
    personal.child = { ...(personal.child as object), familyName: NAME };
    const token = await tokens.mint(ORG);
    written = "";
    const res = await app.inject({
      method: "POST",
      url: "/v1/referrals",
      headers: { authorization: `Bearer ${token}`, "idempotency-key": `case-${NAME}` },
      payload: {
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "se", municipality: "1480" },
        personal,
      },
    });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ code: "ERR_INTERNAL", message: "internal error" });
    expect(written).toContain('"code":"ERR_INTERNAL"');
    expect(written).toContain('"route":"/v1/referrals"');
    expect(written).not.toContain(NAME);
    expect(written).not.toContain(token);
  });
});
