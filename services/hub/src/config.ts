import { ConfigReader, readServiceEnv, type Env, type ServiceEnvConfig } from "@stafett/shared";

export interface HubEnvConfig extends ServiceEnvConfig {
  tickMs: number;
}

/** The hub's configuration: the shared service variables plus STAFETT_DEADLINE_TICK. */
export function loadConfig(env: Env = process.env): Readonly<HubEnvConfig> {
  const r = new ConfigReader(env);
  const base = readServiceEnv(r, { httpPort: 8090, metricsPort: 9190 });
  return r.done({ ...base, tickMs: r.duration("STAFETT_DEADLINE_TICK", 1_000) });
}
