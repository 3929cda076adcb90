/**
 * The Desk's live pages and a browser's connections: a browser opens at most six HTTP/1.1
 * connections to one origin, and each page's event stream holds one. Against the Desk on a bare
 * app (no broker needed), in Debian's chromium through playwright-core.
 */
import type { ServerResponse } from "node:http";
import { fastify, type FastifyInstance } from "fastify";
import { type Browser, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevTokenIssuer, createLogger, httpService, registerDesk } from "@stafett/shared";
import { launchChromium } from "../support/browser.js";

const ORG = "se:municipality:1480";

describe("Desk: live pages in tabs", () => {
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
  /** The inbox the stand-in API answers. */
  const rows: object[] = [];
  /** The event streams' answers, as the server holds them. */
  const streams: ServerResponse[] = [];

  beforeAll(async () => {
    const tokens = await createDevTokenIssuer();
    const log = createLogger({ service: "desk-test", level: "silent" });
    a = fastify();
    await a.register(httpService, { auth: tokens.config, org: ORG, log });
    a.get("/v1/inbox", { config: { access: "own-org" } }, async () => rows);
    a.addHook("onRequest", async (req, reply) => {
      if (req.url === "/desk/events") streams.push(reply.raw);
    });
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

  it("a tab in the background shows what changed there as soon as it is in front again", async () => {
    const tab = await context.newPage();
    // The test says when the page is hidden (headless tabs are never hidden by themselves).
    await tab.addInitScript({
      content:
        'Object.defineProperty(document, "hidden", { configurable: true, get: () => window.deskTestHidden === true });',
    });
    await Promise.all([tab.waitForRequest(`${base}/desk/events`), tab.goto(`${base}/desk/`)]);
    await tab.waitForTimeout(300);
    await tab.evaluate("window.deskTestHidden = true");
    const id = "5b1e7c2a-9d4f-4e8b-a6c3-2f7d1e9b0a44";
    rows.push({
      referralId: id,
      status: "pending",
      from: "se:municipality:0180",
      urgency: "urgent",
      reason: "neglect",
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
      receivedAt: new Date().toISOString(),
    });
    for (const l of listeners) l();
    await tab.waitForTimeout(300);
    await tab.evaluate(
      'window.deskTestHidden = false; document.dispatchEvent(new Event("visibilitychange"))',
    );
    // Not at the next 30-second refresh: the change it was told of while hidden shows now.
    await tab.getByRole("link", { name: id.slice(0, 8) }).waitFor({ timeout: 2_000 });
    await tab.close();
  });

  it("a stream cut off (a proxy, the network) is reopened, not replaced by a poll", async () => {
    const tab = await context.newPage();
    const refreshes: string[] = [];
    tab.on("request", (r) => {
      if (r.headers()["x-desk-live"] === "1") refreshes.push(r.url());
    });
    await Promise.all([tab.waitForRequest(`${base}/desk/events`), tab.goto(`${base}/desk/`)]);
    await tab.waitForTimeout(300);
    const reopened = tab.waitForRequest(`${base}/desk/events`, { timeout: 4_000 });
    streams.at(-1)?.destroy();
    await reopened;
    // Once reopened (the page refreshes once then), the page asks for nothing while nothing
    // changes: a poll would have asked about twice a second by now.
    await tab.waitForTimeout(2_000);
    const before = refreshes.length;
    await tab.waitForTimeout(2_000);
    expect(refreshes.length - before).toBe(0);
    await tab.close();
  });
});
