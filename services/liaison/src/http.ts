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
  // What left the country: each referral sent to a partner, the events that crossed for it, and
  // the partner's answer once it came back. No personal data.
  app.get("/v1/outbound", { config: OWN_ORG }, async () =>
    [...liaison.state.watched.values()]
      .filter((w) => w.direction === "out")
      .map(({ direction: _direction, ...w }) => ({
        ...w,
        crossed: liaison.state.out
          .filter((r) => r.k === "out" && r.referralId === w.referralId)
          .map((r) => ({ type: r.k === "out" ? r.type : "", at: r.at })),
      })),
  );
  app.get<{ Params: { id: string } }>(
    "/v1/inbound/:id",
    { config: OWN_ORG },
    async (req, reply) => {
      const item = liaison.state.inbound.get(req.params.id);
      if (item === undefined)
        return reply.code(404).send({ code: "ERR_NOT_FOUND", message: "no such referral" });
      // Erased (on request, or its retention ended): the metadata stays in GET /v1/inbound.
      if (item.erased === true)
        return reply.code(410).send({
          code: "ERR_GONE",
          reason: "erased",
          message: "this referral's personal part was erased",
        });
      // The contact point decides on what it can see; every read is recorded first.
      await req.audit("read", { referralId: item.referralId, eventId: item.openedId });
      return { ...view(item), personal: await liaison.personalOf(item) };
    },
  );
  // Erasure on request (GDPR art. 17): only a person of the contact point granted `eraser`;
  // recorded in the access audit before it is done.
  app.delete<{ Params: { id: string } }>(
    "/v1/inbound/:id/personal",
    { config: { access: { grant: "eraser" } } },
    async (req, reply) => {
      if (!liaison.state.inbound.has(req.params.id))
        return reply
          .code(404)
          .send({ code: "ERR_NOT_FOUND", reason: "unknown_referral", message: "no such referral" });
      await req.audit("erased", { referralId: req.params.id });
      const erasure = await liaison.erase(req.params.id);
      return { referralId: erasure.referralId, erasedAt: erasure.at, cause: erasure.cause };
    },
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
