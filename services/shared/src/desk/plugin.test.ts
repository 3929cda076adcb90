import { fastify, type FastifyInstance, type LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createDevTokenIssuer, type DevTokenIssuer } from "../http-auth.js";
import { httpService } from "../http-service.js";
import { createLogger } from "../logger.js";
import { registerDesk } from "./plugin.js";

const ORG = "se:municipality:1480";
const log = createLogger({ service: "desk-test", level: "silent" });

let tokens: DevTokenIssuer;
let dev: FastifyInstance;
let production: FastifyInstance;

/** An app with the shared HTTP layer, a stand-in inbox route and the Desk. */
async function app(devSignIn: boolean): Promise<FastifyInstance> {
  const a = fastify();
  await a.register(httpService, { auth: tokens.config, org: ORG, log });
  a.get("/v1/inbox", { config: { access: "own-org" } }, async () => []);
  await registerDesk(a, ORG, tokens.config, devSignIn ? { devSignIn: tokens } : {});
  await a.ready();
  return a;
}

beforeAll(async () => {
  tokens = await createDevTokenIssuer();
  dev = await app(true);
  production = await app(false);
});

afterAll(async () => {
  await dev.close();
  await production.close();
});

/** The cookies a response sets, as a Cookie header. */
function cookies(res: LightMyRequestResponse): string {
  return res.cookies.map((c) => `${c.name}=${c.value}`).join("; ");
}

function csrfOf(res: LightMyRequestResponse): string {
  return /name="_csrf"\s+value="([^"]+)"/.exec(res.body)?.[1] ?? "";
}

describe("the Desk's sign-in, sessions and page headers", () => {
  it("signs a person in with the development sign-in, in development mode only", async () => {
    const page = await dev.inject({ method: "GET", url: "/desk/signin" });
    expect(page.statusCode).toBe(200);
    const signIn = await dev.inject({
      method: "POST",
      url: "/desk/signin/dev",
      headers: { cookie: cookies(page), "content-type": "application/x-www-form-urlencoded" },
      payload: `name=Greta+Demo&_csrf=${encodeURIComponent(csrfOf(page))}`,
    });
    expect(signIn.statusCode).toBe(303);
    expect(signIn.headers.location).toBe("/desk/");
    const session = signIn.cookies.find((c) => c.name === "desk_se_municipality_1480");
    expect(session).toMatchObject({
      httpOnly: true,
      secure: true,
      sameSite: "Lax",
      path: "/desk/",
    });
    const home = await dev.inject({
      method: "GET",
      url: "/desk/",
      headers: { cookie: `${session?.name}=${session?.value}` },
    });
    expect(home.statusCode).toBe(200);
    expect(home.body).toContain("Greta Demo");

    const none = await production.inject({ method: "GET", url: "/desk/signin" });
    expect(none.body).not.toContain("/desk/signin/dev");
    const refused = await production.inject({
      method: "POST",
      url: "/desk/signin/dev",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      payload: "name=Mallory",
    });
    expect(refused.statusCode).toBe(404);
  });

  it("refuses the development sign-in without its CSRF token", async () => {
    const page = await dev.inject({ method: "GET", url: "/desk/signin" });
    const res = await dev.inject({
      method: "POST",
      url: "/desk/signin/dev",
      headers: { cookie: cookies(page), "content-type": "application/x-www-form-urlencoded" },
      payload: "name=Mallory",
    });
    expect(res.statusCode).toBe(403);
    expect(res.cookies.find((c) => c.name === "desk_se_municipality_1480")).toBeUndefined();
  });

  it("sends a visitor without a session to sign in, and every answer is no-store with a strict CSP", async () => {
    const res = await dev.inject({ method: "GET", url: "/desk/" });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe("/desk/signin");
    for (const url of ["/desk/", "/desk/signin", "/desk/assets/desk.js", "/desk/inbox/x"]) {
      const r = await dev.inject({ method: "GET", url });
      expect(r.headers["cache-control"], url).toBe("no-store");
      expect(r.headers["content-security-policy"], url).toMatch(
        /^default-src 'none'; script-src 'self'; style-src 'self';/,
      );
      expect(r.headers["x-frame-options"], url).toBe("DENY");
    }
  });

  it("switches the language by a cookie and comes back only to a Desk page", async () => {
    const res = await dev.inject({ method: "GET", url: "/desk/lang?to=en&back=/desk/signin" });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe("/desk/signin");
    const english = await dev.inject({
      method: "GET",
      url: "/desk/signin",
      headers: { cookie: cookies(res) },
    });
    expect(english.body).toContain('<html lang="en">');
    const away = await dev.inject({
      method: "GET",
      url: "/desk/lang?to=en&back=https://evil.example/",
    });
    expect(away.headers.location).toBe("/desk/");
  });
});

