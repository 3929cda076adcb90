/**
 * The Desk's live pages and a browser's connections: a browser opens at most six HTTP/1.1
 * connections to one origin, and each page's event stream holds one. Against the Desk on a bare
 * app (no broker needed), in Debian's chromium through playwright-core.
 */
import { fastify, type FastifyInstance } from "fastify";
import { type Browser, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevTokenIssuer, createLogger, httpService, registerDesk } from "@stafett/shared";
import { launchChromium } from "../support/browser.js";

const ORG = "se:municipality:1480";

describe("Desk: many tabs of one Desk", () => {
  const listeners = new Set<() => void>();
  const live = {
    onChange(l: () => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  let a: FastifyInstance;
  let base: string;
  let browser: Browser;
  let context: BrowserContext;

  beforeAll(async () => {
    const tokens = await createDevTokenIssuer();
    const log = createLogger({ service: "desk-test", level: "silent" });
    a = fastify();
    await a.register(httpService, { auth: tokens.config, org: ORG, log });
    a.get("/v1/inbox", { config: { access: "own-org" } }, async () => []);
    await registerDesk(a, ORG, tokens.config, { devSignIn: tokens }, undefined, live);
    base = await a.listen({ host: "127.0.0.1", port: 0 });
    browser = await launchChromium();
    context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/desk/signin`);
    await page.locator('form[action="/desk/signin/dev"] input[name="name"]').fill("Greta Demo");
    await page.locator('form[action="/desk/signin/dev"] button').click();
    await page.waitForURL(`${base}/desk/`);
    await page.close();
  });

  afterAll(async () => {
    await browser?.close();
    await a?.close();
  });

  it("six open tabs leave the browser a connection for the next page", async () => {
    const tabs = [];
    for (let i = 0; i < 6; i += 1) {
      const tab = await context.newPage();
      await Promise.all([
        tab.waitForRequest(`${base}/desk/events`, { timeout: 3_000 }),
        tab.goto(`${base}/desk/`, { timeout: 3_000 }),
      ]);
      tabs.push(tab);
    }
    // The seventh page loads: the streams have not taken every connection to the Desk.
    const next = await context.newPage();
    const res = await next.goto(`${base}/desk/`, { timeout: 3_000 });
    expect(res?.status()).toBe(200);
    await next.close();
    for (const tab of tabs) await tab.close();
  });
});
