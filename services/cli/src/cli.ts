/** The `stafett` command: argument parsing and dispatch; every command returns its exit code. */
import { parseArgs } from "node:util";
import { isStafettError, parseDuration } from "@stafett/shared";
import { keysGenerate } from "./commands/keys.js";
import { trustSign, trustVerify } from "./commands/trust.js";
import { eventOpen, eventSeal } from "./commands/event.js";
import {
  federationAddCountry,
  federationConfig,
  federationHubConfigFile,
  provision,
} from "./commands/infra.js";
import { quarantine } from "./commands/quarantine.js";
import { natsUsers } from "./commands/nats-users.js";
import { auditExport, auditVerify } from "./commands/audit.js";
import { configServices } from "./commands/config.js";
import { printRefusal, type Io } from "./io.js";
import { journal } from "./commands/journal.js";
import { erase } from "./commands/erase.js";

export const USAGE = `stafett <command>

  keys generate --org <id> [--label L] [--out DIR]
                                              signing (Ed25519) and encryption (X25519) key pairs as JWK files;
                                              --label names a rollover's new pair (<stem>.<label>.*); never overwrites
  keys anchor [--out DIR]                     a trust anchor key pair (the national coordinator's)
  trust sign --orgs FILE --anchor KEY --country CC --version N [--policy FILE] [--valid-for DURATION]
             [--partner-anchors FILE] [--out FILE]
                                              build and sign a trust list (compact JWS); --valid-for (e.g. 90d)
                                              gives it a notAfter that services warn about before it passes;
                                              --partner-anchors: [{"country": CC, "anchors": [PUB files]}], the
                                              partner countries whose lists (signed by those anchors) are accepted
  trust verify --anchor PUB FILE              check a trust list's signature and schema, list its organisations
  event seal --in DRAFT|- --org ID --key SIGKEY --trust FILE --anchor PUB [--seal-to IDS] [--partner-country CC] [--out FILE|-]
                                              canonical JSON draft -> SignedEvent bytes
  event open --in FILE|- --trust FILE --anchor PUB [--as ID --enc-key KEY [--decrypt-to FILE]] [--subject S]
                                              SignedEvent bytes -> verified canonical JSON; exit 1 with a code if refused
  provision --trust FILE --anchor PUB [--partner-trust cc=FILE,...] [--nats-url URL]
            [--quarantine-max-age 7d]
            [--nkey-file F | --user U --password-file F] [--tls-ca F [--tls-cert F --tls-key F]]
                                              create or update the stream, quarantine stream and one consumer per
                                              organisation; put the trust lists in the trust bucket (idempotent);
                                              connect as the provisioner (--nkey-file DIR/provisioner.nk)
  federation config --country CC --out DIR --trust FILE --anchor PUB [--nkeys DIR]
                    [--accept-from CC,...] [--connect-to CC=nats-leaf://HOST:PORT,...]
                    [--store-dir DIR] [--host H] [--port N] [--leaf-port N] [--tls-cert F --tls-key F --tls-ca F]
                                              the country's nats-server config (JSON): the streams' account, one account
                                              per organisation (nkey users, seeds in DIR), and its federation links;
                                              --tls-*: mutual TLS on the client and leafnode ports
  federation config --country CC ... --hub nats-leaf://HOST:PORT
                                              the same, with one link to the federation's hub for every partner
  federation config --federation FILE --out DIR [--host H] [--port N] [--leaf-port N] [--tls-* F]
                                              the federation's routing hub (no JetStream) from a description
                                              {"members": [CC,...], "partnerships": [[CC,CC],...]}: an account per
                                              member, only partners' pairs joined; link passwords DIR/links/hub-CC.password
  federation add-country --federation FILE --out DIR --country CC --partners CC,... --hub-config FILE
                         [--hub-pid PID --hub-monitor URL] [--wait DURATION]
                                              add a member: rewrite FILE and the hub's accounts; with the pid and
                                              monitoring URL, reload the running hub, wait (default 10m) for the new
                                              country's link, reload again; nobody else restarts
  config services --trust FILE --anchor PUB --keys DIR --nats-url URL --auth-jwks F --auth-issuer ISS --out DIR
                  [--nkeys DIR] [--tls-ca F [--tls-cert F --tls-key F]] [--only IDS] [--state-root DIR]
                  [--auth-audience AUD] [--http-host H] [--http-port-base N] [--metrics-host H]
                  [--metrics-port-base N] [--expiry-warning DURATION] [--log-level L]
                                              one environment file per organisation's service (<stem>.env), for
                                              the systemd units in infra/systemd/ (docs/operations.md)
  nats users --trust FILE --anchor PUB --out DIR
                                              one nkey user per organisation, each in an account that imports what its
                                              role needs, and a provisioner: seeds DIR/*.nk (0600, reused), DIR/accounts.json
  quarantine list | show SEQ | replay SEQ [--country CC] [--nats-url URL] [--nkey-file F | --user U --password-file F]
             [--tls-ca F [--tls-cert F --tls-key F]]
                                              refused messages with their reasons; re-inject one (idempotent)
  quarantine erase --referral ID --org ID [--country CC] [--nats-url URL] [credentials as above]
                                              erase the messages about a referral that ORG refused (personal data)
  audit verify --state DIR --org ID --trust FILE --anchor PUB
                                              check a party's access audit: its chain and signed checkpoints;
                                              exit 1 naming the first record altered, removed, inserted or moved
  audit export --state DIR --referral ID [--out FILE]
                                              one referral's audit records, for the registrar
  erase --referral ID --url URL --token-file FILE [--inbound]
                                              erase a referral's personal part at the service at URL (a person's
                                              token granting eraser; recorded in that service's audit); --inbound:
                                              at the liaison, a partner's referral into the country
  journal check | repair --state DIR           verify every record of a service's journal (DIR/journal.jsonl);
                                              repair (service stopped) keeps damaged lines aside in a separate file

Trust options for seal and open: --partner-trust FILES (comma-separated; each only for a
partner the own list names, verified with the anchors it gives, as a service does).
`;

