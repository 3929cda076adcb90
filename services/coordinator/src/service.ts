import { fastify, type FastifyInstance } from "fastify";
import { createAuthenticator, errorReply, readinessReply, type Logger } from "@stafett/shared";
import { Coordinator, type CoordinatorOptions } from "./coordinator.js";

export interface RunningCoordinator {
  coordinator: Coordinator;
  http: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

export async function start(options: CoordinatorOptions, log: Logger): Promise<RunningCoordinator> {
  const coordinator = await Coordinator.start(options, log);
  const http = fastify({ logger: false });
  const authenticate = createAuthenticator(options.auth, options.identity.id);
  http.addHook("onRequest", async (req) => {
    if (req.routeOptions.url !== "/readyz") await authenticate(req.headers.authorization);
  });
  http.setErrorHandler((err, _req, reply) => {
    const r = errorReply(err, 1024 * 1024);
    return reply.code(r.status).headers(r.headers).send(r.body);
  });
  http.get("/readyz", async (_req, reply) => {
    const r = readinessReply(coordinator.readiness());
    return reply.code(r.status).headers(r.headers).send(r.body);
  });
  http.get("/v1/escalations", async () => [...coordinator.escalations.values()]);
  const url = await http.listen({ host: options.http.host, port: options.http.port });
  log.info({ component: "http", url }, "coordinator ready");
  return {
    coordinator,
    http,
    url,
    async stop() {
      await http.close();
      await coordinator.stop();
    },
  };
}
