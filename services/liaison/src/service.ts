import { fastify, type FastifyInstance } from "fastify";
import { createAuthenticator, errorReply, readinessReply, type Logger } from "@stafett/shared";
import { Liaison, type LiaisonOptions } from "./liaison.js";
import type { InboundReferral } from "./state.js";

export interface RunningLiaison {
  liaison: Liaison;
  http: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

const view = ({ opened: _opened, ...rest }: InboundReferral) => rest;

/** Starts the liaison and the contact point's HTTP API (inbound referrals waiting for a decision). */
export async function start(options: LiaisonOptions, log: Logger): Promise<RunningLiaison> {
  const liaison = await Liaison.start(options, log);
  const http = fastify({ logger: false, bodyLimit: 16 * 1024 });
  const authenticate = createAuthenticator(options.auth, options.identity.id);
  http.addHook("onRequest", async (req) => {
    if (req.routeOptions.url !== "/readyz") await authenticate(req.headers.authorization);
  });
  http.setErrorHandler((err, _req, reply) => {
    const r = errorReply(err, 16 * 1024);
    return reply.code(r.status).headers(r.headers).send(r.body);
  });

  http.get("/readyz", async (_req, reply) => {
    const r = readinessReply(liaison.readiness());
    return reply.code(r.status).headers(r.headers).send(r.body);
  });
  http.get("/v1/inbound", async () => [...liaison.state.inbound.values()].map(view));
  http.post<{ Params: { id: string } }>("/v1/inbound/:id/accept", async (req) =>
    view(await liaison.answer(req.params.id, "accepted")),
  );
  http.post<{ Params: { id: string }; Body: { reason?: string } }>(
    "/v1/inbound/:id/decline",
    async (req) => view(await liaison.answer(req.params.id, "declined", req.body?.reason)),
  );
  http.post<{ Params: { id: string }; Body: { municipality: string } }>(
    "/v1/inbound/:id/route",
    async (req) => view(await liaison.routeTo(req.params.id, req.body.municipality)),
  );
  const url = await http.listen({ host: options.http.host, port: options.http.port });
  log.info({ component: "http", url }, "liaison ready");
  return {
    liaison,
    http,
    url,
    async stop() {
      await http.close();
      await liaison.stop();
    },
  };
}
