/**
 * A contact point's Desk with a real partner link: two nats-servers joined by the federation
 * leafnode, Malmö's referral crossing it to Norway, and Norway's contact point deciding on it in
 * the browser (Debian's chromium through playwright-core, signed in through a real OpenID
 * provider). Routing to a municipality needs a partner with municipalities, which the local
 * federation does not have (the reference data is Sweden's); accepting on behalf of the country
 * is the decision shown here. Every person is invented.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser } from "playwright-core";
import {
  createCountry,
  LocalCountry,
  samplePersonal,
  startFederation,
  waitFor,
  type Federation,
} from "@stafett/devkit";
import { createLogger, generateSigningKey } from "@stafett/shared";
import type { Gateway } from "@stafett/gateway";
import { TestOidcProvider } from "../support/oidc.js";

const CHROMIUM = "/usr/bin/chromium";
const log = createLogger({
  service: "desk-liaison-test",
  level: process.env.LOG_LEVEL ?? "silent",
});
const LIAISON = "no:liaison";
const MALMO = "se:municipality:1280";

let fed: Federation;
let idp: TestOidcProvider;
let se: LocalCountry;
let no: LocalCountry;
let browser: Browser;
let liaisonUrl: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`no chromium at ${CHROMIUM}: apt-get install -y chromium`);
  fed = await startFederation("no", ["se"]);
  const [seAnchor, noAnchor] = await Promise.all([generateSigningKey(), generateSigningKey()]);
  const seCountry = await createCountry({
    code: "se",
    municipalities: ["1280"],
    anchor: seAnchor,
    partnerAnchors: [{ country: "no", anchors: [noAnchor.publicJwk] }],
  });
  const noCountry = await createCountry({
    code: "no",
    municipalities: [],
    anchor: noAnchor,
    partnerAnchors: [{ country: "se", anchors: [seAnchor.publicJwk] }],
  });
  const user = (cc: string) => {
    const u = fed.users.get(cc);
    if (u === undefined) throw new Error(`no federation user for ${cc}`);
    return { user: u.user, pass: u.password };
  };
  idp = await TestOidcProvider.listen();
  [se, no] = await Promise.all([
    LocalCountry.start({
      country: seCountry,
      municipalities: [],
      natsUrl: fed.server("se").url,
      natsUser: user("se"),
      partnerTrust: { no: noCountry.trustListJws },
      log,
    }),
    // Norway's contact point signs in with its own provider (here the test's).
    LocalCountry.start({
      country: noCountry,
      municipalities: [],
      natsUrl: fed.server("no").url,
      natsUser: user("no"),
      partnerTrust: { se: seCountry.trustListJws },
      log,
      auth: idp.auth,
      desk: (id) => idp.desk(id),
    }),
  ]);
  liaisonUrl = no.liaison?.url ?? "";
  idp.start(new Map([[LIAISON, liaisonUrl]]), [
    { login: "nora", name: "Nora Oppdiktet", org: LIAISON },
  ]);
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
  await se?.stop();
  await no?.stop();
  await idp?.stop();
  await fed?.stop();
});

describe("Desk: a contact point decides on a partner's referral", () => {
  it("Malmö's referral reaches Norway live; its contact point opens the child's data and accepts for the country", async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${liaisonUrl}/desk/`);
    await page.getByRole("link", { name: "Logga in med organisationens inloggning" }).click();
    await page.locator('input[name="login"]').fill("nora");
    await page.locator('input[name="password"]').fill("not-checked");
    await page.locator('button[type="submit"]').click();
    await page.waitForURL(`${liaisonUrl}/desk/`);

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
  });
});
