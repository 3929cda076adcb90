import { createLogger, loadServiceConfig, resolveServiceRuntime } from "@stafett/shared";
import { start } from "./service.js";

const config = loadServiceConfig(process.env, { httpPort: 8060 });
const log = createLogger({ service: "liaison", level: config.logLevel });
const running = await start(await resolveServiceRuntime(config), log);
for (const signal of ["SIGINT", "SIGTERM"] as const)
  process.once(signal, () => void running.stop());
