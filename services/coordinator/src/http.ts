/** The national coordinator's HTTP API: the escalations it received. */
import { fastify, type FastifyInstance } from "fastify";
import { httpService, type HttpServiceOptions } from "@stafett/shared";
import type { Coordinator } from "./coordinator.js";

export async function buildCoordinatorHttp(
  coordinator: Coordinator,
  options: HttpServiceOptions,
): Promise<FastifyInstance> {
  const app = fastify();
  await app.register(httpService, options);
  app.get("/v1/escalations", { config: { access: "own-org" } }, async () => [
    ...coordinator.escalations.values(),
  ]);
  return app;
}
