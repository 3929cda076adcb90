import { DEFAULT_REPORT_EVERY_MS } from "./report.js";
import { ConfigReader, readServiceEnv, type Env, type ServiceEnvConfig } from "@stafett/shared";

export interface HubEnvConfig extends ServiceEnvConfig {
  tickMs: number;
  /** How often, at least, the region is reported to the national coordinator (0: never). */
  reportEveryMs: number;
}

/**
 * The hub's configuration: the shared service variables plus STAFETT_DEADLINE_TICK and
 * STAFETT_REPORT_EVERY.
 */
export function loadConfig(env: Env = process.env): Readonly<HubEnvConfig> {
  const r = new ConfigReader(env);
  const base = readServiceEnv(r, { httpPort: 8090, metricsPort: 9190 });
  return r.done({
    ...base,
    tickMs: r.duration("STAFETT_DEADLINE_TICK", 1_000),
    reportEveryMs: r.duration("STAFETT_REPORT_EVERY", DEFAULT_REPORT_EVERY_MS),
  });
}
