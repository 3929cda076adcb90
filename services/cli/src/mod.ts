export { runCli, USAGE } from "./cli.js";
export type { Io } from "./io.js";
