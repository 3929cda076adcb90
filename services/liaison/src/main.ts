import {
  createLogger,
  loadServiceConfig,
  resolveServiceRuntime,
  runService,
} from "@stafett/shared";
import { start } from "./service.js";

await runService("stafett-liaison", async () => {
  const config = loadServiceConfig(process.env, { httpPort: 8060, metricsPort: 9160 });
  const log = createLogger({ service: "liaison", level: config.logLevel });
  return start(await resolveServiceRuntime(config), log);
});
