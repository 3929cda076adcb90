/**
 * A built service runs outside the checkout. `npm run build`, then the files `npm pack` would
 * ship of @stafett/gateway and @stafett/shared are copied into a temporary directory outside
 * the repository (their third-party dependencies linked from the installed node_modules), and
 * that copy's `dist/main.js` runs with the README's environment, its working directory that
 * temporary directory, against a real nats-server. Its API answers: the OpenAPI document it
 * serves, a referral it validates against the packaged reference data, seals, signs and
 * publishes. Nothing it reads may come from the repository's data/ or schemas/.
 */
import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  LocalCountry,
  samplePersonal,
  spawnService,
  writeServiceFiles,
  type ServiceProcess,
} from "@stafett/devkit";
import { createLogger } from "@stafett/shared";
import { buildOnce, install as installPacked, packList, root } from "../support/build.js";

const log = createLogger({ service: "built-service", level: process.env.LOG_LEVEL ?? "silent" });
const ORG = "se:municipality:0180";
const SHIPPED = ["services/shared", "services/gateway"];

let dir: string;
let se: LocalCountry | undefined;
let gateway: ServiceProcess | undefined;
let token: string;
let packed: { name: string; files: string[] }[];

/** DIR/node_modules: the shipped packages' packed files, and links to everything else. */
function install(into: string): void {
  installPacked(into, SHIPPED, packed);
}

beforeAll(async () => {
  await buildOnce();
  packed = packList(SHIPPED);
  dir = realpathSync(mkdtempSync(join(tmpdir(), "stafett-built-")));
  install(dir);
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log, servicesOff: true });
  const jwksFile = join(dir, "jwks.json");
  writeFileSync(jwksFile, JSON.stringify(se.tokens.config.jwks));
  const env = writeServiceFiles(
    se.country,
    ORG,
    join(dir, "etc"),
    se.natsUrl,
    { jwksFile, issuer: se.tokens.config.issuer, audience: se.tokens.config.audience },
    se.nkeySeed(ORG),
  );
  gateway = spawnService("gateway", env, {
    fromDist: true,
    packageDir: join(dir, "node_modules/@stafett/gateway"),
    cwd: dir,
  });
  await gateway.ready;
  token = await se.tokens.mint(ORG);
}, 180_000);

afterAll(async () => {
  await gateway?.stop();
  await se?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

async function call(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${gateway?.url() ?? ""}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, text: await res.text() };
}

describe("the built gateway, packed and run outside the checkout", () => {
  it("ships only package.json and dist/, and runs from a copy outside the repository", () => {
    expect(packed.map((p) => p.name)).toEqual(["@stafett/shared", "@stafett/gateway"]);
    for (const p of packed) {
      expect(p.files.filter((f) => f !== "package.json" && !f.startsWith("dist/"))).toEqual([]);
    }
    expect(packed[0]?.files).toEqual(
      expect.arrayContaining([
        "dist/mod.js",
        "dist/gen/validators.cjs",
        "dist/gen/reference-data.js",
        "dist/gen/api-documents.js",
      ]),
    );
    expect(packed[1]?.files).toEqual(expect.arrayContaining(["dist/main.js", "dist/mod.js"]));
    expect(relative(root, dir).startsWith("..")).toBe(true);
    expect(realpathSync(join(dir, "node_modules/@stafett/shared/dist/mod.js"))).toBe(
      join(dir, "node_modules/@stafett/shared/dist/mod.js"),
    );
  });

  it("is live", async () => {
    const res = await call("GET", "/healthz");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ ok: true });
  });

  it("serves the published OpenAPI document", async () => {
    const res = await call("GET", "/openapi.yaml");
    expect(res.status).toBe(200);
    expect(res.text).toBe(readFileSync(join(root, "schemas/api/openapi.yaml"), "utf8"));
  });

  it("opens a referral: validated, checked against the reference data, sealed, published", async () => {
    const opened = await call("POST", "/v1/referrals", {
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      destination: { country: "se", municipality: "1480" },
      personal: samplePersonal(),
    });
    expect(opened.status, opened.text).toBe(202);
    const { referralId, addressee } = JSON.parse(opened.text) as {
      referralId: string;
      addressee: string;
    };
    // Göteborg (1480) is in Region Väst: the reference data routed it to that hub.
    expect(addressee).toBe("se:hub:vast");
    const sent = await call("GET", `/v1/referrals/${referralId}`);
    expect(sent.status).toBe(200);
    expect(JSON.parse(sent.text)).toMatchObject({
      referralId,
      destination: { country: "se", municipality: "1480" },
    });
  });

  it("refuses a municipality that the reference data does not know", async () => {
    const res = await call("POST", "/v1/referrals", {
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      destination: { country: "se", municipality: "9999" },
      personal: samplePersonal(),
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ code: "ERR_UNKNOWN_MUNICIPALITY" });
  });
});
