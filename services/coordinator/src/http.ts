/**
 * The national coordinator's HTTP API: the escalations it received, its officers' handling of
 * them, and the national overview of open referrals by region (counts only).
 */
import { fastify, type FastifyInstance, type FastifyRequest } from "fastify";
import { httpService, requestBody, type HttpServiceOptions } from "@stafett/shared";
import type { Coordinator, Handling, Officer } from "./coordinator.js";

const OWN_ORG = { access: "own-org" } as const;

function officerOf(req: FastifyRequest): Officer {
  const p = req.principal;
  if (p === null) throw new Error("an own-org route without a principal");
  return { subject: p.subject, ...(p.name === undefined ? {} : { name: p.name }) };
}

export async function buildCoordinatorHttp(
  coordinator: Coordinator,
  options: HttpServiceOptions,
): Promise<FastifyInstance> {
  const app = fastify();
  await app.register(httpService, options);
  app.get("/v1/escalations", { config: OWN_ORG }, async () => [
    ...coordinator.escalations.values(),
  ]);
  // The regions' latest reports: no personal data, but the coordinator's own still.
  app.get("/v1/overview", { config: OWN_ORG }, async () => coordinator.overview());
  const step = (req: FastifyRequest<{ Params: { id: string } }>, handling: Handling) =>
    coordinator.handle(req.params.id, handling, officerOf(req));
  app.post<{ Params: { id: string } }>(
    "/v1/escalations/:id/acknowledge",
    { config: OWN_ORG, schema: { body: requestBody("empty-request") } },
    async (req) => step(req, { step: "acknowledged" }),
  );
  app.post<{ Params: { id: string }; Body: { officer: string } }>(
    "/v1/escalations/:id/assign",
    { config: OWN_ORG, schema: { body: requestBody("escalation-assign-request") } },
    async (req) => step(req, { step: "assigned", officer: req.body.officer }),
  );
  app.post<{ Params: { id: string }; Body: { note: string } }>(
    "/v1/escalations/:id/resolve",
    { config: OWN_ORG, schema: { body: requestBody("escalation-resolve-request") } },
    async (req) => step(req, { step: "resolved", note: req.body.note }),
  );
  return app;
}
