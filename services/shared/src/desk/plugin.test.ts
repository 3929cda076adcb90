import { fastify, type FastifyInstance, type LightMyRequestResponse } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
