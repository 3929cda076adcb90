import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Io } from "../io.js";
import { federationAddCountry, federationConfig, federationHubConfigFile } from "./infra.js";

let dir: string;
const io: Io = {
  out: () => undefined,
  err: () => undefined,
  usage: () => 2,
  stdin: () => Promise.resolve(new Uint8Array()),
  stdoutBytes: () => undefined,
};
const mode = (file: string) => statSync(file).mode & 0o777;

/** Every file under `root`, relative to it. */
const files = (root: string): string[] =>
  readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(root.length + 1))
    .sort();

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "stafett-cli-infra-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function hub(): { federation: string; out: string; hubConfig: string } {
  const federation = join(dir, "federation.json");
  const out = join(dir, "hub");
  writeFileSync(
    federation,
    JSON.stringify({ members: ["se", "no"], partnerships: [["se", "no"]] }),
  );
  federationHubConfigFile({ federation, out }, io);
  return { federation, out, hubConfig: join(out, "nats-hub.json") };
}

describe("federation add-country", () => {
  it.each(["x/../../../escaped", "../se", "SE", "*", ">", "se.x", ""])(
    "refuses the country %j before it writes anything",
    async (country) => {
      const h = hub();
      const before = files(dir);
      const config = readFileSync(h.hubConfig, "utf8");
      const federation = readFileSync(h.federation, "utf8");
      await expect(
        federationAddCountry({ ...h, country, partners: "se" }, io),
      ).rejects.toMatchObject({ code: "ERR_CONFIG_INVALID" });
      expect(files(dir)).toEqual(before);
      expect(existsSync(join(dir, "escaped.password"))).toBe(false);
      expect(readFileSync(h.hubConfig, "utf8")).toBe(config);
      expect(readFileSync(h.federation, "utf8")).toBe(federation);
    },
  );

  it.each(["se,*", "se,se.x", "dk", "se,xx"])(
    "refuses the partners %j (not members, or the country itself) before it writes anything",
    async (partners) => {
      const h = hub();
      const before = files(dir);
      await expect(
        federationAddCountry({ ...h, country: "dk", partners }, io),
      ).rejects.toMatchObject({ code: "ERR_CONFIG_INVALID" });
      expect(files(dir)).toEqual(before);
    },
  );

  it.each(["null", "[]", '{"members": ["se", "*"], "partnerships": []}'])(
    "refuses the description %s",
    async (text) => {
      const h = hub();
      writeFileSync(h.federation, text);
      await expect(
        federationAddCountry({ ...h, country: "dk", partners: "se" }, io),
      ).rejects.toMatchObject({ code: "ERR_CONFIG_INVALID" });
    },
  );

  it("refuses an --out without the members' link passwords, instead of giving them new ones", async () => {
    const h = hub();
    const config = readFileSync(h.hubConfig, "utf8");
    const elsewhere = join(dir, "elsewhere");
    await expect(
      federationAddCountry({ ...h, out: elsewhere, country: "dk", partners: "se" }, io),
    ).rejects.toMatchObject({ code: "ERR_CONFIG_INVALID", field: "--out" });
    expect(readFileSync(h.hubConfig, "utf8")).toBe(config);
    expect(existsSync(elsewhere)).toBe(false);
  });

  it("leaves the hub's config, which holds every member's password, readable by its owner only", async () => {
    const h = hub();
    // The running config as an operator's tooling may have left it.
    const { chmodSync } = await import("node:fs");
    chmodSync(h.hubConfig, 0o644);
    await federationAddCountry({ ...h, country: "dk", partners: "se" }, io);
    expect(readFileSync(h.hubConfig, "utf8")).toContain(
      readFileSync(join(h.out, "links", "hub-dk.password"), "utf8").trim(),
    );
    expect(mode(h.hubConfig)).toBe(0o600);
  });
});

describe("federation config: partner names become file names", () => {
  it.each([
    ["--accept-from", { acceptFrom: "no,../../escaped" }],
    ["--connect-to", { connectTo: "../x=nats-leaf://127.0.0.1:7422" }],
  ])(
    "refuses %s with anything but country codes, before writing anything",
    async (field, links) => {
      const out = join(dir, "out");
      await expect(
        federationConfig(
          {
            country: "se",
            out,
            storeDir: join(dir, "store"),
            trust: "none",
            anchor: "none",
            ...links,
          },
          io,
        ),
      ).rejects.toMatchObject({ code: "ERR_CONFIG_INVALID", reason: "format", field });
      expect(existsSync(out)).toBe(false);
      expect(files(dir)).toEqual([]);
    },
  );
});
