import { createLogger, resolveServiceRuntime, runService } from "@stafett/shared";
import { loadConfig } from "./config.js";
import { start } from "./service.js";

await runService("stafett-gateway", async () => {
  const config = loadConfig();
  const log = createLogger({ service: "gateway", level: config.logLevel });
  return start({ ...(await resolveServiceRuntime(config)), deadlines: config.deadlines }, log);
});
