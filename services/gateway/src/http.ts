/**
 * The gateway's HTTP API for the municipal case system (documented in schemas/api/openapi.yaml,
 * served at /openapi.yaml). Every /v1 request needs a bearer token for this municipality.
 */
import { readFileSync } from "node:fs";
import { fastify, type FastifyInstance, type FastifyReply } from "fastify";
import {
  createAuthenticator,
  errorReply,
  readinessReply,
  repoPath,
  SCHEMA_IDS,
  validate,
  type AuthConfig,
  type DestinationJson,
  type Logger,
  type PersonalJson,
} from "@stafett/shared";
import type { Gateway, ReferralRequest } from "./gateway.js";
import type { InboxItem, SentReferral } from "./state.js";

/** Largest accepted request body; a referral with its personal part is a few KiB. */
export const BODY_LIMIT = 256 * 1024;

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

export async function buildGatewayHttp(
  gateway: Gateway,
  auth: AuthConfig,
  org: string,
  log: Logger,
): Promise<FastifyInstance> {
  const app = fastify({ logger: false, bodyLimit: BODY_LIMIT });
  const authenticate = createAuthenticator(auth, org);
  let openapi: string | undefined;
  const httpLog = log.child({ component: "http" });

  // Decide on the matched route, never on the raw URL: the router decodes percent-escapes, so
  // "/%761/inbox" reaches "/v1/inbox". Everything but the public routes needs a token.
  const PUBLIC_ROUTES = new Set(["/healthz", "/readyz", "/openapi.yaml"]);
  app.addHook("onRequest", async (req) => {
    if (!PUBLIC_ROUTES.has(req.routeOptions.url ?? ""))
      await authenticate(req.headers.authorization);
  });
  app.setErrorHandler((err, req, reply) => {
    const r = errorReply(err, BODY_LIMIT);
    if (r.status === 500) httpLog.error({ url: req.routeOptions.url, err }, "request failed");
    return reply.code(r.status).headers(r.headers).send(r.body);
  });

  app.get("/healthz", async () => ({ ok: true }));
  app.get("/readyz", async (_req, reply) => {
    const r = readinessReply(gateway.readiness());
    return reply.code(r.status).headers(r.headers).send(r.body);
  });
  app.get("/openapi.yaml", async (_req, reply) => {
    openapi ??= readFileSync(repoPath("schemas/api/openapi.yaml"), "utf8");
    return reply.type("application/yaml").send(openapi);
  });

  app.post<{ Body: ReferralRequest; Headers: { "idempotency-key"?: string } }>(
    "/v1/referrals",
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
      const opened = await gateway.openReferral(req.body, key);
      return reply
        .code(opened.replayed ? 200 : 202)
        .header("Location", `/v1/referrals/${opened.referralId}`)
        .send(opened);
    },
  );
  app.get("/v1/referrals", async () => [...gateway.state.sent.values()].map(sentView));
  app.get<{ Params: { id: string } }>("/v1/referrals/:id", async (req, reply) => {
    const r = gateway.referral(req.params.id);
    return r === undefined ? notFound(reply) : sentView(r);
  });
  app.post<{
    Params: { id: string };
    Body: { urgency?: string; deadline?: string; personal?: PersonalJson };
  }>("/v1/referrals/:id/update", async (req) => {
    validate(SCHEMA_IDS.api("update-request"), req.body);
    const { personal, ...rest } = req.body;
    return gateway.follow(req.params.id, "updated", rest, personal);
  });
  app.post<{ Params: { id: string }; Body: { reason: string } }>(
    "/v1/referrals/:id/withdraw",
    async (req) => {
      validate(SCHEMA_IDS.api("withdraw-request"), req.body);
      return gateway.follow(req.params.id, "withdrawn", { reason: req.body.reason });
    },
  );
  app.post<{ Params: { id: string } }>("/v1/referrals/:id/close", async (req) =>
    gateway.follow(req.params.id, "closed", { outcome: "CLOSE_OUTCOME_OTHER" }),
  );

  app.get("/v1/inbox", async () => [...gateway.state.inbox.values()].map(inboxView));
  app.get<{ Params: { id: string } }>("/v1/inbox/:id", async (req, reply) => {
    const item = gateway.inboxItem(req.params.id);
    if (item === undefined) return notFound(reply);
    return { ...inboxView(item), personal: await gateway.personalOf(item) };
  });
  app.post<{ Params: { id: string } }>("/v1/inbox/:id/accept", async (req) =>
    inboxView(await gateway.answer(req.params.id, "accepted")),
  );
  app.post<{ Params: { id: string }; Body: { reason: string; suggested?: DestinationJson } }>(
    "/v1/inbox/:id/decline",
    async (req) => {
      validate(SCHEMA_IDS.api("decline-request"), req.body);
      return inboxView(await gateway.answer(req.params.id, "declined", req.body));
    },
  );
  return app;
}
