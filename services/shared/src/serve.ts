/**
 * What every service does once its core has started: open its access audit, build its HTTP API
 * on the shared layer, listen (API and metrics), say it is ready, and stop it all in order.
 */
import type { FastifyInstance } from "fastify";
import { AuditLog } from "./audit.js";
import type { HttpServiceOptions } from "./http-service.js";
import { currentSigningKey } from "./keyring.js";
import { registerDesk } from "./desk/plugin.js";
import type { Logger } from "./logger.js";
import type { Operations } from "./operations.js";
import type { ServiceRuntime } from "./service-config.js";

export interface ServedApi {
  http: FastifyInstance;
  /** The bound HTTP address, e.g. http://127.0.0.1:8090. */
  url: string;
  metricsUrl: string | undefined;
  /** Stops the API, operations, the audit, then the core. */
  stop(): Promise<void>;
}

export async function serveApi(
  service: string,
  runtime: ServiceRuntime,
  log: Logger,
  operations: Operations,
  core: { stop(): Promise<void> },
  build: (options: HttpServiceOptions) => Promise<FastifyInstance>,
): Promise<ServedApi> {
  const audit = await AuditLog.open(
    runtime.stateDir,
    runtime.identity.id,
    currentSigningKey(runtime.identity),
  );
  const http = await build({
    auth: runtime.auth,
    audit,
    org: runtime.identity.id,
    log,
    readiness: operations.readiness,
    metrics: operations.metrics,
  });
  // The officers' Desk, on the same origin as the API, when the service is configured for it.
  if (runtime.desk !== undefined)
    await registerDesk(http, runtime.identity.id, runtime.auth, runtime.desk, log);
  const url = await http.listen({ host: runtime.http.host, port: runtime.http.port });
  const metricsUrl = await operations.listen();
  log.info({ component: "http", url, metricsUrl }, `${service} ready`);
  return {
    http,
    url,
    metricsUrl,
    async stop() {
      await http.close();
      await operations.stop();
      await audit.close();
      await core.stop();
    },
  };
}
