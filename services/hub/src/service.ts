import type { FastifyInstance } from "fastify";
import { AuditLog, type Logger } from "@stafett/shared";
import { Hub, type HubOptions } from "./hub.js";
import { buildHubHttp } from "./http.js";

export interface RunningHub {
  hub: Hub;
  http: FastifyInstance;
  /** The bound HTTP address, e.g. http://127.0.0.1:8090. */
  url: string;
  stop(): Promise<void>;
}

/** Starts the hub and its HTTP API; tests and the demo run it in-process. */
export async function start(options: HubOptions, log: Logger): Promise<RunningHub> {
  const hub = await Hub.start(options, log);
  const audit = await AuditLog.open(
    options.stateDir,
    options.identity.id,
    options.identity.signing,
  );
  const http = await buildHubHttp(hub, {
    auth: options.auth,
    audit,
    events: hub.notifier,
    org: options.identity.id,
    log,
  });
  const url = await http.listen({ host: options.http.host, port: options.http.port });
  hub.notifier.start(url);
  log.info({ component: "http", url }, "hub ready");
  return {
    hub,
    http,
    url,
    async stop() {
      await http.close();
      await audit.close();
      await hub.stop();
    },
  };
}
