/** The `stafett` command: argument parsing and dispatch; every command returns its exit code. */
import { parseArgs } from "node:util";
import { isStafettError } from "@stafett/shared";
import { keysGenerate } from "./commands/keys.js";
import { trustSign, trustVerify } from "./commands/trust.js";
import { eventOpen, eventSeal } from "./commands/event.js";
import { demo } from "./commands/demo.js";
import { federationConfig, provision } from "./commands/infra.js";
import { quarantine } from "./commands/quarantine.js";
import { natsUsers } from "./commands/nats-users.js";
import type { Io } from "./io.js";

export const USAGE = `stafett <command>

  keys generate --org <id> [--out DIR]        signing (Ed25519) and encryption (X25519) key pairs as JWK files
  keys anchor [--out DIR]                     a trust anchor key pair (the national coordinator's)
  trust sign --orgs FILE --anchor KEY --country CC --version N [--policy FILE] [--out FILE]
                                              build and sign a trust list (compact JWS)
  trust verify --anchor PUB FILE              check a trust list's signature and schema, list its organisations
  event seal --in DRAFT|- --org ID --key SIGKEY --trust FILE --anchor PUB [--seal-to IDS] [--partner-country CC] [--out FILE|-]
                                              canonical JSON draft -> SignedEvent bytes
  event open --in FILE|- --trust FILE --anchor PUB [--as ID --enc-key KEY [--decrypt-to FILE]] [--subject S]
                                              SignedEvent bytes -> verified canonical JSON; exit 1 with a code if refused
  provision --trust FILE --anchor PUB [--partner-trust cc=FILE,...] [--nats-url URL] [--nkey-file F | --user U --password-file F]
                                              create or update the stream, quarantine stream and one consumer per
                                              organisation; put the trust lists in the trust bucket (idempotent)
  federation config --country CC --out DIR --trust FILE --anchor PUB [--nkeys DIR]
                    [--accept-from CC,...] [--connect-to CC=nats-leaf://HOST:PORT,...] [--store-dir DIR] [--port N] [--leaf-port N]
                                              the country's nats-server config (JSON): the streams' account, one account
                                              per organisation (nkey users, seeds in DIR), and its federation links
  nats users --trust FILE --anchor PUB --out DIR
                                              one nkey user per organisation, each in an account that imports what its
                                              role needs, and a provisioner: seeds DIR/*.nk (0600, reused), DIR/accounts.json
  quarantine list | show SEQ | replay SEQ [--country CC] [--nats-url URL] [--nkey-file F | --user U --password-file F]
                                              refused messages with their reasons; re-inject one (idempotent)
  demo [--keep-running]                       run the local handoff demo (npm start): two countries' brokers, each
                                              organisation in its own account, the design's scenarios through the services

Trust options for seal and open: --partner-trust FILES --partner-anchor PUBS (comma-separated, pairwise).
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
  "partner-anchor": { type: "string" },
  "partner-country": { type: "string" },
  "seal-to": { type: "string" },
  as: { type: "string" },
  "enc-key": { type: "string" },
  "decrypt-to": { type: "string" },
  subject: { type: "string" },
  now: { type: "string" },
  "nats-url": { type: "string" },
  user: { type: "string" },
  "password-file": { type: "string" },
  "nkey-file": { type: "string" },
  nkeys: { type: "string" },
  "store-dir": { type: "string" },
  "accept-from": { type: "string" },
  "connect-to": { type: "string" },
  port: { type: "string" },
  "leaf-port": { type: "string" },
  "keep-running": { type: "boolean" },
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

function trustArgs(v: Values) {
  return {
    trust: v.trust ?? "",
    anchor: typeof v.anchor === "string" ? v.anchor : "",
    ...(v["partner-trust"] === undefined ? {} : { partnerTrust: v["partner-trust"] }),
    ...(v["partner-anchor"] === undefined ? {} : { partnerAnchor: v["partner-anchor"] }),
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
      keysGenerate({ ...(v.org === undefined ? {} : { org: v.org }), out: v.out ?? "." }, io),
    "keys anchor": async () => keysGenerate({ anchor: true, out: v.out ?? "." }, io),
    "trust sign": async () => {
      const orgs = need(v, "orgs", io);
      const anchor = need(v, "anchor", io);
      const country = need(v, "country", io);
      const version = need(v, "version", io);
      if (!orgs || !anchor || !country || !version) return 2;
      return trustSign(
        {
          orgs,
          anchor,
          country,
          version: Number(version),
          out: v.out ?? "trust-list.jws",
          ...(v.policy === undefined ? {} : { policy: v.policy }),
        },
        io,
      );
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
      return provision(
        {
          trust: v.trust ?? "",
          anchor: typeof v.anchor === "string" ? v.anchor : "",
          natsUrl: v["nats-url"] ?? "nats://127.0.0.1:4222",
          ...(v["partner-trust"] === undefined ? {} : { partnerTrust: v["partner-trust"] }),
          ...(v.user === undefined ? {} : { user: v.user }),
          ...(v["password-file"] === undefined ? {} : { passwordFile: v["password-file"] }),
          ...(v["nkey-file"] === undefined ? {} : { nkeyFile: v["nkey-file"] }),
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
          natsUrl: v["nats-url"] ?? "nats://127.0.0.1:4222",
          ...(v.user === undefined ? {} : { user: v.user }),
          ...(v["password-file"] === undefined ? {} : { passwordFile: v["password-file"] }),
          ...(v["nkey-file"] === undefined ? {} : { nkeyFile: v["nkey-file"] }),
        },
        io,
      ),
    "federation config": async () => {
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
          ...(v.port === undefined ? {} : { port: Number(v.port) }),
          ...(v["leaf-port"] === undefined ? {} : { leafPort: Number(v["leaf-port"]) }),
        },
        io,
      );
    },
    demo: async () =>
      demo(
        {
          keepRunning: v["keep-running"] === true,
          ...(v["nats-url"] === undefined ? {} : { natsUrl: v["nats-url"] }),
        },
        io,
      ),
    ...commands,
  };
  const command = all[`${group} ${action}`] ?? all[group];
  if (command === undefined)
    return io.usage(`unknown command "${[group, action].join(" ").trim()}"; see stafett --help`);
  try {
    return await command(v, positionals, io);
  } catch (err) {
    if (isStafettError(err)) {
      io.err(
        `stafett: ${err.code} (${err.reason})${err.field === undefined ? "" : ` at ${err.field}`}: ${err.message}\n`,
      );
      for (const issue of err.issues ?? []) io.err(`  ${issue.field}: ${issue.reason}\n`);
      return 1;
    }
    throw err;
  }
}