/** Signs in with the development sign-in: the session's cookie. */
async function signInAs(a: FastifyInstance): Promise<string> {
  const page = await a.inject({ method: "GET", url: "/desk/signin" });
  const signIn = await a.inject({
    method: "POST",
    url: "/desk/signin/dev",
    headers: { cookie: cookies(page), "content-type": "application/x-www-form-urlencoded" },
    payload: `name=Greta+Demo&_csrf=${encodeURIComponent(csrfOf(page))}`,
  });
  return cookies(signIn);
}

describe("the Desk's live pages", () => {
  /** The party's change signal, as the Desk sees it. */
  const listeners = new Set<() => void>();
  const live = {
    onChange(l: () => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  let a: FastifyInstance;
  let base: string;
  let session: string;

  beforeAll(async () => {
    a = fastify();
    await a.register(httpService, { auth: tokens.config, org: ORG, log });
    a.get("/v1/inbox", { config: { access: "own-org" } }, async () => []);
    // Every sign-in is the same person (one subject), as with an organisation's provider.
    const greta: DevTokenIssuer = {
      config: tokens.config,
      mint: (org, _subject, ttl, claims) => tokens.mint(org, "greta", ttl, claims),
    };
    await registerDesk(a, ORG, tokens.config, { devSignIn: greta }, undefined, live);
    base = await a.listen({ host: "127.0.0.1", port: 0 });
    session = await signInAs(a);
  });

  afterAll(async () => {
    await a.close();
  });

  it("names its event stream on every page; the stream refuses a visitor without a session", async () => {
    const home = await a.inject({ method: "GET", url: "/desk/", headers: { cookie: session } });
    expect(home.body).toMatch(/<body data-events="\/desk\/events">/);
    const res = await fetch(`${base}/desk/events`);
    expect(res.status).toBe(401);
    expect(await res.text()).toBe("");
    // Without the party's signal, the page polls: no stream is named.
    const plain = await dev.inject({ method: "GET", url: "/desk/signin" });
    expect(plain.body).not.toContain("data-events");
  });

  it("tells a signed-in page that something changed, and nothing more; never cacheable", async () => {
    const res = await fetch(`${base}/desk/events`, { headers: { cookie: session } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-security-policy")).toMatch(/^default-src 'none';/);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = "";
    const until = async (done: () => boolean) => {
      while (!done()) {
        const { value, done: ended } = await reader.read();
        if (ended) throw new Error("the stream ended");
        text += decoder.decode(value, { stream: true });
      }
    };
    await until(() => text.includes("retry: 2000\n\n"));
    expect(listeners.size).toBe(1);
    for (const l of listeners) l();
    await until(() => text.includes("data: changed\n\n"));
    expect(text).toBe("retry: 2000\n\ndata: changed\n\n");
    await reader.cancel();
    await vi.waitFor(() => expect(listeners.size).toBe(0));
  });

  it("one person gets 4 streams at most, over all their sessions; their pages poll past that", async () => {
    // The same person signing in again (a second session) gets no more streams: 4 leaves a
    // browser (6 connections to an origin) room for pages and actions.
    const again = await signInAs(a);
    const open: Response[] = [];
    for (const cookie of [session, again, session, again]) {
      const res = await fetch(`${base}/desk/events`, { headers: { cookie } });
      expect(res.status).toBe(200);
      open.push(res);
    }
    for (const cookie of [session, again]) {
      const past = await fetch(`${base}/desk/events`, { headers: { cookie } });
      expect(past.status).toBe(503);
    }
    for (const res of open) await res.body?.cancel();
    await vi.waitFor(() => expect(listeners.size).toBe(0));
    const later = await fetch(`${base}/desk/events`, { headers: { cookie: session } });
    expect(later.status).toBe(200);
    await later.body?.cancel();
    await vi.waitFor(() => expect(listeners.size).toBe(0));
  });

  it("a live refresh leaves an action's message for the page the action leads to", async () => {
    const home = await a.inject({ method: "GET", url: "/desk/", headers: { cookie: session } });
    // No such referral here: the action is refused, and the refusal is the message.
    const act = await a.inject({
      method: "POST",
      url: "/desk/inbox/00000000-0000-4000-8000-000000000000/accept",
      headers: {
        cookie: [session, cookies(home)].filter((c) => c !== "").join("; "),
        "content-type": "application/x-www-form-urlencoded",
      },
      payload: `_csrf=${encodeURIComponent(csrfOf(home))}`,
    });
    expect(act.statusCode).toBe(303);
    const refresh = await a.inject({
      method: "GET",
      url: "/desk/",
      headers: { cookie: session, "x-desk-live": "1" },
    });
    expect(refresh.body).not.toContain('role="status"');
    const shown = await a.inject({ method: "GET", url: "/desk/", headers: { cookie: session } });
    expect(shown.body).toMatch(/class="alert" role="status"/);
  });
});
