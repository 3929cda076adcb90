import type { FastifyInstance } from "fastify";
import { Operations, serveApi, type Logger } from "@stafett/shared";
import { buildLiaisonHttp } from "./http.js";
import { Liaison, type LiaisonOptions } from "./liaison.js";

export interface RunningLiaison {
  liaison: Liaison;
  http: FastifyInstance;
  url: string;
  /** Readiness and metrics (`metricsUrl` when served). */
  operations: Operations;
  metricsUrl: string | undefined;
  stop(): Promise<void>;
}

/** Starts the liaison and the contact point's HTTP API (inbound referrals waiting for a decision). */
export async function start(options: LiaisonOptions, log: Logger): Promise<RunningLiaison> {
  const operations = Operations.forService(options, log, "liaison");
  const liaison = await Liaison.start({ ...options, observer: operations.observer }, log);
  operations.watchParty(liaison.party);
  // Partners' referrals: routed to a hub, or waiting for the contact point's decision.
  operations.metrics.referralBook(
    "inbound",
    ["routed", "pending", "accepted", "declined"],
    function* () {
      for (const r of liaison.state.inbound.values())
        yield {
          state: r.status,
          urgency: r.urgency,
          since: Date.parse(r.at),
          deadline: Date.parse(r.deadline),
          unaccepted: r.status === "pending",
        };
    },
  );
  const served = await serveApi("liaison", options, log, operations, liaison, (o) =>
    buildLiaisonHttp(liaison, o),
  );
  return { liaison, operations, ...served };
}
