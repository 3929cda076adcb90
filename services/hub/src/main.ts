import { createLogger, resolveServiceRuntime } from "@stafett/shared";
import { loadConfig } from "./config.js";
import { start } from "./service.js";

const config = loadConfig();
const log = createLogger({ service: "hub", level: config.logLevel });
const running = await start(
  { ...(await resolveServiceRuntime(config)), tickMs: config.tickMs },
  log,
);
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => void running.stop());
