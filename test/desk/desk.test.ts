/**
 * The Desk in a real browser: Debian's chromium driven by playwright-core, against real services
 * on a real nats-server, officers signing in through a real OpenID provider (test/support/oidc.ts).
 * One browser and one country serve every test of the file; each officer has a browser context
 * of their own (their own cookies), as on their own machine.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Browser, type BrowserContext, type Page } from "playwright-core";
import { LocalCountry, samplePersonal, waitFor } from "@stafett/devkit";
import { createLogger } from "@stafett/shared";
import type { Gateway } from "@stafett/gateway";
import { launchChromium, seriousViolations } from "../support/browser.js";
import { TestOidcProvider, type Person } from "../support/oidc.js";

const log = createLogger({ service: "desk-test", level: process.env.LOG_LEVEL ?? "silent" });

const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
const VAST = "se:hub:vast";
const COORDINATOR = "se:coordinator";
const LIAISON = "se:liaison";
const PEOPLE: readonly Person[] = [
  { login: "anna", name: "Anna Påhittad", org: STOCKHOLM },
  { login: "goran", name: "Göran Exempel", org: GOTEBORG },
  { login: "vera", name: "Vera Provlund", org: VAST },
  { login: "nils", name: "Nils Fiktiv", org: COORDINATOR },
  { login: "lina", name: "Lina Låtsas", org: LIAISON },
];

/**
 * Within this, once the service itself knows of a change, an open page shows it without a reload
 * (the service's change signal reaches the page on its event stream, and the page refreshes its
 * live part). Each check first waits for the
 * service's state, so the bound is the Desk's alone, not the broker's delivery.
 */
const LIVE_MS = 2_000;

/** Waits for the service to know something, then gives the page LIVE_MS to show it. */
async function shownLive(known: () => boolean, shown: () => Promise<void>, what: string) {
  await waitFor(known, { timeoutMs: 15_000, message: what });
  await shown();
}

let idp: TestOidcProvider;
let se: LocalCountry;
let browser: Browser;
const contexts: BrowserContext[] = [];
let stockholmUrl: string;
let goteborgUrl: string;
let vastUrl: string;
let coordinatorUrl: string;

beforeAll(async () => {
  idp = await TestOidcProvider.listen();
  se = await LocalCountry.start({
    municipalities: ["0180", "1480"],
    log,
    tickMs: 200,
    auth: idp.auth,
    desk: (id) => idp.desk(id),
  });
  stockholmUrl = se.gateway("0180").url;
  goteborgUrl = se.gateway("1480").url;
  vastUrl = se.hub("vast").url;
  coordinatorUrl = se.coordinator?.url ?? "";
  idp.start(
    new Map([
      [STOCKHOLM, stockholmUrl],
      [GOTEBORG, goteborgUrl],
      [VAST, vastUrl],
      [COORDINATOR, coordinatorUrl],
      [LIAISON, se.liaison?.url ?? ""],
    ]),
    PEOPLE,
  );
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await se?.stop();
  await idp?.stop();
});

async function officer(): Promise<BrowserContext> {
  const c = await browser.newContext();
  contexts.push(c);
  return c;
}

/** Signs in at a Desk through the organisation's OpenID provider; the page ends on the Desk's home. */
async function signIn(context: BrowserContext, deskUrl: string, login: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${deskUrl}/desk/`);
  await page.getByRole("link", { name: "Logga in med organisationens inloggning" }).click();
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill("not-checked");
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${deskUrl}/desk/`);
  return page;
}

/**
 * Screenshots for docs/desk.md, written only when STAFETT_DESK_SCREENSHOTS names a directory
 * (`STAFETT_DESK_SCREENSHOTS=docs/desk npx vitest run test/desk`); every person and child in
 * them is invented.
 */
const SCREENSHOTS = process.env.STAFETT_DESK_SCREENSHOTS;

