export { Coordinator, type Escalation } from "./coordinator.js";
export { start, type RunningCoordinator } from "./service.js";
