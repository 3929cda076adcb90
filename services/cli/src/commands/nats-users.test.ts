import {
  chmodSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fromSeed } from "@nats-io/nkeys";
import { createCountry, type Country } from "@stafett/devkit";
import {
  generateSigningKey,
  accountOf,
  organisationImports,
  provisionerPermissions,
  STAFETT_ACCOUNT,
} from "@stafett/shared";
import { runCli } from "../cli.js";
import type { Io } from "../io.js";
import { natsUsers, seedFileName } from "./nats-users.js";

let country: Country;
let dir: string;
let trustFile: string;
let anchorFile: string;

beforeAll(async () => {
  country = await createCountry({ code: "se", municipalities: ["0180", "1480"] });
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "stafett-nats-users-"));
  trustFile = join(dir, "trust-list.jws");
  anchorFile = join(dir, "anchor.pub.jwk.json");
  writeFileSync(trustFile, `${country.trustListJws}\n`);
  writeFileSync(anchorFile, JSON.stringify(country.anchorPublicJwk));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

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

interface AccountsFile {
  accounts: Record<
    string,
    { jetstream?: unknown; users: { nkey: string; permissions?: unknown }[]; imports?: unknown }
  >;
}

const readAccounts = (out: string): AccountsFile =>
  JSON.parse(readFileSync(join(out, "accounts.json"), "utf8")) as AccountsFile;
const publicKeyOf = (file: string): string =>
  fromSeed(new TextEncoder().encode(readFileSync(file, "utf8").trim())).getPublicKey();
const orgs = () => country.trustList.organisations.map((o) => o.id);

describe("stafett nats users", () => {
  it("writes one 0600 seed per organisation and the provisioner, and accounts.json with an account each", async () => {
    const out = join(dir, "nats");
    expect(await natsUsers({ trust: trustFile, anchor: anchorFile, out }, testIo())).toBe(0);
    const names = [...orgs(), "provisioner"].map(seedFileName);
    expect(readdirSync(out).sort()).toEqual([...names, "accounts.json"].sort());
    for (const name of names) {
      expect({ name, mode: statSync(join(out, name)).mode & 0o777 }).toEqual({ name, mode: 0o600 });
      expect(publicKeyOf(join(out, name))).toMatch(/^U[A-Z2-7]{55}$/);
    }
    const accounts = readAccounts(out).accounts;
    // The provisioner is the only user of the account that holds the streams.
    const stafett = accounts[STAFETT_ACCOUNT];
    expect(stafett?.users).toEqual([
      { nkey: publicKeyOf(join(out, "provisioner.nk")), permissions: provisionerPermissions("se") },
    ]);
    // Each organisation is the only user of its own account, which imports what its role needs.
    for (const org of orgs()) {
      const account = accounts[accountOf(org)];
      expect(account?.users).toEqual([{ nkey: publicKeyOf(join(out, seedFileName(org))) }]);
      // JetStream of its own only for the clock stream: memory, one stream, no file storage.
      expect(account?.jetstream).toEqual({
        max_mem: 65_536,
        max_file: 0,
        max_streams: 1,
        max_consumers: 1,
      });
      expect(account?.imports).toEqual(organisationImports(org, country.trustList));
    }
    const all = Object.values(accounts).flatMap((a) => a.users.map((u) => u.nkey));
    expect(new Set(all).size).toBe(orgs().length + 1);
  });

  it("reuses the seeds on a rerun, so the users and accounts.json stay the same", async () => {
    const out = join(dir, "nats");
    await natsUsers({ trust: trustFile, anchor: anchorFile, out }, testIo());
    const seeds = new Map(readdirSync(out).map((f) => [f, readFileSync(join(out, f), "utf8")]));
    const io = testIo();
    expect(await natsUsers({ trust: trustFile, anchor: anchorFile, out }, io)).toBe(0);
    expect(new Map(readdirSync(out).map((f) => [f, readFileSync(join(out, f), "utf8")]))).toEqual(
      seeds,
    );
    expect(io.text()).toContain(`0 new, ${orgs().length + 1} kept`);
  });

  it("refuses a trust list that the given anchor did not sign", async () => {
    const other = await generateSigningKey();
    writeFileSync(anchorFile, JSON.stringify(other.publicJwk));
    await expect(
      natsUsers({ trust: trustFile, anchor: anchorFile, out: join(dir, "nats") }, testIo()),
    ).rejects.toMatchObject({ code: "ERR_TRUST_LIST_INVALID", reason: "unknown_anchor" });
  });

  it("refuses to reuse a seed that others can read", async () => {
    const out = join(dir, "nats");
    await natsUsers({ trust: trustFile, anchor: anchorFile, out }, testIo());
    chmodSync(join(out, "provisioner.nk"), 0o644);
    await expect(
      natsUsers({ trust: trustFile, anchor: anchorFile, out }, testIo()),
    ).rejects.toMatchObject({ code: "ERR_KEY_INVALID", reason: "permissions" });
  });

  it("refuses a seed file that holds something else", async () => {
    const out = join(dir, "nats");
    await natsUsers({ trust: trustFile, anchor: anchorFile, out }, testIo());
    writeFileSync(join(out, "provisioner.nk"), "not a seed\n", { mode: 0o600 });
    await expect(
      natsUsers({ trust: trustFile, anchor: anchorFile, out }, testIo()),
    ).rejects.toMatchObject({ code: "ERR_KEY_INVALID", reason: "not_seed" });
  });

  it("is the `nats users` command, which needs --trust, --anchor and --out", async () => {
    const out = join(dir, "cli");
    expect(
      await runCli(
        ["nats", "users", "--trust", trustFile, "--anchor", anchorFile, "--out", out],
        testIo(),
      ),
    ).toBe(0);
    expect(Object.keys(readAccounts(out).accounts)).toHaveLength(orgs().length + 1);
    const io = testIo();
    expect(await runCli(["nats", "users", "--trust", trustFile, "--anchor", anchorFile], io)).toBe(
      2,
    );
    expect(io.text()).toContain("--out is required");
  });
});
