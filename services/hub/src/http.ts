/** The hub's HTTP API for the regional coordinator's officers: referrals, triage. */
import { fastify, type FastifyInstance } from "fastify";
import { createAuthenticator, errorReply, readinessReply, type AuthConfig } from "@stafett/shared";
import type { Hub } from "./hub.js";
import type { HubReferral } from "./state.js";

function summary(r: HubReferral) {
  return {
    referralId: r.referralId,
    origin: r.origin,
    status: r.status,
    urgency: r.urgency,
    deadline: r.deadline,
    destination: r.destination,
    escalated: r.escalated,
    ...(r.holder === undefined ? {} : { holder: r.holder }),
  };
}

export async function buildHubHttp(
  hub: Hub,
  auth: AuthConfig,
  org: string,
): Promise<FastifyInstance> {
  const app = fastify({ logger: false, bodyLimit: 64 * 1024 });
  const authenticate = createAuthenticator(auth, org);
  // Decided on the matched route (the router decodes percent-escapes): only /readyz is public.
  app.addHook("onRequest", async (req) => {
    if (req.routeOptions.url !== "/readyz") await authenticate(req.headers.authorization);
  });
  app.setErrorHandler((err, _req, reply) => {
    const r = errorReply(err, 64 * 1024);
    return reply.code(r.status).headers(r.headers).send(r.body);
  });
  app.get("/readyz", async (_req, reply) => {
    const r = readinessReply(hub.readiness());
    return reply.code(r.status).headers(r.headers).send(r.body);
  });
  app.get("/v1/referrals", async () => [...hub.state.referrals.values()].map(summary));
  app.get<{ Params: { id: string } }>("/v1/referrals/:id", async (req, reply) => {
    const r = hub.state.referrals.get(req.params.id);
    if (r === undefined)
      return reply.code(404).send({ code: "ERR_NOT_FOUND", message: "no such referral" });
    return { ...summary(r), history: r.history };
  });
  app.get("/v1/triage", async () => hub.state.triage().map(summary));
  app.post<{ Params: { id: string }; Body: { municipality: string } }>(
    "/v1/triage/:id/forward",
    {
      schema: {
        body: {
          type: "object",
          required: ["municipality"],
          additionalProperties: false,
          properties: { municipality: { type: "string", pattern: "^[0-9]{4}$" } },
        },
      },
    },
    async (req) => summary(await hub.triageForward(req.params.id, req.body.municipality)),
  );
  return app;
}
