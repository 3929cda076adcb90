export {
  Gateway,
  DEFAULT_DEADLINES,
  type GatewayOptions,
  type ReferralRequest,
  type OpenedReferral,
} from "./gateway.js";
export {
  GatewayState,
  type GatewayRecord,
  type InboxItem,
  type SentReferral,
  type TimelineEntry,
} from "./state.js";
export { start, type RunningGateway } from "./service.js";
export { loadConfig, type GatewayEnvConfig } from "./config.js";
export { BODY_LIMIT } from "./http.js";
