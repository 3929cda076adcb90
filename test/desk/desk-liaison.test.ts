/**
 * A contact point's Desk with a real partner link: two nats-servers joined by the federation
 * leafnode, Malmö's referral crossing it to Norway, and Norway's contact point deciding on it in
 * the browser (Debian's chromium through playwright-core, signed in through a real OpenID
 * provider), accepting on behalf of the country (Norway has no municipalities in the reference
 * data). The other way, Norway refers a child without naming a municipality and Sweden's contact
 * point routes it to Malmö from its Desk. Every person is invented.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Browser, type Page } from "playwright-core";
import type { LocalCountry } from "@stafett/devkit";
import { samplePersonal, startSwedenNorway, type SwedenNorway, waitFor } from "@stafett/devkit";
import { createLogger } from "@stafett/shared";
import type { Gateway } from "@stafett/gateway";
import { launchChromium, seriousViolations } from "../support/browser.js";
import { TestOidcProvider } from "../support/oidc.js";

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
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await idp?.stop();
  await pair?.stop();
});

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

  it("Norway refers a child to Sweden without a municipality; Sweden's contact point sees it live, opens the child's data and routes it to Malmö", async () => {
    const sara = await signIn(seLiaisonUrl, "sara");
    const noLiaison = no.liaison?.liaison;
    if (noLiaison === undefined) throw new Error("Norway runs no liaison");
    // Norway's contact point names no municipality: Sweden's decides where the child goes.
    const sent = await noLiaison.referAbroad({
      partner: "se",
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_UNACCOMPANIED_MINOR",
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
      personal: samplePersonal(8),
    });
    const id = sent.referralId;
    await waitFor(() => se.liaison?.liaison.state.inbound.get(id)?.status === "pending", {
      timeoutMs: 15_000,
      message: "the partner's referral waits at Sweden's contact point",
    });
    // It arrives in the inbound list without a reload.
    const link = sara.getByRole("link", { name: id.slice(0, 8) });
    await link.waitFor({ timeout: 2_000 });
    expect(await sara.locator("tr", { hasText: id.slice(0, 8) }).innerText()).toContain("Norway");
    expect(await seriousViolations(sara)).toEqual([]);
    await link.click();
    await sara.waitForURL(`${seLiaisonUrl}/desk/inbound/${id}`);
    // The child's data, read through the access audit.
    const child = samplePersonal(8).child as { familyName: string };
    expect(await sara.locator("section").innerText()).toContain(child.familyName);
    expect(await seriousViolations(sara)).toEqual([]);
    const shots = process.env.STAFETT_DESK_SCREENSHOTS;
    if (shots !== undefined && shots !== "")
      await sara.screenshot({ path: join(shots, "liaison-route.png"), fullPage: true });
    expect(se.gateway("1280").gateway.inboxItem(id)).toBeUndefined();
    await sara.getByLabel("Kommun").selectOption({ label: "Malmö" });
    await sara.getByRole("button", { name: "Skicka till kommun" }).click();
    expect(await sara.locator("[role=status]").innerText()).toContain("Klart.");
    await waitFor(() => se.gateway("1280").gateway.inboxItem(id) !== undefined, {
      timeoutMs: 15_000,
      message: "the routed referral in Malmö's inbox",
    });
    expect(se.liaison?.liaison.state.inbound.get(id)?.status).toBe("routed");
    expect(await sara.locator("main dl").first().innerText()).toContain("skickad vidare");
    expect(await sara.getByRole("button", { name: "Skicka till kommun" }).count()).toBe(0);
    // Sara's read of the child's data and her routing are in the liaison's access audit, by person.
    const audit = readFileSync(join(se.runtime("se:liaison").stateDir, "audit.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.referralId === id)
      .map((r) => ({ sub: r.sub, action: r.action }));
    expect(audit.slice(0, 2)).toEqual([
      { sub: "sara", action: "read" },
      { sub: "sara", action: "routed" },
    ]);
    // Once Malmö reports that it holds it, the list names Malmö.
    await waitFor(() => se.liaison?.liaison.state.inbound.get(id)?.heldBy === MALMO, {
      timeoutMs: 15_000,
      message: "Sweden's contact point hears that Malmö holds it",
    });
    await sara.goto(`${seLiaisonUrl}/desk/`);
    const row = sara.locator("tr", { hasText: id.slice(0, 8) });
    await row.getByText("skickad vidare → Malmö").waitFor({ timeout: 5_000 });
    expect(await seriousViolations(sara)).toEqual([]);
  });
});
