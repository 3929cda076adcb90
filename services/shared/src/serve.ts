/**
 * What every service does once its core has started: open its access audit, build its HTTP API
 * on the shared layer (with its notifications' event stream), listen (API and metrics), start
 * delivering notifications, say it is ready, and stop it all in order.
 */
import type { FastifyInstance } from "fastify";
import { AuditLog } from "./audit.js";
import type { HttpServiceOptions } from "./http-service.js";
import { currentSigningKey } from "./keyring.js";
import { registerDesk } from "./desk/plugin.js";
import type { Logger } from "./logger.js";
import type { Notifier } from "./notifier.js";
import type { Operations } from "./operations.js";
import type { Party } from "./party.js";
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
  core: {
    stop(): Promise<void>;
    /** Its notifications: served as GET /v1/events, delivered once the API listens. */
    notifier?: Pick<Notifier, "subscribe" | "since" | "payload" | "start">;
    /** Its party: the Desk's live pages refresh when its state changes. */
    party: Pick<Party<unknown>, "onChange">;
  },
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
    ...(core.notifier === undefined ? {} : { events: core.notifier }),
  });
  // The officers' Desk, on the same origin as the API, when the service is configured for it.
  if (runtime.desk !== undefined)
    await registerDesk(http, runtime.identity.id, runtime.auth, runtime.desk, log, core.party);
  const url = await http.listen({ host: runtime.http.host, port: runtime.http.port });
  // Webhooks and e-mail name the API's address (links back to the item).
  core.notifier?.start(url);
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
