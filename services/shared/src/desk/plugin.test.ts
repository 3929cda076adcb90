import { connect, type Socket } from "node:net";
import type { ServerResponse } from "node:http";
import { fastify, type FastifyInstance, type LightMyRequestResponse } from "fastify";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
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
  /** The Desk's log lines. */
  const logged: Record<string, unknown>[] = [];
  const deskLog = createLogger(
    { service: "desk-test", level: "info" },
    { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) },
  );

  beforeAll(async () => {
    a = fastify();
    await a.register(httpService, { auth: tokens.config, org: ORG, log });
    a.get("/v1/inbox", { config: { access: "own-org" } }, async () => []);
    // Every sign-in is the same person (one subject), as with an organisation's provider.
    const greta: DevTokenIssuer = {
      config: tokens.config,
      mint: (org, _subject, ttl, claims) => tokens.mint(org, "greta", ttl, claims),
    };
    await registerDesk(a, ORG, tokens.config, { devSignIn: greta }, deskLog, live);
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
    // Its end is logged like any answer (a hijacked one skips the shared layer's line), and
    // names no person.
    const line = logged.find((l) => l.route === "/desk/events");
    expect(line).toMatchObject({ msg: "request", method: "GET", status: 200, open: 0 });
    expect(JSON.stringify(logged)).not.toMatch(/greta|Greta/);
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

  it("a stream ends when its session signs out, without waiting for a change", async () => {
    const mine = await signInAs(a);
    const res = await fetch(`${base}/desk/events`, { headers: { cookie: mine } });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const home = await a.inject({ method: "GET", url: "/desk/", headers: { cookie: mine } });
    const out = await a.inject({
      method: "POST",
      url: "/desk/logout",
      headers: {
        cookie: [mine, cookies(home)].filter((c) => c !== "").join("; "),
        "content-type": "application/x-www-form-urlencoded",
      },
      payload: `_csrf=${encodeURIComponent(csrfOf(home))}`,
    });
    expect(out.statusCode).toBe(303);
    // No change comes: the page left open after sign-out is told nothing more all the same.
    const ended = await Promise.race([
      reader.read().then(async (r) => r.done || (await reader.read()).done),
      new Promise<string>((resolve) => setTimeout(() => resolve("still open"), 1_000)),
    ]);
    expect(ended).toBe(true);
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

describe("the Desk's live streams and clients that read nothing", () => {
  const listeners = new Set<() => void>();
  const live = {
    onChange(l: () => void) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
  };
  const changed = () => {
    for (const l of listeners) l();
  };
  let a: FastifyInstance;
  let stream: ServerResponse | undefined;
  let client: Socket;

  /** A Desk whose stream answer the test can see, and a client that reads its headers only. */
  async function stalledClient(): Promise<string> {
    a = fastify();
    await a.register(httpService, { auth: tokens.config, org: ORG, log });
    a.get("/v1/inbox", { config: { access: "own-org" } }, async () => []);
    a.addHook("onRequest", async (req, reply) => {
      if (req.url === "/desk/events") stream = reply.raw;
    });
    await registerDesk(a, ORG, tokens.config, { devSignIn: tokens }, undefined, live);
    const { port } = new URL(await a.listen({ host: "127.0.0.1", port: 0 }));
    const session = await signInAs(a);
    client = connect(Number(port), "127.0.0.1");
    await new Promise((resolve) => client.once("connect", resolve));
    client.write(`GET /desk/events HTTP/1.1\r\nhost: desk\r\ncookie: ${session}\r\n\r\n`);
    await new Promise((resolve) => client.once("data", resolve));
    client.pause();
    return session;
  }

  /** Changes until the stream is gone, or the client's buffers are full (bytes wait here). */
  async function changeUntilStalled(): Promise<void> {
    const t0 = Date.now();
    let stalls = 0;
    while (listeners.size > 0 && Date.now() - t0 < 5_000) {
      for (let j = 0; j < 10_000; j += 1) changed();
      await new Promise((resolve) => setTimeout(resolve, 5));
      if ((stream?.socket?.writableLength ?? 0) > 0) stalls += 1;
      if (stalls >= 3) break;
    }
  }

  afterEach(async () => {
    client?.destroy();
    await a?.close();
    listeners.clear();
  });

  it("drops a stream its client does not read, rather than buffer every change for it", async () => {
    await stalledClient();
    await changeUntilStalled();
    for (let i = 0; i < 50_000 && listeners.size > 0; i += 1) changed();
    expect(listeners.size).toBe(0);
    expect(stream?.writableLength ?? 0).toBeLessThan(64 * 1024);
  }, 10_000);

  it("a stream ended for a signed-out session is written to no more, however slow its client", async () => {
    // The ping's clock is the test's: 25 s pass at once.
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    try {
      const session = await stalledClient();
      await changeUntilStalled();
      const home = await a.inject({ method: "GET", url: "/desk/", headers: { cookie: session } });
      const out = await a.inject({
        method: "POST",
        url: "/desk/logout",
        headers: {
          cookie: [session, cookies(home)].filter((c) => c !== "").join("; "),
          "content-type": "application/x-www-form-urlencoded",
        },
        payload: `_csrf=${encodeURIComponent(csrfOf(home))}`,
      });
      expect(out.statusCode).toBe(303);
      changed();
      // A write after the stream's end would be an unhandled 'error': the service would exit.
      vi.advanceTimersByTime(60_000);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(listeners.size).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  }, 10_000);
});