const OPTIONS = {
  org: { type: "string" },
  anchor: { type: "string" },
  out: { type: "string" },
  orgs: { type: "string" },
  country: { type: "string" },
  version: { type: "string" },
  policy: { type: "string" },
  in: { type: "string" },
  key: { type: "string" },
  trust: { type: "string" },
  "partner-trust": { type: "string" },
  "partner-country": { type: "string" },
  "seal-to": { type: "string" },
  as: { type: "string" },
  "enc-key": { type: "string" },
  "decrypt-to": { type: "string" },
  subject: { type: "string" },
  now: { type: "string" },
  state: { type: "string" },
  referral: { type: "string" },
  "nats-url": { type: "string" },
  user: { type: "string" },
  "password-file": { type: "string" },
  "nkey-file": { type: "string" },
  "store-dir": { type: "string" },
  "accept-from": { type: "string" },
  "connect-to": { type: "string" },
  hub: { type: "string" },
  "partner-anchors": { type: "string" },
  federation: { type: "string" },
  partners: { type: "string" },
  "hub-config": { type: "string" },
  "hub-pid": { type: "string" },
  "hub-monitor": { type: "string" },
  wait: { type: "string" },
  port: { type: "string" },
  "leaf-port": { type: "string" },
  "valid-for": { type: "string" },
  "quarantine-max-age": { type: "string" },
  url: { type: "string" },
  "token-file": { type: "string" },
  label: { type: "string" },
  host: { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-ca": { type: "string" },
  keys: { type: "string" },
  nkeys: { type: "string" },
  only: { type: "string" },
  "state-root": { type: "string" },
  "auth-jwks": { type: "string" },
  "auth-issuer": { type: "string" },
  "auth-audience": { type: "string" },
  "http-host": { type: "string" },
  "metrics-host": { type: "string" },
  "http-port-base": { type: "string" },
  "metrics-port-base": { type: "string" },
  "expiry-warning": { type: "string" },
  "log-level": { type: "string" },
  inbound: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

type Commands = Record<string, (v: Values, positionals: string[], io: Io) => Promise<number>>;
type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>["values"];

function need(v: Values, name: keyof Values, io: Io): string | undefined {
  const value = v[name];
  if (typeof value === "string" && value.length > 0) return value;
  io.usage(`--${name} is required`);
  return undefined;
}

/** Where a broker listens, and its TLS files. */
function listenArgs(v: Values) {
  return {
    ...(v.port === undefined ? {} : { port: Number(v.port) }),
    ...(v["leaf-port"] === undefined ? {} : { leafPort: Number(v["leaf-port"]) }),
    ...(v.host === undefined ? {} : { host: v.host }),
    ...(v["tls-cert"] === undefined ? {} : { tlsCert: v["tls-cert"] }),
    ...(v["tls-key"] === undefined ? {} : { tlsKey: v["tls-key"] }),
    ...(v["tls-ca"] === undefined ? {} : { tlsCa: v["tls-ca"] }),
  };
}

/** How the command reaches the broker: credentials and TLS. */
function natsArgs(v: Values) {
  return {
    ...(v.user === undefined ? {} : { user: v.user }),
    ...(v["password-file"] === undefined ? {} : { passwordFile: v["password-file"] }),
    ...(v["nkey-file"] === undefined ? {} : { nkeyFile: v["nkey-file"] }),
    ...(v["tls-ca"] === undefined ? {} : { tlsCa: v["tls-ca"] }),
    ...(v["tls-cert"] === undefined ? {} : { tlsCert: v["tls-cert"] }),
    ...(v["tls-key"] === undefined ? {} : { tlsKey: v["tls-key"] }),
  };
}

function trustArgs(v: Values) {
  return {
    trust: v.trust ?? "",
    anchor: typeof v.anchor === "string" ? v.anchor : "",
    ...(v["partner-trust"] === undefined ? {} : { partnerTrust: v["partner-trust"] }),
  };
}

export async function runCli(argv: string[], io: Io, commands: Commands = {}): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    return io.usage(err instanceof Error ? err.message : "bad arguments");
  }
  const { values: v, positionals } = parsed;
  const [group = "", action = "", ...rest] = positionals;
  if (v.help === true || group === "" || group === "help") {
    io.out(USAGE);
    return 0;
  }
  const all: Commands = {
    "keys generate": async () =>
      keysGenerate(
        {
          ...(v.org === undefined ? {} : { org: v.org }),
          ...(v.label === undefined ? {} : { label: v.label }),
          out: v.out ?? ".",
        },
        io,
      ),
    "keys anchor": async () => keysGenerate({ anchor: true, out: v.out ?? "." }, io),
    "trust sign": async () => {
      const orgs = need(v, "orgs", io);
      const anchor = need(v, "anchor", io);
      const country = need(v, "country", io);
      const version = need(v, "version", io);
      if (!orgs || !anchor || !country || !version) return 2;
      const validFor = v["valid-for"] === undefined ? undefined : parseDuration(v["valid-for"]);
      if (v["valid-for"] !== undefined && validFor === undefined)
        return io.usage("--valid-for is a duration such as 90d or 2160h");
      return trustSign(
        {
          orgs,
          anchor,
          country,
          version: Number(version),
          out: v.out ?? "trust-list.jws",
          ...(v.policy === undefined ? {} : { policy: v.policy }),
          ...(v["partner-anchors"] === undefined ? {} : { partners: v["partner-anchors"] }),
          ...(validFor === undefined ? {} : { validForMs: validFor }),
        },
        io,
      );
    },
    "audit verify": async () => {
      const state = need(v, "state", io);
      const org = need(v, "org", io);
      if (!state || !org || !need(v, "trust", io) || !need(v, "anchor", io)) return 2;
      return auditVerify({ ...trustArgs(v), state, org }, io);
    },
    "audit export": async () => {
      const state = need(v, "state", io);
      const referral = need(v, "referral", io);
      if (!state || !referral) return 2;
      return auditExport({ state, referral, ...(v.out === undefined ? {} : { out: v.out }) }, io);
    },
    "trust verify": async () => {
      const anchor = need(v, "anchor", io);
      const file = rest[0];
      if (!anchor) return 2;
      if (file === undefined) return io.usage("trust verify needs a trust list file");
      return trustVerify({ file, anchor }, io);
    },
    "event seal": async () => {
      const input = need(v, "in", io);
      const key = need(v, "key", io);
      const org = need(v, "org", io);
      if (!input || !key || !org || !need(v, "trust", io) || !need(v, "anchor", io)) return 2;
      return eventSeal(
        {
          ...trustArgs(v),
          in: input,
          key,
          org,
          ...(v.out === undefined ? {} : { out: v.out }),
          ...(v["seal-to"] === undefined ? {} : { sealTo: v["seal-to"] }),
          ...(v["partner-country"] === undefined ? {} : { partnerCountry: v["partner-country"] }),
        },
        io,
      );
    },
    "event open": async () => {
      const input = need(v, "in", io);
      if (!input || !need(v, "trust", io) || !need(v, "anchor", io)) return 2;
      return eventOpen(
        {
          ...trustArgs(v),
          in: input,
          ...(v.as === undefined ? {} : { as: v.as }),
          ...(v["enc-key"] === undefined ? {} : { encKey: v["enc-key"] }),
          ...(v["decrypt-to"] === undefined ? {} : { decryptTo: v["decrypt-to"] }),
          ...(v.subject === undefined ? {} : { subject: v.subject }),
          ...(v.now === undefined ? {} : { now: v.now }),
        },
        io,
      );
    },
    provision: async () => {
      if (!need(v, "trust", io) || !need(v, "anchor", io)) return 2;
      const quarantineMaxAge = v["quarantine-max-age"];
      const quarantineMaxAgeMs =
        quarantineMaxAge === undefined ? undefined : parseDuration(quarantineMaxAge);
      if (quarantineMaxAge !== undefined && quarantineMaxAgeMs === undefined)
        return io.usage("--quarantine-max-age is a duration such as 7d or 72h");
      return provision(
        {
          trust: v.trust ?? "",
          anchor: typeof v.anchor === "string" ? v.anchor : "",
          natsUrl: v["nats-url"] ?? "nats://127.0.0.1:4222",
          ...(v["partner-trust"] === undefined ? {} : { partnerTrust: v["partner-trust"] }),
          ...(quarantineMaxAgeMs === undefined ? {} : { quarantineMaxAgeMs }),
          ...natsArgs(v),
        },
        io,
      );
    },
    "nats users": async () => {
      const trust = need(v, "trust", io);
      const anchor = need(v, "anchor", io);
      const out = need(v, "out", io);
      if (!trust || !anchor || !out) return 2;
      return natsUsers({ trust, anchor, out }, io);
    },
    quarantine: async () =>
      quarantine(
        {
          action: action || "list",
          country: v.country ?? "se",
          ...(rest[0] === undefined ? {} : { seq: rest[0] }),
          ...(v.referral === undefined ? {} : { referral: v.referral }),
          ...(v.org === undefined ? {} : { org: v.org }),
          natsUrl: v["nats-url"] ?? "nats://127.0.0.1:4222",
          ...natsArgs(v),
        },
        io,
      ),
    "federation config": async () => {
      if (v.federation !== undefined) {
        const out = need(v, "out", io);
        if (!out) return 2;
        return federationHubConfigFile({ federation: v.federation, out, ...listenArgs(v) }, io);
      }
      const country = need(v, "country", io);
      const out = need(v, "out", io);
      const trust = need(v, "trust", io);
      const anchor = need(v, "anchor", io);
      if (!country || !out || !trust || !anchor) return 2;
      return federationConfig(
        {
          country,
          out,
          trust,
          anchor,
          ...(v.nkeys === undefined ? {} : { nkeys: v.nkeys }),
          storeDir: v["store-dir"] ?? "/var/lib/nats-server",
          ...(v["accept-from"] === undefined ? {} : { acceptFrom: v["accept-from"] }),
          ...(v["connect-to"] === undefined ? {} : { connectTo: v["connect-to"] }),
          ...(v.hub === undefined ? {} : { hub: v.hub }),
          ...listenArgs(v),
        },
        io,
      );
    },
    "federation add-country": async () => {
      const federation = need(v, "federation", io);
      const out = need(v, "out", io);
      const country = need(v, "country", io);
      const partners = need(v, "partners", io);
      const hubConfig = need(v, "hub-config", io);
      if (!federation || !out || !country || !partners || !hubConfig) return 2;
      const waitMs = v.wait === undefined ? undefined : parseDuration(v.wait);
      if (v.wait !== undefined && waitMs === undefined) return io.usage("--wait takes a duration");
      return federationAddCountry(
        {
          federation,
          out,
          country,
          partners,
          hubConfig,
          ...(v["hub-pid"] === undefined ? {} : { hubPid: Number(v["hub-pid"]) }),
          ...(v["hub-monitor"] === undefined ? {} : { hubMonitor: v["hub-monitor"] }),
          ...(waitMs === undefined ? {} : { waitMs }),
        },
        io,
      );
    },
    erase: async () => {
      const referral = need(v, "referral", io);
      const url = need(v, "url", io);
      const tokenFile = need(v, "token-file", io);
      if (!referral || !url || !tokenFile) return 2;
      return erase({ referral, url, tokenFile, inbound: v.inbound === true }, io);
    },
    journal: async () => {
      const state = need(v, "state", io);
      if (!state) return 2;
      return journal({ action: action || "check", state }, io);
    },
    "config services": async () => {
      const trust = need(v, "trust", io);
      const anchor = need(v, "anchor", io);
      const keys = need(v, "keys", io);
      const natsUrl = need(v, "nats-url", io);
      const authJwks = need(v, "auth-jwks", io);
      const authIssuer = need(v, "auth-issuer", io);
      const out = need(v, "out", io);
      if (!trust || !anchor || !keys || !natsUrl || !authJwks || !authIssuer || !out) return 2;
      const port = (name: "http-port-base" | "metrics-port-base", fallback: number): number => {
        const n = Number(v[name] ?? fallback);
        return Number.isInteger(n) && n > 0 && n < 65_536 ? n : Number.NaN;
      };
      const httpPortBase = port("http-port-base", 8100);
      const metricsPortBase = port("metrics-port-base", 9100);
      if (Number.isNaN(httpPortBase) || Number.isNaN(metricsPortBase))
        return io.usage("--http-port-base and --metrics-port-base are port numbers");
      return configServices(
        {
          trust,
          anchor,
          keys,
          natsUrl,
          out,
          authJwks,
          authIssuer,
          authAudience: v["auth-audience"] ?? "stafett",
          stateRoot: v["state-root"] ?? "/var/lib/stafett",
          httpHost: v["http-host"] ?? "127.0.0.1",
          metricsHost: v["metrics-host"] ?? "127.0.0.1",
          httpPortBase,
          metricsPortBase,
          logLevel: v["log-level"] ?? "info",
          ...(v.nkeys === undefined ? {} : { nkeys: v.nkeys }),
          ...(v["tls-ca"] === undefined ? {} : { tlsCa: v["tls-ca"] }),
          ...(v["tls-cert"] === undefined ? {} : { tlsCert: v["tls-cert"] }),
          ...(v["tls-key"] === undefined ? {} : { tlsKey: v["tls-key"] }),
          ...(v.only === undefined ? {} : { only: v.only }),
          ...(v["expiry-warning"] === undefined ? {} : { expiryWarning: v["expiry-warning"] }),
        },
        io,
      );
    },
    // The demo belongs to the dev kit, which this command never loads: say where it is.
    demo: async () =>
      io.usage("the demo is part of the dev kit: run `npm start` (stafett-dev demo) in a checkout"),
    ...commands,
  };
  const command = all[`${group} ${action}`] ?? all[group];
  if (command === undefined)
    return io.usage(`unknown command "${[group, action].join(" ").trim()}"; see stafett --help`);
  try {
    return await command(v, positionals, io);
  } catch (err) {
    if (isStafettError(err)) {
      printRefusal(io, err);
      return 1;
    }
    throw err;
  }
}
