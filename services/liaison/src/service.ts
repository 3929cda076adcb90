import type { FastifyInstance } from "fastify";
import { AuditLog, type Logger } from "@stafett/shared";
import { buildLiaisonHttp } from "./http.js";
import { Liaison, type LiaisonOptions } from "./liaison.js";

export interface RunningLiaison {
  liaison: Liaison;
  http: FastifyInstance;
  url: string;
  stop(): Promise<void>;
}

/** Starts the liaison and the contact point's HTTP API (inbound referrals waiting for a decision). */
export async function start(options: LiaisonOptions, log: Logger): Promise<RunningLiaison> {
  const liaison = await Liaison.start(options, log);
  const audit = await AuditLog.open(
    options.stateDir,
    options.identity.id,
    options.identity.signing,
  );
  const http = await buildLiaisonHttp(liaison, {
    auth: options.auth,
    audit,
    events: liaison.notifier,
    org: options.identity.id,
    log,
  });
  const url = await http.listen({ host: options.http.host, port: options.http.port });
  liaison.notifier.start(url);
  log.info({ component: "http", url }, "liaison ready");
  return {
    liaison,
    http,
    url,
    async stop() {
      await http.close();
      await audit.close();
      await liaison.stop();
    },
  };
}
