/** The liaison's HTTP API for the national contact point: partners' referrals waiting for a decision. */
import { fastify, type FastifyInstance } from "fastify";
import { httpService, requestBody, type HttpServiceOptions } from "@stafett/shared";
import type { Liaison } from "./liaison.js";
import type { InboundReferral } from "./state.js";

const view = ({ opened: _opened, ...rest }: InboundReferral) => rest;

const OWN_ORG = { access: "own-org" } as const;

export async function buildLiaisonHttp(
  liaison: Liaison,
  options: HttpServiceOptions,
): Promise<FastifyInstance> {
  const app = fastify();
  await app.register(httpService, options);
  app.get("/v1/inbound", { config: OWN_ORG }, async () =>
    [...liaison.state.inbound.values()].map(view),
  );
  app.post<{ Params: { id: string } }>(
    "/v1/inbound/:id/accept",
    { config: OWN_ORG, schema: { body: requestBody("empty-request") } },
    async (req) => {
      await req.audit("accepted", { referralId: req.params.id });
      return view(await liaison.answer(req.params.id, "accepted"));
    },
  );
  app.post<{ Params: { id: string }; Body: { reason?: string } | null }>(
    "/v1/inbound/:id/decline",
    { config: OWN_ORG, schema: { body: requestBody("inbound-decline-request") } },
    async (req) => {
      await req.audit("declined", { referralId: req.params.id });
      return view(await liaison.answer(req.params.id, "declined", req.body?.reason));
    },
  );
  app.post<{ Params: { id: string }; Body: { municipality: string } }>(
    "/v1/inbound/:id/route",
    { config: OWN_ORG, schema: { body: requestBody("forward-request") } },
    async (req) => {
      await req.audit("routed", { referralId: req.params.id });
      return view(await liaison.routeTo(req.params.id, req.body.municipality));
    },
  );
  return app;
}
