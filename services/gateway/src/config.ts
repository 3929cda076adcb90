import {
  ConfigReader,
  readServiceEnv,
  type Env,
  type ServiceEnvConfig,
  type Urgency,
} from "@stafett/shared";
import { DEFAULT_DEADLINES } from "./gateway.js";

export interface GatewayEnvConfig extends ServiceEnvConfig {
  deadlines: Record<Urgency, number>;
}

/** The gateway's configuration: the shared service variables plus the deadline per urgency. */
export function loadConfig(env: Env = process.env): Readonly<GatewayEnvConfig> {
  const r = new ConfigReader(env);
  const base = readServiceEnv(r, { httpPort: 8080, metricsPort: 9180 });
  return r.done({
    ...base,
    deadlines: {
      URGENCY_IMMEDIATE: r.duration(
        "STAFETT_DEADLINE_IMMEDIATE",
        DEFAULT_DEADLINES.URGENCY_IMMEDIATE,
      ),
      URGENCY_HIGH: r.duration("STAFETT_DEADLINE_HIGH", DEFAULT_DEADLINES.URGENCY_HIGH),
      URGENCY_NORMAL: r.duration("STAFETT_DEADLINE_NORMAL", DEFAULT_DEADLINES.URGENCY_NORMAL),
    },
  });
}
