/**
 * The files of infra/examples/, as text, from the functions that `stafett federation config`
 * and `stafett provision` use. Pure: `scripts/gen-infra-examples.ts` (`npm run gen:infra`)
 * writes them, and test/contract/infra.test.ts compares them with the committed files.
 */
import { createHash } from "node:crypto";
import { fromSeed, Prefix } from "@nats-io/nkeys";
// Not in the package's barrel; the examples' keys must be the same on every run.
import { Codec } from "@nats-io/nkeys/lib/codec.js";
import {
  buildTrustList,
  clusterNodeConfig,
  consumerConfig,
  countryOrganisationIds,
  countryServerConfig,
  describeOrganisation,
  federationHubConfig,
  PROVISION_DEFAULTS,
  PROVISIONER,
  quarantineStreamConfig,
  VIA_HUB,
  streamConfig,
  trustBucketConfig,
  type CountryServerOptions,
  type TrustList,
} from "@stafett/shared";

/** The directory the examples live in, relative to the repository root. */
export const INFRA_EXAMPLES_DIR = "infra/examples";

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`;

/** An example trust list: the organisations and policy make the accounts; keys do not matter. */
function exampleList(country: string, municipalities: string[], partner: string): TrustList {
  const now = new Date("2026-12-01T00:00:00.000Z");
  return buildTrustList({
    country,
    version: 1,
    issuedAt: now,
    organisations: countryOrganisationIds(country, municipalities).map((id) =>
      describeOrganisation({ id, signingKeys: [], encryptionKeys: [] }, now),
    ),
    partners: [{ country: partner, anchors: [] }],
  });
}

/** Example nkeys, derived from the names (stable across runs); real ones come from `stafett nats users`. */
function exampleNkeys(list: TrustList): Map<string, string> {
  const nkeys = new Map<string, string>();
  for (const id of [...list.organisations.map((org) => org.id), PROVISIONER]) {
    const raw = createHash("sha256").update(`stafett example ${list.country} ${id}`).digest();
    nkeys.set(id, fromSeed(Codec.encodeSeed(Prefix.User, raw)).getPublicKey());
  }
  return nkeys;
}

/** File name -> content, in the order they are listed in infra/README.md. */
export function infraExamples(): Map<string, string> {
  const o = { ...PROVISION_DEFAULTS, backoffMs: [...PROVISION_DEFAULTS.backoffMs] };
  const secret = { user: "link-se", password: "CHANGE-ME-shared-link-secret" };
  const storeDir = "/var/lib/nats-server";
  const se = exampleList("se", ["0180", "1480", "1280"], "no");
  const no = exampleList("no", [], "se");
  const files = new Map<string, string>();
  files.set(
    "nats-no.json",
    json(
      countryServerConfig({
        country: "no",
        storeDir,
        trustList: no,
        nkeys: exampleNkeys(no),
        accepts: [{ partner: "se", credentials: secret }],
      }),
    ),
  );
  /** Sweden's broker, connecting out over `connects`. */
  const seBroker = (connects: CountryServerOptions["connects"]) =>
    json(
      countryServerConfig({
        country: "se",
        storeDir,
        trustList: se,
        nkeys: exampleNkeys(se),
        ...(connects === undefined ? {} : { connects }),
      }),
    );
  files.set(
    "nats-se.json",
    seBroker([{ partner: "no", url: "nats-leaf://nats.no.example:7422", credentials: secret }]),
  );
  // The federation of many: a routing hub, and a country linked once to it.
  files.set(
    "nats-hub.json",
    json(
      federationHubConfig({
        members: ["se", "no", "fi"].map((country) => ({
          country,
          credentials: { user: `link-${country}`, password: `CHANGE-ME-hub-${country}-secret` },
        })),
        partnerships: [
          ["se", "no"],
          ["se", "fi"],
        ],
        host: "0.0.0.0",
      }),
    ),
  );
  files.set(
    "nats-se-via-hub.json",
    seBroker([
      {
        partner: VIA_HUB,
        url: "nats-leaf://hub.federation.example:7422",
        credentials: { user: "link-se", password: "CHANGE-ME-hub-se-secret" },
      },
    ]),
  );
  files.set("stream-STAFETT_SE.json", json(streamConfig("se", o, se)));
  files.set("stream-STAFETT_QUARANTINE_SE.json", json(quarantineStreamConfig("se", o)));
  files.set("stream-KV_stafett-trust.json", json(trustBucketConfig(o)));
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
          trustList: se,
          nkeys: exampleNkeys(se),
          limits: { replicas: 3 },
        }),
      ),
    );
  }
  files.set("stream-STAFETT_SE-R3.json", json(streamConfig("se", { ...o, replicas: 3 }, se)));
  return files;
}
