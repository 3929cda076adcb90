import type { FastifyInstance } from "fastify";
import { Operations, serveApi, type Logger } from "@stafett/shared";
import { Gateway, type GatewayOptions } from "./gateway.js";
import { buildGatewayHttp } from "./http.js";
import type { ReferralStatus, InboxStatus } from "./state.js";

export interface RunningGateway {
  gateway: Gateway;
  http: FastifyInstance;
  url: string;
  /** Readiness and metrics (`metricsUrl` when served). */
  operations: Operations;
  metricsUrl: string | undefined;
  stop(): Promise<void>;
}

const SENT_STATES: readonly ReferralStatus[] = [
  "opened",
  "received",
  "forwarded",
  "accepted",
  "declined",
  "escalated",
  "rejected",
  "withdrawn",
  "closed",
];
/** A sent referral in one of these has been taken over (or ended) by somebody. */
const SENT_SETTLED: ReadonlySet<ReferralStatus> = new Set(["accepted", "withdrawn", "closed"]);
const INBOX_STATES: readonly InboxStatus[] = [
  "pending",
  "accepted",
  "declined",
  "withdrawn",
  "closed",
];

/** The gateway's books as metrics: what it sent (until someone accepts) and its inbox. */
function watchBooks(gateway: Gateway, ops: Operations): void {
  ops.metrics.referralBook("sent", SENT_STATES, function* () {
    for (const r of gateway.state.sent.values())
      yield {
        state: r.status,
        urgency: r.urgency,
        since: Date.parse(r.timeline[0]?.at ?? r.deadline),
        deadline: Date.parse(r.deadline),
        unaccepted: !SENT_SETTLED.has(r.status),
      };
  });
  ops.metrics.referralBook("inbox", INBOX_STATES, function* () {
    for (const r of gateway.state.inbox.values())
      yield {
        state: r.status,
        urgency: r.urgency,
        since: Date.parse(r.receivedAt),
        deadline: Date.parse(r.deadline),
        unaccepted: r.status === "pending",
      };
  });
}

/** Starts the gateway and its HTTP API; tests and the demo run it in-process. */
export async function start(options: GatewayOptions, log: Logger): Promise<RunningGateway> {
  const operations = Operations.forService(options, log, "gateway");
  const gateway = await Gateway.start({ ...options, observer: operations.observer }, log);
  operations.watchParty(gateway.party);
  watchBooks(gateway, operations);
  const served = await serveApi("gateway", options, log, operations, gateway, (o) =>
    buildGatewayHttp(gateway, o),
  );
  return { gateway, operations, ...served };
}
