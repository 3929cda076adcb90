/**
 * The gateway's HTTP API for the municipal case system (documented in schemas/api/openapi.yaml,
 * served at /openapi.yaml): its routes on the shared HTTP layer (httpService). Every /v1 route
 * needs a bearer token for this municipality.
 */
import { fastify, type FastifyInstance, type FastifyReply } from "fastify";
import {
  httpService,
  API_DOCUMENTS,
  requestBody,
  type DestinationJson,
  type HttpServiceOptions,
  type PersonalJson,
} from "@stafett/shared";
import type { Gateway, ReferralRequest } from "./gateway.js";
import type { InboxItem, SentReferral } from "./state.js";

/** The body limit of every service's API (one limit, in @stafett/shared's HTTP layer). */
export { BODY_LIMIT } from "@stafett/shared";

function sentView(r: SentReferral) {
  return {
    referralId: r.referralId,
    status: r.status,
    published: r.published,
    urgency: r.urgency,
    reason: r.reason,
    destination: r.destination,
    deadline: r.deadline,
    ...(r.holder === undefined ? {} : { holder: r.holder }),
    timeline: r.timeline,
  };
}

function inboxView(i: InboxItem) {
  return {
    referralId: i.referralId,
    status: i.status,
    from: i.origin,
    via: i.via,
    urgency: i.urgency,
    reason: i.reason,
    deadline: i.deadline,
    receivedAt: i.receivedAt,
    updated: i.updated !== undefined,
  };
}

function notFound(reply: FastifyReply) {
  return reply.code(404).send({ code: "ERR_NOT_FOUND", message: "no such referral" });
}

/** Its personal part was erased (on request, or its retention period ended). */
function gone(reply: FastifyReply) {
  return reply.code(410).send({
    code: "ERR_GONE",
    reason: "erased",
    message: "this referral's personal part was erased",
  });
}

const OWN_ORG = { access: "own-org" } as const;

export async function buildGatewayHttp(
  gateway: Gateway,
  options: HttpServiceOptions,
): Promise<FastifyInstance> {
  const app = fastify();
  await app.register(httpService, options);

  app.get("/openapi.yaml", { config: { access: "public" } }, async (_req, reply) => {
    return reply.type("application/yaml").send(API_DOCUMENTS["openapi.yaml"]);
  });

  app.post<{ Body: ReferralRequest; Headers: { "idempotency-key"?: string } }>(
    "/v1/referrals",
    { config: OWN_ORG, schema: { body: requestBody("referral-request") } },
    async (req, reply) => {
      const key = req.headers["idempotency-key"];
      if (key !== undefined && !/^[\x21-\x7e]{1,200}$/.test(key)) {
        return reply.code(400).send({
          code: "ERR_SCHEMA_INVALID",
          reason: "pattern",
          field: "Idempotency-Key",
          message: "Idempotency-Key must be 1 to 200 visible ASCII characters",
        });
      }
      // Recorded in the access audit once its id is drawn, before anything is sent.
      const opened = await gateway.openReferral(req.body, key, (referralId) =>
        req.audit("opened", { referralId }),
      );
      return reply
        .code(opened.replayed ? 200 : 202)
        .header("Location", `/v1/referrals/${opened.referralId}`)
        .send(opened);
    },
  );
  app.get("/v1/referrals", { config: OWN_ORG }, async () =>
    [...gateway.state.sent.values()].map(sentView),
  );
  app.get<{ Params: { id: string } }>(
    "/v1/referrals/:id",
    { config: OWN_ORG },
    async (req, reply) => {
      const r = gateway.referral(req.params.id);
      return r === undefined ? notFound(reply) : sentView(r);
    },
  );
  app.post<{
    Params: { id: string };
    Body: { urgency?: string; deadline?: string; personal?: PersonalJson };
  }>(
    "/v1/referrals/:id/update",
    { config: OWN_ORG, schema: { body: requestBody("update-request") } },
    async (req) => {
      const { personal, ...rest } = req.body;
      await req.audit("updated", { referralId: req.params.id });
      return gateway.follow(req.params.id, "updated", rest, personal);
    },
  );
  app.post<{ Params: { id: string }; Body: { reason: string } }>(
    "/v1/referrals/:id/withdraw",
    { config: OWN_ORG, schema: { body: requestBody("withdraw-request") } },
    async (req) => {
      await req.audit("withdrawn", { referralId: req.params.id });
      return gateway.follow(req.params.id, "withdrawn", { reason: req.body.reason });
    },
  );
  app.post<{ Params: { id: string } }>(
    "/v1/referrals/:id/close",
    { config: OWN_ORG, schema: { body: requestBody("empty-request") } },
    async (req) => {
      await req.audit("closed", { referralId: req.params.id });
      return gateway.follow(req.params.id, "closed", { outcome: "CLOSE_OUTCOME_OTHER" });
    },
  );

  // Erasure on request (GDPR art. 17): only a person of this municipality granted `eraser`;
  // recorded in the access audit before it is done.
  app.delete<{ Params: { id: string } }>(
    "/v1/referrals/:id/personal",
    { config: { access: { grant: "eraser" } } },
    async (req, reply) => {
      if (!gateway.state.holds(req.params.id))
        return reply
          .code(404)
          .send({ code: "ERR_NOT_FOUND", reason: "unknown_referral", message: "no such referral" });
      await req.audit("erased", { referralId: req.params.id });
      const erasure = await gateway.erase(req.params.id);
      return { referralId: erasure.referralId, erasedAt: erasure.at, cause: erasure.cause };
    },
  );

  app.get("/v1/inbox", { config: OWN_ORG }, async () =>
    [...gateway.state.inbox.values()].map(inboxView),
  );
  app.get<{ Params: { id: string } }>("/v1/inbox/:id", { config: OWN_ORG }, async (req, reply) => {
    const item = gateway.inboxItem(req.params.id);
    if (item === undefined) return notFound(reply);
    if (item.erased === true) return gone(reply);
    // Every read of a child's data is recorded before the data is opened (docs/contract.md,
    // principle 10); no record, no data (503).
    await req.audit("read", { referralId: item.referralId, eventId: item.forwardedId });
    return { ...inboxView(item), personal: await gateway.personalOf(item) };
  });
  app.post<{ Params: { id: string } }>(
    "/v1/inbox/:id/accept",
    { config: OWN_ORG, schema: { body: requestBody("empty-request") } },
    async (req) => {
      await req.audit("accepted", { referralId: req.params.id });
      return inboxView(await gateway.answer(req.params.id, "accepted"));
    },
  );
  app.post<{ Params: { id: string }; Body: { reason: string; suggested?: DestinationJson } }>(
    "/v1/inbox/:id/decline",
    { config: OWN_ORG, schema: { body: requestBody("decline-request") } },
    async (req) => {
      await req.audit("declined", { referralId: req.params.id });
      return inboxView(await gateway.answer(req.params.id, "declined", req.body));
    },
  );
  return app;
}
