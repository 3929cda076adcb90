import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { fromSeed, Prefix } from "@nats-io/nkeys";
// Not in the package's barrel; the example's keys must be the same on every run.
import { Codec } from "@nats-io/nkeys/lib/codec.js";
import {
  buildTrustList,
  clusterNodeConfig,
  consumerConfig,
  countryOrganisationIds,
  countryServerConfig,
  describeOrganisation,
  PROVISION_DEFAULTS,
  PROVISIONER,
  quarantineStreamConfig,
  streamConfig,
  trustBucketConfig,
  type TrustList,
} from "@stafett/shared";
const o = { ...PROVISION_DEFAULTS, backoffMs: [...PROVISION_DEFAULTS.backoffMs] };
const secret = { user: "link-se", password: "CHANGE-ME-shared-link-secret" };
const out = (f: string, v: unknown) =>
  writeFileSync(`infra/examples/${f}`, `${JSON.stringify(v, null, 2)}\n`);

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

const se = exampleList("se", ["0180", "1480", "1280"], "no");
const no = exampleList("no", [], "se");
out(
  "nats-no.json",
  countryServerConfig({
    country: "no",
    storeDir: "/var/lib/nats-server",
    trustList: no,
    nkeys: exampleNkeys(no),
    accepts: [{ partner: "se", credentials: secret }],
  }),
);
out(
  "nats-se.json",
  countryServerConfig({
    country: "se",
    storeDir: "/var/lib/nats-server",
    trustList: se,
    nkeys: exampleNkeys(se),
    connects: [{ partner: "no", url: "nats-leaf://nats.no.example:7422", credentials: secret }],
  }),
);
out("stream-STAFETT_SE.json", streamConfig("se", o, se));
out("stream-STAFETT_QUARANTINE_SE.json", quarantineStreamConfig("se", o));
out("stream-KV_stafett-trust.json", trustBucketConfig(o));
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
      trustList: se,
      nkeys: exampleNkeys(se),
      limits: { replicas: 3 },
    }),
  );
}
out("stream-STAFETT_SE-R3.json", streamConfig("se", { ...o, replicas: 3 }, se));
