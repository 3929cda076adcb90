export * from "./nats-server.js";
export * from "./wait.js";
export * from "./local-country.js";
export * from "./service-process.js";
export * from "./federation.js";
export * from "./chaos.js";
export * from "./tls.js";
export * from "./fixtures.js";
