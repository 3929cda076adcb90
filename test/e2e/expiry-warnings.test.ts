/**
 * Expiry warnings: a trust list (or a key) that expires within the warning time shows in the
 * three places an operator looks: the log (a line with its code), the metrics
 * (`stafett_expiry_warnings`, seconds to expiry) and readiness (503 naming the check). A newer
 * list without the problem clears all three, without a restart.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCountry, LocalCountry, waitFor, waitForValue } from "@stafett/devkit";
import {
  buildTrustList,
  Bus,
  createLogger,
  publishTrustList,
  signTrustList,
  type TrustList,
} from "@stafett/shared";
import { scrape } from "../support/prometheus.js";

const HOUR = 3_600_000;
const GOTEBORG = "se:municipality:1480";
const lines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString().split("\n").filter(Boolean))
      lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});
const log = createLogger({ service: "expiry", level: "info" }, sink);
let se: LocalCountry;

beforeAll(async () => {
  // The list expires in two hours; services warn a day ahead.
  const country = await createCountry({
    code: "se",
    municipalities: ["0180", "1480"],
    trustNotAfter: new Date(Date.now() + 2 * HOUR),
  });
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    country,
    log,
    expiryWarningMs: 24 * HOUR,
  });
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

interface ReadyBody {
  failing?: string[];
  checks: Record<string, { ok: boolean; code?: string; reason?: string; message?: string }>;
}

async function readyz(url: string): Promise<{ status: number; body: ReadyBody }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: (await res.json()) as ReadyBody };
}

async function publish(version: number, change: (list: TrustList) => TrustList): Promise<void> {
  const list = change(
    buildTrustList({
      country: "se",
      version,
      policy: se.country.trustList.policy,
      organisations: se.country.trustList.organisations,
      notAfter: new Date(Date.now() + 90 * 24 * HOUR),
    }),
  );
  const bus = await Bus.connect(
    { servers: [se.natsUrl], name: "coordinator-desk", connection: se.admin },
    log,
  );
  try {
    await publishTrustList(bus.nc, "se", await signTrustList(list, se.country.anchor));
  } finally {
    await bus.close();
  }
  await waitFor(() => [...se.gateways.values()].every((g) => g.gateway.trust.version === version), {
    timeoutMs: 10_000,
    message: `version ${version} in force`,
  });
}

describe("a trust list that expires soon", () => {
  it("is warned about in the log, the metrics and readiness, on every service", async () => {
    const urls = [...se.gateways.values(), ...se.hubs.values()].map((s) => ({
      api: s.url,
      metrics: s.metricsUrl ?? "",
    }));
    expect(urls.length).toBe(4);
    for (const { api, metrics } of urls) {
      const { status, body } = await readyz(api);
      expect(status).toBe(503);
      expect(body.failing).toEqual(["trust"]);
      expect(body.checks.trust).toMatchObject({ code: "ERR_EXPIRING", reason: "trust_list" });
      expect(body.checks.trust?.message).toMatch(
        /the se trust list \(version 1\) expires at .* in 2 h/,
      );
      const m = await scrape(metrics);
      const left = m.value("stafett_trust_list_time_to_expiry_seconds", { country: "se" }) ?? 0;
      expect(left).toBeGreaterThan(HOUR / 1_000);
      expect(left).toBeLessThanOrEqual((2 * HOUR) / 1_000);
      expect(m.value("stafett_expiry_warnings", { what: "trust_list" })).toBe(1);
      expect(m.value("stafett_readiness_check", { check: "trust" })).toBe(0);
      expect(m.value("stafett_ready")).toBe(0);
    }
    // Each service logged it as it started, with the code.
    const warned = lines.filter(
      (l) => l.msg === "readiness check failing" && l.code === "ERR_EXPIRING",
    );
    expect(new Set(warned.map((l) => l.org))).toEqual(
      new Set([...se.gateways.keys(), ...se.hubs.keys(), "coordinator", "liaison"]),
    );
    expect(warned.every((l) => l.reason === "trust_list" && l.check === "trust")).toBe(true);
  });

  it("a re-signed list, valid for 90 days, clears the warning everywhere without a restart", async () => {
    await publish(2, (l) => l);
    for (const s of [...se.gateways.values(), ...se.hubs.values()]) {
      await waitFor(async () => (await readyz(s.url)).status === 200, {
        timeoutMs: 10_000,
        message: "ready once the new list is in force",
      });
      const m = await scrape(s.metricsUrl ?? "");
      expect(m.value("stafett_expiry_warnings", { what: "trust_list" })).toBe(0);
      expect(m.value("stafett_trust_list_version", { country: "se" })).toBe(2);
    }
    expect(lines.some((l) => l.msg === "readiness check passes again" && l.check === "trust")).toBe(
      true,
    );
  });

  it("a key that expires soon is warned about by the service that holds it", async () => {
    const soon = new Date(Date.now() + HOUR).toISOString();
    await publish(3, (l) => ({
      ...l,
      organisations: l.organisations.map((o) =>
        o.id === GOTEBORG
          ? { ...o, keys: o.keys.map((k) => (k.use === "sig" ? { ...k, notAfter: soon } : k)) }
          : o,
      ),
    }));
    const goteborg = se.gateway("1480");
    const body = await waitForValue(
      async () => {
        const r = await readyz(goteborg.url);
        return r.status === 503 ? r.body : undefined;
      },
      { timeoutMs: 10_000, message: "Göteborg to warn about its signing key" },
    );
    expect(body.failing).toEqual(["keys"]);
    expect(body.checks.keys).toMatchObject({ code: "ERR_EXPIRING", reason: "signing_key" });
    const m = await scrape(goteborg.metricsUrl ?? "");
    expect(m.value("stafett_expiry_warnings", { what: "signing_key" })).toBe(1);
    const left = m.value("stafett_key_time_to_expiry_seconds", { use: "sig" }) ?? 0;
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(HOUR / 1_000);
    // Stockholm's keys are fine.
    expect((await readyz(se.gateway("0180").url)).status).toBe(200);
    expect(
      lines.some(
        (l) =>
          l.org === GOTEBORG &&
          l.msg === "readiness check failing" &&
          l.code === "ERR_EXPIRING" &&
          l.reason === "signing_key",
      ),
    ).toBe(true);
  });
});
