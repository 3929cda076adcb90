/**
 * A contact point's Desk with a real partner link: two nats-servers joined by the federation
 * leafnode, Malmö's referral crossing it to Norway, and Norway's contact point deciding on it in
 * the browser (Debian's chromium through playwright-core, signed in through a real OpenID
 * provider). Routing to a municipality needs a partner with municipalities, which the local
 * federation does not have (the reference data is Sweden's); accepting on behalf of the country
 * is the decision shown here. Every person is invented.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";
import type { LocalCountry } from "@stafett/devkit";
import { samplePersonal, startSwedenNorway, type SwedenNorway, waitFor } from "@stafett/devkit";
import { createLogger } from "@stafett/shared";
import type { Gateway } from "@stafett/gateway";
import { TestOidcProvider } from "../support/oidc.js";

const CHROMIUM = "/usr/bin/chromium";
const log = createLogger({
  service: "desk-liaison-test",
  level: process.env.LOG_LEVEL ?? "silent",
});
const LIAISON = "no:liaison";
const MALMO = "se:municipality:1280";

let idp: TestOidcProvider;
let pair: SwedenNorway;
let se: LocalCountry;
let no: LocalCountry;
let browser: Browser;
let liaisonUrl: string;
let seLiaisonUrl: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium`);
  idp = await TestOidcProvider.listen();
  pair = await startSwedenNorway({
    log,
    municipalities: ["1280"],
    // Both countries' people sign in with the test's provider (each its own in production).
    extras: () => ({ auth: idp.auth, desk: (id) => idp.desk(id) }),
  });
  ({ se, no } = pair);
  liaisonUrl = no.liaison?.url ?? "";
  seLiaisonUrl = se.liaison?.url ?? "";
  idp.start(
    new Map([
      [LIAISON, liaisonUrl],
      ["se:liaison", seLiaisonUrl],
    ]),
    [
      { login: "nora", name: "Nora Oppdiktet", org: LIAISON },
      { login: "sara", name: "Sara Påhittad", org: "se:liaison" },
    ],
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await idp?.stop();
  await pair?.stop();
});

async function seriousViolations(page: Page): Promise<string[]> {
  const result = await new AxeBuilder({ page })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
    .analyze();
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.nodes.length})`);
}

async function signIn(url: string, login: string): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${url}/desk/`);
  await page.getByRole("link", { name: "Logga in med organisationens inloggning" }).click();
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("not-checked");
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${url}/desk/`);
  return page;
}

describe("Desk: a contact point decides on a partner's referral", () => {
  it("Malmö's referral reaches Norway live; its contact point opens the child's data and accepts; Sweden's sees the answer", async () => {
    const page = await signIn(liaisonUrl, "nora");
    const sara = await signIn(seLiaisonUrl, "sara");

    const { referralId: id } = await se.gateway("1280").gateway.openReferral({
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_TRAFFICKING_SUSPECTED",
      destination: { country: "no" },
      personal: samplePersonal(6),
    } as Parameters<Gateway["openReferral"]>[0]);
    await waitFor(() => no.liaison?.liaison.state.inbound.get(id)?.status === "pending", {
      timeoutMs: 15_000,
      message: "the partner's referral waits at Norway's contact point",
    });
    const link = page.getByRole("link", { name: id.slice(0, 8) });
    await link.waitFor({ timeout: 2_000 });
    expect(await page.locator("tbody").innerText()).toContain("Malmö");
    await link.click();
    expect(await page.locator("section").innerText()).toContain("Juni");
    await page.getByRole("button", { name: "Ta emot för landet" }).click();
    expect(await page.locator("[role=status]").innerText()).toContain("Klart.");
    await waitFor(
      () =>
        se
          .gateway("1280")
          .gateway.referral(id)
          ?.timeline.some((e) => e.type === "accepted" && e.by === LIAISON) === true,
      { timeoutMs: 15_000, message: "Malmö sees Norway's acceptance" },
    );
    expect(
      se
        .gateway("1280")
        .gateway.referral(id)
        ?.timeline.map((e) => e.type),
    ).toContain("accepted");
    expect(no.liaison?.liaison.state.inbound.get(id)?.origin).toBe(MALMO);
    // Sweden's contact point sees what left the country, and Norway's answer, without reloading.
    await waitFor(() => se.liaison?.liaison.state.watched.get(id)?.answer === "accepted", {
      timeoutMs: 15_000,
      message: "Sweden's liaison has Norway's answer",
    });
    const row = sara.locator("tr", { hasText: id.slice(0, 8) });
    await row.getByText("Tagen emot").waitFor({ timeout: 2_000 });
    expect(await row.innerText()).toContain("Norway");
    expect(await seriousViolations(sara)).toEqual([]);
    const shots = process.env.STAFETT_DESK_SCREENSHOTS;
    if (shots !== undefined && shots !== "")
      await sara.screenshot({ path: join(shots, "liaison-outbound.png"), fullPage: true });
  });
});
