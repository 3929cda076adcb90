export {
  Liaison,
  DEFAULT_OUTBOUND_POLICY,
  type LiaisonOptions,
  type OutboundPolicy,
} from "./liaison.js";
export { LiaisonState, type LiaisonRecord, type InboundReferral } from "./state.js";
export { start, type RunningLiaison } from "./service.js";
