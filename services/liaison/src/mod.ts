export {
  Liaison,
  DEFAULT_OUTBOUND_POLICY,
  type LiaisonOptions,
  type OutboundPolicy,
} from "./liaison.js";
export {
  LiaisonState,
  type LiaisonRecord,
  type InboundReferral,
  type SentAbroad,
} from "./state.js";
export type { ReferAbroad } from "./decide.js";
export { start, type RunningLiaison } from "./service.js";
