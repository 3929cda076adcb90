import { writeFileSync } from "node:fs";
import {
  clusterNodeConfig,
  consumerConfig,
  countryServerConfig,
  PROVISION_DEFAULTS,
  quarantineStreamConfig,
  streamConfig,
} from "@stafett/shared";
const o = { ...PROVISION_DEFAULTS, backoffMs: [...PROVISION_DEFAULTS.backoffMs] };
const secret = { user: "link-se", password: "CHANGE-ME-shared-link-secret" };
const out = (f: string, v: unknown) =>
  writeFileSync(`infra/examples/${f}`, `${JSON.stringify(v, null, 2)}\n`);
out(
  "nats-no.json",
  countryServerConfig({
    country: "no",
    storeDir: "/var/lib/nats-server",
    users: [{ user: "stafett", password: "CHANGE-ME" }],
    accepts: [{ partner: "se", credentials: secret }],
  }),
);
out(
  "nats-se.json",
  countryServerConfig({
    country: "se",
    storeDir: "/var/lib/nats-server",
    users: [{ user: "stafett", password: "CHANGE-ME" }],
    connects: [{ partner: "no", url: "nats-leaf://nats.no.example:7422", credentials: secret }],
  }),
);
out("stream-STAFETT_SE.json", streamConfig("se", o));
out("stream-STAFETT_QUARANTINE_SE.json", quarantineStreamConfig("se", o));
out("consumer-se-hub-vast.json", consumerConfig("se-hub-vast", "stafett.se.vast.hub.>", o));
const routes = [
  "nats-route://nats-1.se.example:6222",
  "nats-route://nats-2.se.example:6222",
  "nats-route://nats-3.se.example:6222",
];
for (const node of ["n1", "n2", "n3"]) {
  out(
    `cluster-se-${node}.json`,
    clusterNodeConfig({
      country: "se",
      node,
      clusterPort: 6222,
      routes,
      host: "0.0.0.0",
      storeDir: "/var/lib/nats-server",
      users: [{ user: "stafett", password: "CHANGE-ME" }],
    }),
  );
}
out("stream-STAFETT_SE-R3.json", streamConfig("se", { ...o, replicas: 3 }));
