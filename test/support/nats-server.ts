// The launcher lives in @stafett/devkit so that the demo and the benchmarks use the same one.
export * from "@stafett/devkit";
