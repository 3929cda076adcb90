import type { FastifyInstance } from "fastify";
import { AuditLog, type Logger, type ServiceRuntime } from "@stafett/shared";
import { Coordinator } from "./coordinator.js";
import { buildCoordinatorHttp } from "./http.js";

export interface RunningCoordinator {
  coordinator: Coordinator;
  http: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

/** Starts the coordinator and its HTTP API (the escalations it received). */
export async function start(options: ServiceRuntime, log: Logger): Promise<RunningCoordinator> {
  const coordinator = await Coordinator.start(options, log);
  const audit = await AuditLog.open(
    options.stateDir,
    options.identity.id,
    options.identity.signing,
  );
  const http = await buildCoordinatorHttp(coordinator, {
    auth: options.auth,
    audit,
    events: coordinator.notifier,
    org: options.identity.id,
    log,
  });
  const url = await http.listen({ host: options.http.host, port: options.http.port });
  coordinator.notifier.start(url);
  log.info({ component: "http", url }, "coordinator ready");
  return {
    coordinator,
    http,
    url,
    async stop() {
      await http.close();
      await audit.close();
      await coordinator.stop();
    },
  };
}
