import type { FastifyInstance } from "fastify";
import { Operations, serveApi, type Logger } from "@stafett/shared";
import { Hub, type HubOptions } from "./hub.js";
import { buildHubHttp } from "./http.js";
import { awaitsResponsibility, type HubStatus } from "./state.js";

export interface RunningHub {
  hub: Hub;
  http: FastifyInstance;
  /** The bound HTTP address, e.g. http://127.0.0.1:8090. */
  url: string;
  /** Readiness and metrics (`metricsUrl` when served). */
  operations: Operations;
  metricsUrl: string | undefined;
  stop(): Promise<void>;
}

const HUB_STATES: readonly HubStatus[] = [
  "received",
  "forwarded",
  "triage",
  "rerouted",
  "accepted",
  "declined",
  "withdrawn",
  "closed",
];

/** The hub's book as metrics: every referral it holds, and the escalations it sent. */
function watchBooks(hub: Hub, ops: Operations): void {
  ops.metrics.referralBook("held", HUB_STATES, function* () {
    for (const r of hub.state.referrals.values())
      yield {
        state: r.status,
        urgency: r.urgency,
        since: Date.parse(r.history[0]?.at ?? r.deadline),
        deadline: Date.parse(r.deadline),
        unaccepted: awaitsResponsibility(r),
      };
  });
  ops.metrics.escalationCount(() => {
    let n = 0;
    for (const r of hub.state.referrals.values()) if (r.escalated) n += 1;
    return n;
  });
}

/** Starts the hub and its HTTP API; tests and the demo run it in-process. */
export async function start(options: HubOptions, log: Logger): Promise<RunningHub> {
  const operations = Operations.forService(options, log, "hub");
  const hub = await Hub.start({ ...options, observer: operations.observer }, log);
  operations.watchParty(hub.party);
  watchBooks(hub, operations);
  const served = await serveApi("hub", options, log, operations, hub, (o) => buildHubHttp(hub, o));
  return { hub, operations, ...served };
}
