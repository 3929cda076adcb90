/**
 * The files of infra/examples/, as text, from the functions that `stafett federation config`
 * and `stafett provision` use. Pure: `scripts/gen-infra-examples.ts` (`npm run gen:infra`)
 * writes them, and test/contract/infra.test.ts compares them with the committed files.
 */
import {
  clusterNodeConfig,
  consumerConfig,
  countryServerConfig,
  PROVISION_DEFAULTS,
  quarantineStreamConfig,
  streamConfig,
} from "@stafett/shared";

/** The directory the examples live in, relative to the repository root. */
export const INFRA_EXAMPLES_DIR = "infra/examples";

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** File name -> content, in the order they are listed in infra/README.md. */
export function infraExamples(): Map<string, string> {
  const o = { ...PROVISION_DEFAULTS, backoffMs: [...PROVISION_DEFAULTS.backoffMs] };
  const secret = { user: "link-se", password: "CHANGE-ME-shared-link-secret" };
  const services = [{ user: "stafett", password: "CHANGE-ME" }];
  const storeDir = "/var/lib/nats-server";
  const files = new Map<string, string>();
  files.set(
    "nats-no.json",
    json(
      countryServerConfig({
        country: "no",
        storeDir,
        users: services,
        accepts: [{ partner: "se", credentials: secret }],
      }),
    ),
  );
  files.set(
    "nats-se.json",
    json(
      countryServerConfig({
        country: "se",
        storeDir,
        users: services,
        connects: [{ partner: "no", url: "nats-leaf://nats.no.example:7422", credentials: secret }],
      }),
    ),
  );
  files.set("stream-STAFETT_SE.json", json(streamConfig("se", o)));
  files.set("stream-STAFETT_QUARANTINE_SE.json", json(quarantineStreamConfig("se", o)));
  files.set(
    "consumer-se-hub-vast.json",
    json(consumerConfig("se-hub-vast", "stafett.se.vast.hub.>", o)),
  );
  const routes = [
    "nats-route://nats-1.se.example:6222",
    "nats-route://nats-2.se.example:6222",
    "nats-route://nats-3.se.example:6222",
  ];
  for (const node of ["n1", "n2", "n3"]) {
    files.set(
      `cluster-se-${node}.json`,
      json(
        clusterNodeConfig({
          country: "se",
          node,
          clusterPort: 6222,
          routes,
          host: "0.0.0.0",
          storeDir,
          users: services,
        }),
      ),
    );
  }
  files.set("stream-STAFETT_SE-R3.json", json(streamConfig("se", { ...o, replicas: 3 })));
  return files;
}
