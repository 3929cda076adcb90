/**
 * The operator's commands against a broker that runs what `stafett federation config` writes:
 * the config starts, `stafett provision --nkey-file provisioner.nk` provisions with the only
 * identity the streams' account has, and neither no credentials nor an organisation's can. And
 * the federation's hub from `federation config --federation`, with countries linked to it by
 * `federation config --hub`, taking a new member with `federation add-country` while it runs.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, nkeyAuthenticator } from "@nats-io/transport-node";
import { runCli, type Io } from "@stafett/cli";
import {
  createCountry,
  startServer,
  waitForValue,
  type Country,
  type NatsServer,
} from "@stafett/devkit";
import {
  generateSigningKey,
  importSigningKey,
  readSecretFile,
  verifyTrustList,
  type KeyPairJwk,
} from "@stafett/shared";

let dir: string;
let country: Country;
let seAnchor: KeyPairJwk;
let server: NatsServer;
const trustFile = () => join(dir, "trust-list.jws");
const anchorFile = () => join(dir, "anchor.pub.jwk.json");
const seed = (name: string) => join(dir, "nkeys", `${name}.nk`);

function testIo(): Io & { text: () => string } {
  const out: string[] = [];
  return {
    out: (t) => void out.push(t),
    err: (t) => void out.push(t),
    usage: (t) => {
      out.push(t);
      return 2;
    },
    stdin: () => Promise.resolve(new Uint8Array()),
    stdoutBytes: () => undefined,
    text: () => out.join(""),
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stafett-operator-"));
  seAnchor = await generateSigningKey();
  country = await createCountry({ code: "se", municipalities: ["0180"], anchor: seAnchor });
  writeFileSync(trustFile(), `${country.trustListJws}\n`);
  writeFileSync(anchorFile(), JSON.stringify(country.anchorPublicJwk));
  const io = testIo();
  expect(
    await runCli(
      [
        "federation",
        "config",
        "--country",
        "se",
        "--out",
        dir,
        "--trust",
        trustFile(),
        "--anchor",
        anchorFile(),
        "--store-dir",
        join(dir, "js"),
        "--port=-1",
      ],
      io,
    ),
  ).toBe(0);
  const config = JSON.parse(readFileSync(join(dir, "nats-se.json"), "utf8")) as Record<
    string,
    unknown
  >;
  server = await startServer({ name: "stafett-se", jetstream: { domain: "se" }, config });
}, 30_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const provisionWith = (credentials: string[]) =>
  runCli(
    [
      "provision",
      "--trust",
      trustFile(),
      "--anchor",
      anchorFile(),
      "--nats-url",
      server.url,
      ...credentials,
    ],
    testIo(),
  );

describe("the operator's commands on the generated configuration", () => {
  it("federation config writes each organisation's and the provisioner's seed, 0600", () => {
    for (const name of ["provisioner", "se-municipality-0180", "se-hub-stockholm"])
      expect({ name, mode: statSync(seed(name)).mode & 0o777 }).toEqual({ name, mode: 0o600 });
  });

  it("provision works with the provisioner's nkey, and only with it", async () => {
    await expect(provisionWith([])).rejects.toThrow(/authori[sz]ation/i);
    // An organisation's user is in an account without JetStream: it cannot administer.
    await expect(provisionWith(["--nkey-file", seed("se-municipality-0180")])).rejects.toThrow();
    expect(await provisionWith(["--nkey-file", seed("provisioner")])).toBe(0);
    const nc = await connect({
      servers: server.url,
      authenticator: nkeyAuthenticator(readSecretFile(seed("provisioner"))),
    });
    try {
      const jsm = await jetstreamManager(nc);
      expect((await jsm.streams.info("STAFETT_SE")).config.max_bytes).toBeGreaterThan(0);
      expect((await jsm.consumers.info("STAFETT_SE", "se-municipality-0180")).name).toBe(
        "se-municipality-0180",
      );
      expect((await jsm.streams.info("KV_stafett-trust")).config.deny_purge).toBe(true);
    } finally {
      await nc.close();
    }
  });

  it("quarantine list works with the provisioner's nkey", async () => {
    const io = testIo();
    expect(
      await runCli(
        ["quarantine", "list", "--nats-url", server.url, "--nkey-file", seed("provisioner")],
        io,
      ),
    ).toBe(0);
    expect(io.text()).toContain("0 quarantined message(s) in se");
  });
});

describe("the federation's hub from the operator's commands", () => {
  const hubDir = () => join(dir, "federation");
  const federationFile = () => join(hubDir(), "federation.json");
  let hub: NatsServer | undefined;
  const brokers: NatsServer[] = [];

  afterAll(async () => {
    await Promise.all(brokers.map((b) => b.stop()));
    await hub?.stop();
  });

  const members = new Map<string, Country>();

  /** A country's broker from `federation config --country CC --hub URL`, started. */
  async function startMember(cc: string): Promise<NatsServer> {
    const c = cc === "se" ? country : await createCountry({ code: cc, municipalities: [] });
    members.set(cc, c);
    const out = join(hubDir(), cc);
    writeFileSync(join(hubDir(), `${cc}.jws`), `${c.trustListJws}\n`);
    writeFileSync(join(hubDir(), `${cc}.anchor.json`), JSON.stringify(c.anchorPublicJwk));
    const leafPort = (await hub?.leafPort()) ?? 0;
    const io = testIo();
    const code = await runCli(
      [
        "federation",
        "config",
        "--country",
        cc,
        "--out",
        hubDir(),
        "--nkeys",
        join(out, "nkeys"),
        "--trust",
        join(hubDir(), `${cc}.jws`),
        "--anchor",
        join(hubDir(), `${cc}.anchor.json`),
        "--hub",
        `nats-leaf://127.0.0.1:${leafPort}`,
        "--port=-1",
      ],
      io,
    );
    expect(code, io.text()).toBe(0);
    const config = JSON.parse(readFileSync(join(hubDir(), `nats-${cc}.json`), "utf8")) as Record<
      string,
      unknown
    >;
    delete (config.jetstream as Record<string, unknown>).store_dir;
    const b = await startServer({ name: `stafett-${cc}`, jetstream: { domain: cc }, config });
    brokers.push(b);
    return b;
  }

  const linksAtHub = async (): Promise<string[]> =>
    ((await hub?.monitor<{ leafs?: { account: string; port: number }[] }>("/leafz"))?.leafs ?? [])
      .map((l) => `${l.account} ${l.port}`)
      .sort();

  it("federation config --federation writes a hub without JetStream that the members link to; add-country adds one to the running hub", async () => {
    mkdirSync(hubDir(), { recursive: true });
    writeFileSync(
      federationFile(),
      JSON.stringify({ members: ["se", "no"], partnerships: [["se", "no"]] }),
    );
    const io = testIo();
    expect(
      await runCli(
        [
          "federation",
          "config",
          "--federation",
          federationFile(),
          "--out",
          hubDir(),
          "--port=-1",
          "--leaf-port=-1",
        ],
        io,
      ),
    ).toBe(0);
    const config = JSON.parse(readFileSync(join(hubDir(), "nats-hub.json"), "utf8")) as Record<
      string,
      unknown
    >;
    expect(config).not.toHaveProperty("jetstream");
    expect(statSync(join(hubDir(), "links", "hub-se.password")).mode & 0o777).toBe(0o600);
    hub = await startServer({ name: "stafett-hub", jetstream: false, config });
    await startMember("se");
    await startMember("no");
    const before = await waitForValue(
      async () => ((await linksAtHub()).length === 2 ? linksAtHub() : undefined),
      { timeoutMs: 10_000, message: "se's and no's links at the hub" },
    );
    const hubPid = hub.pid;

    // Finland joins as Sweden's partner: one command, while Finland's broker starts.
    const adding = runCli(
      [
        "federation",
        "add-country",
        "--federation",
        federationFile(),
        "--out",
        hubDir(),
        "--country",
        "fi",
        "--partners",
        "se",
        "--hub-config",
        hub.configFile,
        "--hub-pid",
        String(hub.pid),
        "--hub-monitor",
        hub.monitorUrl,
        "--wait",
        "20s",
      ],
      testIo(),
    );
    await waitForValue(
      async () => {
        const c = JSON.parse(readFileSync(hub?.configFile ?? "", "utf8")) as {
          accounts: Record<string, unknown>;
        };
        return "country-fi" in c.accounts ? true : undefined;
      },
      { timeoutMs: 10_000, message: "the hub's config to name Finland" },
    );
    await startMember("fi");
    expect(await adding).toBe(0);
    expect(JSON.parse(readFileSync(federationFile(), "utf8"))).toEqual({
      members: ["se", "no", "fi"],
      partnerships: [
        ["se", "no"],
        ["fi", "se"],
      ],
    });
    // The hub kept its process and Sweden's and Norway's links, and has Finland's.
    expect(hub.pid).toBe(hubPid);
    const after = await linksAtHub();
    expect(after).toEqual(expect.arrayContaining(before));
    expect(after.filter((l) => l.startsWith("country-fi "))).toHaveLength(1);
  });

  it("Sweden's coordinator names Finland's anchor (trust sign --partner-anchors) and provision puts both lists in Sweden's bucket", async () => {
    const fi = members.get("fi");
    if (fi === undefined) throw new Error("Finland did not join");
    const desk = join(hubDir(), "desk");
    mkdirSync(desk, { recursive: true });
    const orgs = [...country.keys].map(([id, k]) => {
      const stem = id.replaceAll(":", "-");
      writeFileSync(join(desk, `${stem}.sig.pub.json`), JSON.stringify(k.signing.publicJwk));
      writeFileSync(join(desk, `${stem}.enc.pub.json`), JSON.stringify(k.encryption.publicJwk));
      return { id, signing: [`${stem}.sig.pub.json`], encryption: [`${stem}.enc.pub.json`] };
    });
    writeFileSync(join(desk, "orgs.json"), JSON.stringify(orgs));
    writeFileSync(join(desk, "anchor.jwk.json"), JSON.stringify(seAnchor.privateJwk), {
      mode: 0o600,
    });
    writeFileSync(join(desk, "anchor-fi.pub.json"), JSON.stringify(fi.anchorPublicJwk));
    writeFileSync(
      join(desk, "partners.json"),
      JSON.stringify([{ country: "fi", anchors: ["anchor-fi.pub.json"] }]),
    );
    const v2 = join(desk, "trust-se-v2.jws");
    const io = testIo();
    const signed = await runCli(
      [
        "trust",
        "sign",
        "--orgs",
        join(desk, "orgs.json"),
        "--anchor",
        join(desk, "anchor.jwk.json"),
        "--country",
        "se",
        "--version",
        "2",
        "--partner-anchors",
        join(desk, "partners.json"),
        "--out",
        v2,
      ],
      io,
    );
    expect(signed, io.text()).toBe(0);
    const se = brokers[0];
    if (se === undefined) throw new Error("no Swedish broker");
    const pio = testIo();
    const provisioned = await runCli(
      [
        "provision",
        "--trust",
        v2,
        "--anchor",
        join(hubDir(), "se.anchor.json"),
        "--partner-trust",
        `fi=${join(hubDir(), "fi.jws")}`,
        "--nats-url",
        se.url,
        "--nkey-file",
        join(hubDir(), "se", "nkeys", "provisioner.nk"),
      ],
      pio,
    );
    expect(provisioned, pio.text()).toBe(0);
    expect(pio.text()).toContain("partner trust list fi in bucket");
    const nc = await connect({
      servers: se.url,
      authenticator: nkeyAuthenticator(
        readSecretFile(join(hubDir(), "se", "nkeys", "provisioner.nk")),
      ),
    });
    try {
      const kv = await new Kvm(nc).open("stafett-trust");
      const inBucket = await verifyTrustList((await kv.get("se"))?.string() ?? "", [
        await importSigningKey(seAnchor.publicJwk),
      ]);
      expect(inBucket.version).toBe(2);
      expect(inBucket.partners?.map((p) => p.country)).toEqual(["fi"]);
      expect((await kv.get("fi"))?.string()).toBe(fi.trustListJws);
    } finally {
      await nc.close();
    }
  });
});
