import { fastify, type FastifyInstance, type LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevTokenIssuer, type DevTokenIssuer } from "../http-auth.js";
import { httpService } from "../http-service.js";
import { createLogger } from "../logger.js";
import { registerDesk } from "./plugin.js";

/**
 * Attack review (2026-12-03): the contact point's Desk page of a partner's referral whose
 * personal part was erased (DELETE /v1/inbound/:id/personal). The API answers 410 ERR_GONE and
 * still lets the contact point accept or decline it ("an answer needs none"); the Desk turns the
 * 410 into a 502 refusal page without the answer forms.
 */
const ORG = "se:liaison";
const ID = "4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10";
const log = createLogger({ service: "desk-erased-test", level: "silent" });

let tokens: DevTokenIssuer;
let app: FastifyInstance;

const row = {
  referralId: ID,
  openedId: "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3",
  origin: "no:municipality:0301",
  urgency: "URGENCY_HIGH",
  reason: "REASON_CATEGORY_MISSING",
  deadline: "2026-11-27T21:15:00Z",
  status: "pending",
  at: "2026-11-27T09:15:00.000Z",
  erased: true,
};

beforeAll(async () => {
  tokens = await createDevTokenIssuer();
  app = fastify();
  await app.register(httpService, { auth: tokens.config, org: ORG, log });
  // Stand-ins for the liaison's routes, answering as services/liaison/src/http.ts does for an
  // erased, still pending partner referral.
  app.get("/v1/inbound", { config: { access: "own-org" } }, async () => [row]);
  app.get("/v1/outbound", { config: { access: "own-org" } }, async () => []);
  app.get("/v1/inbound/:id", { config: { access: "own-org" } }, async (_req, reply) =>
    reply.code(410).send({
      code: "ERR_GONE",
      reason: "erased",
      message: "this referral's personal part was erased",
    }),
  );
  await registerDesk(app, ORG, tokens.config, { devSignIn: tokens });
  await app.ready();
});

afterAll(async () => {
  await app.close();
});

function cookies(res: LightMyRequestResponse): string {
  return res.cookies.map((c) => `${c.name}=${c.value}`).join("; ");
}

function csrfOf(res: LightMyRequestResponse): string {
  return /name="_csrf"\s+value="([^"]+)"/.exec(res.body)?.[1] ?? "";
}

async function signIn(): Promise<string> {
  const page = await app.inject({ method: "GET", url: "/desk/signin" });
  const res = await app.inject({
    method: "POST",
    url: "/desk/signin/dev",
    headers: { cookie: cookies(page), "content-type": "application/x-www-form-urlencoded" },
    payload: `name=Greta+Demo&_csrf=${encodeURIComponent(csrfOf(page))}`,
  });
  expect(res.statusCode).toBe(303);
  return cookies(res);
}

describe("the contact point's Desk page of an erased partner referral", () => {
  it("answers 410 (gone), not 502 as if the liaison's API had failed", async () => {
    const cookie = await signIn();
    const page = await app.inject({
      method: "GET",
      url: `/desk/inbound/${ID}`,
      headers: { cookie },
    });
    expect(page.body).toContain("ERR_GONE");
    expect(page.statusCode).toBe(410);
  });
});
