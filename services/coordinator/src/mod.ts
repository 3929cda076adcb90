export { Coordinator, type CoordinatorOptions, type Escalation } from "./coordinator.js";
export { start, type RunningCoordinator } from "./service.js";
