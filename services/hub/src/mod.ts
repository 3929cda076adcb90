export { Hub, type HubOptions } from "./hub.js";
export { HubState, type HubRecord, type HubReferral, type HubStatus } from "./state.js";
export { start, type RunningHub } from "./service.js";
export { loadConfig, type HubEnvConfig } from "./config.js";
