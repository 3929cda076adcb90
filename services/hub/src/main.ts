import { createLogger, resolveServiceRuntime, runService } from "@stafett/shared";
import { loadConfig } from "./config.js";
import { start } from "./service.js";

await runService("stafett-hub", async () => {
  const config = loadConfig();
  const log = createLogger({ service: "hub", level: config.logLevel });
  return start(
    {
      ...(await resolveServiceRuntime(config)),
      tickMs: config.tickMs,
      reportEveryMs: config.reportEveryMs,
    },
    log,
  );
});
