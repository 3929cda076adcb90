import type { FastifyInstance } from "fastify";
import { serveApi, Operations, type Logger } from "@stafett/shared";
import { Coordinator, type CoordinatorOptions } from "./coordinator.js";
import { buildCoordinatorHttp } from "./http.js";

export interface RunningCoordinator {
  coordinator: Coordinator;
  http: FastifyInstance;
  url: string;
  /** Readiness and metrics (`metricsUrl` when served). */
  operations: Operations;
  metricsUrl: string | undefined;
  stop(): Promise<void>;
}

/** Starts the coordinator and its HTTP API (the escalations it received). */
export async function start(options: CoordinatorOptions, log: Logger): Promise<RunningCoordinator> {
  const operations = Operations.forService(options, log, "coordinator");
  const coordinator = await Coordinator.start({ ...options, observer: operations.observer }, log);
  operations.watchParty(coordinator.party);
  // The escalations it received: each is a referral nobody accepted in time.
  operations.metrics.referralBook("escalation", ["escalated"], function* () {
    for (const e of coordinator.escalations.values())
      yield {
        state: "escalated",
        urgency:
          e.urgency === "URGENCY_IMMEDIATE" || e.urgency === "URGENCY_HIGH"
            ? e.urgency
            : "URGENCY_NORMAL",
        since: Date.parse(e.at),
        deadline: Date.parse(e.deadline),
        unaccepted: false,
      };
  });
  operations.metrics.escalationCount(() => coordinator.escalations.size);
  const served = await serveApi("coordinator", options, log, operations, coordinator, (o) =>
    buildCoordinatorHttp(coordinator, o),
  );
  return { coordinator, operations, ...served };
}
