/**
 * The operator's commands against a broker that runs what `stafett federation config` writes:
 * the config starts, `stafett provision --nkey-file provisioner.nk` provisions with the only
 * identity the streams' account has, and neither no credentials nor an organisation's can.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, nkeyAuthenticator } from "@nats-io/transport-node";
import { runCli, type Io } from "@stafett/cli";
import { createCountry, startServer, type Country, type NatsServer } from "@stafett/devkit";
import { readSecretFile } from "@stafett/shared";

let dir: string;
let country: Country;
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
  country = await createCountry({ code: "se", municipalities: ["0180"] });
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
