import type { FastifyInstance } from "fastify";
import { AuditLog, type Logger } from "@stafett/shared";
import { Gateway, type GatewayOptions } from "./gateway.js";
import { buildGatewayHttp } from "./http.js";

export interface RunningGateway {
  gateway: Gateway;
  http: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

/** Starts the gateway and its HTTP API; tests and the demo run it in-process. */
export async function start(options: GatewayOptions, log: Logger): Promise<RunningGateway> {
  const gateway = await Gateway.start(options, log);
  const audit = await AuditLog.open(
    options.stateDir,
    options.identity.id,
    options.identity.signing,
  );
  const http = await buildGatewayHttp(gateway, {
    auth: options.auth,
    audit,
    events: gateway.notifier,
    org: options.identity.id,
    log,
  });
  const url = await http.listen({ host: options.http.host, port: options.http.port });
  gateway.notifier.start(url);
  log.info({ component: "http", url }, "gateway ready");
  return {
    gateway,
    http,
    url,
    async stop() {
      await http.close();
      await audit.close();
      await gateway.stop();
    },
  };
}
