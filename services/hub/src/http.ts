/** The hub's HTTP API for the regional coordinator's officers: referrals, triage. */
import { fastify, type FastifyInstance } from "fastify";
import { httpService, requestBody, type HttpServiceOptions } from "@stafett/shared";
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

const OWN_ORG = { access: "own-org" } as const;

export async function buildHubHttp(
  hub: Hub,
  options: HttpServiceOptions,
): Promise<FastifyInstance> {
  const app = fastify();
  await app.register(httpService, options);
  app.get("/v1/referrals", { config: OWN_ORG }, async () =>
    [...hub.state.referrals.values()].map(summary),
  );
  app.get<{ Params: { id: string } }>(
    "/v1/referrals/:id",
    { config: OWN_ORG },
    async (req, reply) => {
      const r = hub.state.referrals.get(req.params.id);
      if (r === undefined)
        return reply.code(404).send({ code: "ERR_NOT_FOUND", message: "no such referral" });
      return { ...summary(r), history: r.history };
    },
  );
  app.get<{ Params: { id: string } }>(
    "/v1/referrals/:id/personal",
    { config: OWN_ORG },
    async (req, reply) => {
      const r = hub.state.referrals.get(req.params.id);
      if (r === undefined)
        return reply.code(404).send({ code: "ERR_NOT_FOUND", message: "no such referral" });
      // Every read of a child's data is recorded before the data is opened (docs/contract.md,
      // principle 10); no record, no data (503).
      await req.audit("read", { referralId: r.referralId });
      return { referralId: r.referralId, personal: await hub.personalOf(r.referralId) };
    },
  );
  // Erasure on request (GDPR art. 17): only a person of this hub granted `eraser`; recorded in
  // the access audit before it is done.
  app.delete<{ Params: { id: string } }>(
    "/v1/referrals/:id/personal",
    { config: { access: { grant: "eraser" } } },
    async (req, reply) => {
      if (!hub.state.holds(req.params.id))
        return reply
          .code(404)
          .send({ code: "ERR_NOT_FOUND", reason: "unknown_referral", message: "no such referral" });
      await req.audit("erased", { referralId: req.params.id });
      const erasure = await hub.erase(req.params.id);
      return { referralId: erasure.referralId, erasedAt: erasure.at, cause: erasure.cause };
    },
  );
  app.get("/v1/triage", { config: OWN_ORG }, async () => hub.state.triage().map(summary));
  app.post<{ Params: { id: string }; Body: { municipality: string } }>(
    "/v1/triage/:id/forward",
    { config: OWN_ORG, schema: { body: requestBody("forward-request") } },
    async (req) => {
      await req.audit("triaged", { referralId: req.params.id });
      return summary(await hub.triageForward(req.params.id, req.body.municipality));
    },
  );
  app.post<{ Params: { id: string }; Body: { region: string } }>(
    "/v1/triage/:id/reroute",
    { config: OWN_ORG, schema: { body: requestBody("reroute-request") } },
    async (req) => {
      await req.audit("triaged", { referralId: req.params.id });
      return summary(await hub.triageReroute(req.params.id, req.body.region));
    },
  );
  return app;
}