async function shot(page: Page, name: string): Promise<void> {
  if (SCREENSHOTS === undefined || SCREENSHOTS === "") return;
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

async function fillReferralForm(page: Page, destination: string): Promise<void> {
  await page.getByLabel("Mottagare").selectOption(destination);
  await page.getByLabel("Brådska").selectOption("URGENCY_HIGH");
  await page.getByLabel("Skäl", { exact: true }).selectOption("REASON_CATEGORY_MISSING");
  await page.getByLabel("Förnamn").fill("Alva");
  await page.getByLabel("Efternamn").fill("Testsson");
  await page.getByLabel("Uppskattad ålder (år)").fill("14");
  await page.getByLabel("Kön").selectOption("female");
  await page.getByLabel("Beskrivning").fill("Syntetisk testperson, röd ryggsäck.");
  await page.getByLabel("Senast känd plats").fill("Centralstationen (påhittad)");
  await page.getByLabel("Kommentar om barnets åsikt").fill("Kunde inte nås före överlämningen.");
  await page.getByLabel("Rättslig grund").fill("SoL 2001:453 12 kap. 10 §");
  await page.getByLabel("Kontaktenhet").fill("Mottagningsenheten (test)");
  await page.getByLabel("Kontaktens e-post").fill("mottagning@example.org");
}

describe("Desk: a referral from Stockholm to Göteborg, in the browser", () => {
  let anna: Page;
  let vera: Page;
  let goran: Page;
  let referralId: string;
  const violations: string[] = [];

  it("the officers sign in with their organisation's OpenID provider", async () => {
    anna = await signIn(await officer(), stockholmUrl, "anna");
    vera = await signIn(await officer(), vastUrl, "vera");
    goran = await signIn(await officer(), goteborgUrl, "goran");
    expect(await anna.locator("header").innerText()).toContain("Anna Påhittad");
    expect(await vera.locator("h1").innerText()).toBe("Hänvisningar i regionen");
    expect(await goran.locator("h1").innerText()).toBe("Inkorg");
  });

  it("the form shows every problem next to its field, by the API's schema", async () => {
    await anna.goto(`${stockholmUrl}/desk/new`);
    violations.push(...(await seriousViolations(anna)));
    await anna.getByRole("button", { name: "Skicka hänvisning" }).click();
    expect(await anna.locator("[role=alert]").first().innerText()).toContain("Formuläret har fel");
    for (const field of ["destination", "urgency", "reason", "legalBasis", "contactEmail"]) {
      await expect(anna.locator(`#f-${field}`).getAttribute("aria-invalid")).resolves.toBe("true");
      expect(await anna.locator(`#f-${field}-problem`).innerText()).toBe("Fältet måste fyllas i.");
    }
    await shot(anna, "municipality-new-referral");
    violations.push(...(await seriousViolations(anna)));
  });

  it("Stockholm opens it in the form; Väst sees it arrive without reloading and opens the child's data", async () => {
    await vera.goto(`${vastUrl}/desk/`);
    await goran.goto(`${goteborgUrl}/desk/`);
    await fillReferralForm(anna, "1480");
    await anna.getByRole("button", { name: "Skicka hänvisning" }).click();
    await anna.waitForURL(/\/desk\/sent\/[0-9a-f-]{36}$/);
    referralId = anna.url().split("/").pop() ?? "";
    const short = referralId.slice(0, 8);

    const link = vera.getByRole("link", { name: short });
    await shownLive(
      () => se.hub("vast").hub.state.referrals.has(referralId),
      () => link.waitFor({ timeout: LIVE_MS }),
      "Väst has the referral",
    );
    violations.push(...(await seriousViolations(vera)));
    await shot(vera, "hub-referrals");
    await link.click();
    await vera.waitForURL(`${vastUrl}/desk/referrals/${referralId}`);
    expect(await vera.locator("section").innerText()).toContain("Alva");
    violations.push(...(await seriousViolations(vera)));
    await shot(vera, "hub-referral");
  });

  it("a Göteborg officer accepts; Stockholm sees 'accepted' in the timeline without reloading", async () => {
    const link = goran.getByRole("link", { name: referralId.slice(0, 8) });
    await shownLive(
      () => se.gateway("1480").gateway.inboxItem(referralId) !== undefined,
      () => link.waitFor({ timeout: LIVE_MS }),
      "Göteborg has the referral",
    );
    violations.push(...(await seriousViolations(goran)));
    await shot(goran, "municipality-inbox");
    await link.click();
    const detail = await goran.waitForURL(`${goteborgUrl}/desk/inbox/${referralId}`);
    void detail;
    expect(await goran.locator("section").innerText()).toContain("Testsson");
    violations.push(...(await seriousViolations(goran)));
    await shot(goran, "municipality-inbox-item");
    await goran.getByRole("button", { name: "Ta emot" }).click();
    expect(await goran.locator("[role=status]").innerText()).toContain("Klart.");

    // Anna's page was loaded before the answer; only the live script can show it.
    await shownLive(
      () =>
        se
          .gateway("0180")
          .gateway.referral(referralId)
          ?.timeline.some((e) => e.type === "accepted") === true,
      () =>
        anna.locator("ol.timeline").getByText("mottagen av kommun").waitFor({ timeout: LIVE_MS }),
      "Stockholm knows of the acceptance",
    );
    violations.push(...(await seriousViolations(anna)));
    await shot(anna, "municipality-sent-timeline");
  });

  it("every read of the child's data from the Desk is in the service's access audit, by person", async () => {
    const records = (org: string) =>
      readFileSync(join(se.runtime(org).stateDir, "audit.jsonl"), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((r) => r.referralId === referralId)
        .map((r) => ({ sub: r.sub, name: r.name, action: r.action }));
    expect(records(VAST)).toEqual([{ sub: "vera", name: "Vera Provlund", action: "read" }]);
    expect(records(GOTEBORG)).toEqual([
      { sub: "goran", name: "Göran Exempel", action: "read" },
      { sub: "goran", name: "Göran Exempel", action: "accepted" },
      // The page after the decision shows the item again: another read, recorded again.
      { sub: "goran", name: "Göran Exempel", action: "read" },
    ]);
    expect(records(STOCKHOLM)).toEqual([{ sub: "anna", name: "Anna Påhittad", action: "opened" }]);
  });

  it("every page passes axe-core without a serious or critical violation, in Swedish and English", async () => {
    for (const page of [anna, goran]) {
      await page.getByRole("link", { name: "English" }).click();
      await page.waitForLoadState();
      expect(await page.locator("html").getAttribute("lang")).toBe("en");
      violations.push(...(await seriousViolations(page)));
    }
    await anna.goto(`${stockholmUrl}/desk/sent`);
    violations.push(...(await seriousViolations(anna)));
    await anna.goto(`${stockholmUrl}/desk/new`);
    violations.push(...(await seriousViolations(anna)));
    await anna.getByRole("link", { name: "Svenska" }).click();
    await anna.waitForLoadState();
    expect(await anna.locator("html").getAttribute("lang")).toBe("sv");
    expect(violations).toEqual([]);
    // axe-core takes seconds a page on two busy cores: 25 s were seen with other suites running.
  }, 90_000);

  it("a page with the child's data is never cacheable and has a strict CSP", async () => {
    const res = await goran.goto(`${goteborgUrl}/desk/inbox/${referralId}`);
    expect(res?.status()).toBe(200);
    const headers = res?.headers() ?? {};
    expect(headers["cache-control"]).toBe("no-store");
    expect(headers["content-security-policy"]).toContain("default-src 'none'");
    expect(headers["content-security-policy"]).toContain("script-src 'self'");
    expect(await goran.locator("section").innerText()).toContain("Alva");
  });

  it("an officer cannot reach another municipality's items by editing the URL", async () => {
    // Göteborg's inbox item, asked for at Stockholm's Desk: Stockholm's API has no such item.
    const own = await anna.goto(`${stockholmUrl}/desk/inbox/${referralId}`);
    expect(own?.status()).toBe(404);
    expect(await anna.content()).not.toContain("Alva");
    // Stockholm's session means nothing at Göteborg's Desk: sent to sign in, no data.
    const other = await anna.goto(`${goteborgUrl}/desk/inbox/${referralId}`);
    expect(other?.url()).toBe(`${goteborgUrl}/desk/signin`);
    expect(await anna.content()).not.toContain("Alva");
    // And a Stockholm person signing in at Göteborg's Desk is refused by the org claim.
    const page = await anna.context().newPage();
    await page.goto(`${goteborgUrl}/desk/signin`);
    await page.getByRole("link", { name: "Logga in med organisationens inloggning" }).click();
    await page.waitForURL(/\/desk\/signin\/callback/);
    expect(await page.locator("[role=alert]").innerText()).toBe(
      "Din inloggning gäller inte den här organisationen.",
    );
    await page.close();
  });

  it("a form posted without its CSRF token is refused, and nothing happens", async () => {
    const request = anna.context().request;
    const withoutToken = await request.post(`${stockholmUrl}/desk/new`, {
      form: { destination: "1480" },
      maxRedirects: 0,
    });
    expect(withoutToken.status()).toBe(403);
    const forged = await request.post(`${stockholmUrl}/desk/new`, {
      form: { destination: "1480", _csrf: "forged" },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect(se.gateway("0180").gateway.state.sent.size).toBe(1);
    // The same post with the page's token passes the CSRF check (and meets the form's own).
    await anna.goto(`${stockholmUrl}/desk/new`);
    const token = await anna.locator('main input[name="_csrf"]').getAttribute("value");
    const withToken = await request.post(`${stockholmUrl}/desk/new`, {
      form: { destination: "1480", _csrf: token ?? "" },
      maxRedirects: 0,
    });
    expect(withToken.status()).toBe(400);
    expect(await withToken.text()).toContain("Formuläret har fel");
  });
});

/** A referral from Stockholm to Göteborg opened by Stockholm's case system (the API, in-process). */
async function openToGoteborg(n: number, overrides: { urgency?: string; deadline?: string } = {}) {
  const opened = await se.gateway("0180").gateway.openReferral({
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    destination: { country: "se", municipality: "1480" },
    personal: samplePersonal(n),
    ...overrides,
  } as Parameters<Gateway["openReferral"]>[0]);
  return opened.referralId;
}

/** Presses Tab until the focused element has this accessible text; fails after `max` presses. */
async function tabTo(page: Page, text: string, max = 60): Promise<void> {
  for (let i = 0; i < max; i += 1) {
    await page.keyboard.press("Tab");
    const focused = ((await page.locator(":focus").textContent()) ?? "").trim();
    if (focused === text) return;
  }
  throw new Error(`no focusable element "${text}" within ${max} tabs`);
}

describe("Desk: decline, re-route, escalation; keyboard only", () => {
  let goran: Page;
  let vera: Page;
  let nils: Page;

  beforeAll(async () => {
    goran = await signIn(await officer(), goteborgUrl, "goran");
    vera = await signIn(await officer(), vastUrl, "vera");
    nils = await signIn(await officer(), coordinatorUrl, "nils");
  });

  it("a live page is told by the service's event stream: no polling while nothing changes", async () => {
    await vera.goto(`${vastUrl}/desk/`);
    const stream = vera.waitForRequest(`${vastUrl}/desk/events`);
    await vera.reload();
    await stream;
    // Counted from here: the first page's stream can open (and that page refresh once) after
    // its load, and the reloaded page refreshes once when its own stream opens.
    await vera.waitForTimeout(500);
    const refreshes: string[] = [];
    vera.on("request", (r) => {
      if (r.headers()["x-desk-live"] === "1") refreshes.push(r.url());
    });
    // Once the stream is open, an idle page asks for nothing: a poll would have asked about
    // three times by now.
    await vera.waitForTimeout(3_000);
    const idle = refreshes.length;
    expect(idle).toBeLessThanOrEqual(1);
    const id = await openToGoteborg(4);
    await shownLive(
      () => se.hub("vast").hub.state.referrals.has(id),
      () => vera.getByRole("link", { name: id.slice(0, 8) }).waitFor({ timeout: LIVE_MS }),
      "Väst has the referral",
    );
    expect(refreshes.length).toBeGreaterThan(idle);
  });

  it("Göteborg declines; Väst sees it in triage without reloading and re-routes it to Stockholm's region", async () => {
    const id = await openToGoteborg(2);
    await waitFor(() => se.gateway("1480").gateway.inboxItem(id) !== undefined, {
      timeoutMs: 10_000,
      message: "in Göteborg's inbox",
    });
    await vera.goto(`${vastUrl}/desk/`);
    await goran.goto(`${goteborgUrl}/desk/inbox/${id}`);
    await goran.getByLabel("Skäl att avböja").selectOption("DECLINE_REASON_WRONG_MUNICIPALITY");
    await goran.getByRole("button", { name: "Avböj" }).click();
    expect(await goran.locator("[role=status]").innerText()).toContain("Klart.");

    const link = vera.getByRole("link", { name: id.slice(0, 8) });
    await shownLive(
      () => se.hub("vast").hub.state.referrals.get(id)?.status === "triage",
      () =>
        vera
          .locator("tr", { has: link })
          .getByText("att triagera")
          .first()
          .waitFor({ timeout: LIVE_MS }),
      "Väst holds it for triage",
    );
    await link.first().click();
    await vera.getByLabel("Region").selectOption("stockholm");
    await vera.getByRole("button", { name: "Skicka till annan region" }).click();
    expect(await vera.locator("[role=status]").innerText()).toContain("Klart.");
    expect(se.hub("vast").hub.state.referrals.get(id)?.status).toBe("rerouted");
    await waitFor(() => se.hub("stockholm").hub.state.referrals.get(id)?.status === "triage", {
      timeoutMs: 10_000,
      message: "in Stockholm region's triage",
    });
    expect(await seriousViolations(vera)).toEqual([]);
  });

  it("the national coordinator acknowledges, assigns and resolves an escalation; it survives a restart", async () => {
    await nils.goto(`${coordinatorUrl}/desk/`);
    const id = await openToGoteborg(3, {
      urgency: "URGENCY_IMMEDIATE",
      deadline: new Date(Date.now() + 1_500).toISOString(),
    });
    const link = nils.getByRole("link", { name: id.slice(0, 8) });
    await shownLive(
      () =>
        [...(se.coordinator?.coordinator.escalations.values() ?? [])].some(
          (e) => e.referralId === id,
        ),
      () => link.waitFor({ timeout: LIVE_MS }),
      "the coordinator has the escalation",
    );
    expect(await seriousViolations(nils)).toEqual([]);
    await shot(nils, "coordinator-escalations");
    await link.click();
    await nils.getByRole("button", { name: "Kvittera" }).click();
    expect(await nils.locator("#escalation-state").innerText()).toBe("Kvitterad");
    await nils.getByLabel("Handläggarens namn").fill("Nils Fiktiv");
    await nils.getByRole("button", { name: "Tilldela" }).click();
    expect(await nils.locator("#escalation-assignee").innerText()).toBe("Nils Fiktiv");
    await nils.getByLabel("Anteckning").fill("Göteborg nådd per telefon; tar emot i dag.");
    await nils.getByRole("button", { name: "Avsluta eskaleringen" }).click();
    expect(await nils.locator("#escalation-state").innerText()).toBe("Löst");
    expect(await seriousViolations(nils)).toEqual([]);
    await shot(nils, "coordinator-escalation");

    await se.coordinator?.stop();
    const again = await se.startCoordinator();
    const e = [...again.coordinator.escalations.values()].find((x) => x.referralId === id);
    expect(e).toMatchObject({
      acknowledged: { by: "nils", name: "Nils Fiktiv" },
      assignee: "Nils Fiktiv",
      resolved: { by: "nils", note: "Göteborg nådd per telefon; tar emot i dag." },
    });
  });

  it("the contact point signs in to its list of partners' referrals (no partner runs here)", async () => {
    const lina = await signIn(await officer(), se.liaison?.url ?? "", "lina");
    expect(await lina.locator("h1").innerText()).toBe("Inkommande från partnerländer");
    expect(await lina.locator("main").innerText()).toContain("Inga just nu.");
    expect(await seriousViolations(lina)).toEqual([]);
    await shot(lina, "liaison-inbound");
  });

  it("Stockholm changes a sent referral's urgency, then withdraws it", async () => {
    const anna = await signIn(await officer(), stockholmUrl, "anna");
    const id = await openToGoteborg(5);
    await anna.goto(`${stockholmUrl}/desk/sent/${id}`);
    await anna.getByLabel("Brådska").selectOption("URGENCY_IMMEDIATE");
    await anna.getByRole("button", { name: "Ändra brådska" }).click();
    expect(await anna.locator("[role=status]").innerText()).toContain("Klart.");
    expect(await anna.locator("ol.timeline").innerText()).toContain("uppdaterad");
    await anna.getByLabel("Skäl att återkalla").selectOption("WITHDRAW_REASON_SENT_IN_ERROR");
    await anna.getByRole("button", { name: "Återkalla" }).click();
    expect(await anna.locator("[role=status]").innerText()).toContain("Klart.");
    expect(await anna.locator("#status").innerText()).toBe("återkallad");
    expect(await seriousViolations(anna)).toEqual([]);
  });

  it("a Göteborg officer accepts a referral with the keyboard alone", async () => {
    const id = await openToGoteborg(4);
    await waitFor(() => se.gateway("1480").gateway.inboxItem(id) !== undefined, {
      timeoutMs: 10_000,
      message: "in Göteborg's inbox",
    });
    await goran.goto(`${goteborgUrl}/desk/`);
    await tabTo(goran, id.slice(0, 8));
    await goran.keyboard.press("Enter");
    await goran.waitForURL(`${goteborgUrl}/desk/inbox/${id}`);
    await tabTo(goran, "Ta emot");
    await goran.keyboard.press("Enter");
    await goran.locator("[role=status]").waitFor();
    expect(await goran.locator("[role=status]").innerText()).toContain("Klart.");
    expect(se.gateway("1480").gateway.inboxItem(id)?.status).toBe("accepted");
  });
});
