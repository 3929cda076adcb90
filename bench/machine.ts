/** The machine the numbers were measured on. */
import { execFileSync } from "node:child_process";
import { availableParallelism, cpus, platform, release, totalmem } from "node:os";
import { findNatsServer } from "@stafett/devkit";

export interface Machine {
  cores: number;
  cpu: string;
  memoryGiB: number;
  os: string;
  node: string;
  natsServer: string;
}

export function describeMachine(): Machine {
  const bin = findNatsServer();
  const version = execFileSync(bin, ["--version"], { encoding: "utf8", timeout: 5_000 }).trim();
  return {
    cores: availableParallelism(),
    cpu: cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    natsServer: version.replace(/^nats-server:\s*/, ""),
  };
}
