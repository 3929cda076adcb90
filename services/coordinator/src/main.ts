import {
  createLogger,
  loadServiceConfig,
  resolveServiceRuntime,
  runService,
} from "@stafett/shared";
import { start } from "./service.js";

await runService("stafett-coordinator", async () => {
  const config = loadServiceConfig(process.env, { httpPort: 8070, metricsPort: 9170 });
  const log = createLogger({ service: "coordinator", level: config.logLevel });
  return start(await resolveServiceRuntime(config), log);
});
