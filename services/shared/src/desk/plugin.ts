/**
 * Desk: the officers' web workbench, served by each service under /desk/ on the same origin as
 * its API. Server-rendered HTML that works without JavaScript; one small script keeps lists live.
 *
 * The Desk holds no rules of its own: every page and every action is a call to the service's
 * own API, in-process (`app.inject`), with the signed-in person's bearer token. So the API's
 * access decision (`config.access`), its schemas and its access audit (`req.audit`) apply to the
 * Desk exactly as to a case system: a read of a child's data from the Desk is one audited API
 * read. The threat model is a hostile officer of another organisation: a session belongs to one
 * organisation's Desk, and what it can reach is what that organisation's API answers it.
 *
 * Security: sessions in Secure, http-only, SameSite=Lax cookies (session.ts); a CSRF token on
 * every form (@fastify/csrf-protection, bound to the session); a strict Content-Security-Policy
 * (no inline script or style, nothing from another origin); `Cache-Control: no-store` on every
 * Desk answer; no personal data in URLs or in the browser's storage.
 */
import { randomUUID, randomBytes } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fastifyCookie from "@fastify/cookie";
import fastifyCsrf from "@fastify/csrf-protection";
import fastifyFormbody from "@fastify/formbody";
import type { AuthConfig } from "../http-auth.js";
import type { Logger } from "../logger.js";
import { country as countryInfo, municipalities, region as regionInfo, regions } from "../geo.js";
import type { Overview, OverviewCounts } from "../overview.js";
import { parseOrgId } from "../subjects.js";
import { schemaValidator, SCHEMA_IDS } from "../validate.js";
import { isStafettError, type Issue } from "../errors.js";
import { DESK_SCRIPT, DESK_STYLE } from "./assets.js";
import { html, Html, page, type Part } from "./html.js";
import { DeskSessions, type DeskOptions, type DeskSession } from "./session.js";
import { codeText, DESK_TEXTS, type DeskLang, type DeskTexts } from "./texts.js";

export type { DeskOptions, DeskOidcOptions } from "./session.js";

/** Every Desk answer carries these (docs/desk.md, "Security"). */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const DESK = { access: "desk" } as const;

/** The CSRF tokens' user information before sign-in (a session's own id after). */
const SIGNED_OUT = "signed-out";

type Form = Record<string, string | undefined>;

/** What tells the Desk that the service's state changed (its party's `onChange`). */
export interface DeskLive {
  onChange(listener: () => void): () => void;
}

/** Where a page's script listens for changes (Server-Sent Events; docs/desk.md, "Live"). */
const EVENTS_PATH = "/desk/events";
/** Open live streams at most, over all sessions: each holds a socket. */
const MAX_LIVE_STREAMS = 500;
/**
 * Per person, over all their sessions (signing in again makes another). Below the six
 * connections a browser opens to one origin: each stream holds one for as long as its tab is
 * open, and with six the browser could load no page and send no form to the Desk.
 */
const MAX_LIVE_STREAMS_PER_PERSON = 4;
/** A comment line this often keeps proxies from closing an idle stream. */
const LIVE_PING_MS = 25_000;

interface ApiAnswer {
  status: number;
  body: unknown;
}

/**
 * Registers the Desk on a service's app (after its API routes). `org` is the service's
 * organisation; `auth` the API's token configuration, which the Desk's sign-in is checked against.
 */
export async function registerDesk(
  app: FastifyInstance,
  org: string,
  auth: AuthConfig,
  options: DeskOptions,
  logger?: Logger,
  live?: DeskLive,
): Promise<void> {
  const log = logger?.child({ component: "desk" });
  const self = parseOrgId(org);
  const sessions = new DeskSessions(org, auth, options);
  const suffix = org.replace(/[^a-z0-9]/g, "_");
  const SESSION_COOKIE = `desk_${suffix}`;
  const PENDING_COOKIE = `desk_signin_${suffix}`;
  const LANG_COOKIE = "desk_lang";
  const cookieBase = { path: "/desk/", httpOnly: true, secure: true, sameSite: "lax" } as const;

  await app.register(async (desk) => {
    await desk.register(fastifyCookie);
    await desk.register(fastifyFormbody);
    await desk.register(fastifyCsrf, {
      cookieKey: `desk_csrf_${suffix}`,
      cookieOpts: cookieBase,
      getUserInfo: (req) => sessionOf(req)?.id ?? SIGNED_OUT,
      csrfOpts: { hmacKey: randomBytes(32), userInfo: true },
      getToken: (req) => (req.body as Form | undefined)?._csrf,
    });

    desk.addHook("onSend", async (_req, reply, payload) => {
      reply.headers(SECURITY_HEADERS);
      return payload;
    });
    desk.setErrorHandler((err, req, reply) => {
      const t = textsOf(req);
      const csrf = (err as { code?: string }).code?.startsWith("FST_CSRF") === true;
      // The class name only: a library's message (openid-client's, say) can quote an answer.
      if (!csrf)
        log?.error(
          {
            route: req.routeOptions.url ?? null,
            error: err instanceof Error && /^\w{1,64}$/.test(err.name) ? err.name : "Error",
          },
          "desk request failed",
        );
      return reply
        .code(csrf ? 403 : 500)
        .type("text/html")
        .send(simplePage(t, req, csrf ? t.csrf : t.unavailable));
    });

    function sessionOf(req: FastifyRequest): DeskSession | undefined {
      return sessions.get(req.cookies[SESSION_COOKIE]);
    }

    function textsOf(req: FastifyRequest): DeskTexts {
      const lang = req.cookies?.[LANG_COOKIE];
      return DESK_TEXTS[(lang === "en" ? "en" : "sv") satisfies DeskLang];
    }

    function simplePage(t: DeskTexts, req: FastifyRequest, text: string): string {
      return page(
        { t, title: t.appName, orgName: orgName(t, org), path: req.url },
        html`<h1>${t.appName}</h1>
          <p class="alert" role="alert">${text}</p>
          <p><a href="/desk/">${t.appName}</a></p>`,
      );
    }

    async function api(
      s: DeskSession,
      method: "GET" | "POST",
      url: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ) {
      const res = await app.inject({
        method,
        url,
        headers: {
          ...headers,
          authorization: `Bearer ${s.token}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });
      const answer: ApiAnswer = {
        status: res.statusCode,
        body: res.body.length > 0 ? (JSON.parse(res.body) as unknown) : undefined,
      };
      return answer;
    }

    /** The signed-in page context, or a redirect to sign in. */
    async function signedIn(
      req: FastifyRequest,
      reply: FastifyReply,
    ): Promise<{ s: DeskSession; t: DeskTexts } | undefined> {
      const s = sessionOf(req);
      if (s === undefined) {
        await reply.redirect("/desk/signin", 303);
        return undefined;
      }
      return { s, t: textsOf(req) };
    }

    function render(
      req: FastifyRequest,
      reply: FastifyReply,
      s: DeskSession,
      title: string,
      body: Html,
      status = 200,
    ): FastifyReply {
      const t = textsOf(req);
      // A live refresh shows no message and leaves it for the page it was meant for: the
      // refresh can overtake the redirect after an action.
      const refresh = req.headers["x-desk-live"] === "1";
      const flash = refresh ? undefined : s.flash;
      if (!refresh) delete s.flash;
      return reply
        .code(status)
        .type("text/html; charset=utf-8")
        .send(
          page(
            {
              t,
              title,
              orgName: orgName(t, org),
              person: { name: s.name, csrf: reply.generateCsrf({ userInfo: s.id }) },
              nav: navOf(t, self.role, req.url),
              path: req.url,
              ...(flash === undefined ? {} : { flash }),
              ...(live === undefined ? {} : { events: EVENTS_PATH }),
            },
            body,
          ),
        );
    }

    /** After an action: back to a page, with what happened said once there. */
    function after(
      reply: FastifyReply,
      s: DeskSession,
      t: DeskTexts,
      res: ApiAnswer,
      to: string,
    ): FastifyReply {
      s.flash =
        res.status < 300
          ? { kind: "ok", text: t.done }
          : { kind: "error", text: `${t.refused}: ${problemText(t, res)}` };
      return reply.redirect(to, 303);
    }

    const csrf = { preHandler: desk.csrfProtection };

    // --- Assets, language, sign-in -------------------------------------------------------

    desk.get("/desk/assets/desk.js", { config: DESK }, async (_req, reply) =>
      reply.type("text/javascript; charset=utf-8").send(DESK_SCRIPT),
    );
    desk.get("/desk/assets/desk.css", { config: DESK }, async (_req, reply) =>
      reply.type("text/css; charset=utf-8").send(DESK_STYLE),
    );
    desk.get<{ Querystring: { to?: string; back?: string } }>(
      "/desk/lang",
      { config: DESK },
      async (req, reply) => {
        const to: DeskLang = req.query.to === "en" ? "en" : "sv";
        const back = req.query.back ?? "";
        reply.setCookie(LANG_COOKIE, to, { ...cookieBase, maxAge: 365 * 86_400 });
        return reply.redirect(/^\/desk\/[A-Za-z0-9/_-]*$/.test(back) ? back : "/desk/", 303);
      },
    );

    // --- Live pages: a signed-in person's pages are told when something changed ---------

    /** Open streams: whose (person and session), and how to end one. */
    const streams = new Map<
      ServerResponse,
      { subject: string; session: string; end: () => void }
    >();
    const streamsOf = (subject: string) =>
      [...streams.values()].filter((o) => o.subject === subject).length;
    /** At sign-out a session's streams end at once, not at the next change. */
    const endStreamsOf = (session: string) => {
      for (const o of [...streams.values()]) if (o.session === session) o.end();
    };
    desk.addHook("preClose", async () => {
      for (const o of [...streams.values()]) o.end();
    });
    desk.get(EVENTS_PATH, { config: DESK }, async (req, reply) => {
      const s = sessionOf(req);
      if (s === undefined) return reply.code(401).type("text/plain").send("");
      // Past a limit the page polls instead: one person's tabs cannot use up everyone's streams,
      // nor their own browser's connections.
      if (
        live === undefined ||
        streams.size >= MAX_LIVE_STREAMS ||
        streamsOf(s.subject) >= MAX_LIVE_STREAMS_PER_PERSON
      )
        return reply.code(503).type("text/plain").send("");
      reply.hijack();
      const raw = reply.raw;
      // The hijacked answer skips the onSend hook: its headers are set here.
      raw.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": "text/event-stream; charset=utf-8",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      raw.write("retry: 2000\n\n");
      // Ended once, and forgotten at once: nothing writes to it after its end (a write after
      // end is an unhandled 'error'), and a client that reads nothing cannot keep it open.
      const end = () => {
        if (!streams.delete(raw)) return;
        clearInterval(ping);
        stop();
        raw.end();
        raw.destroy();
        // The request line the shared layer writes for every answer, which a hijacked one skips.
        log?.info(
          {
            method: req.method,
            route: EVENTS_PATH,
            status: 200,
            duration_ms: Math.round(reply.elapsedTime * 10) / 10,
            open: streams.size,
          },
          "request",
        );
      };
      const send = (text: string) => {
        if (sessions.get(s.id) === undefined) end();
        // A client that has not read what is waiting for it is not a live page: every change
        // would be buffered for it. Its page polls or reconnects.
        else if (raw.writableNeedDrain) end();
        else raw.write(text);
      };
      // No id, no type, no data beyond the word: the page fetches itself, through the API.
      const stop = live.onChange(() => send("data: changed\n\n"));
      const ping = setInterval(() => send(": ping\n\n"), LIVE_PING_MS);
      streams.set(raw, { subject: s.subject, session: s.id, end });
      raw.on("close", end);
      return reply;
    });

    desk.get("/desk/signin", { config: DESK }, async (req, reply) => {
      const t = textsOf(req);
      const dev = sessions.hasDevSignIn
        ? html`<h2>${t.devSignIn}</h2>
            <form method="post" action="/desk/signin/dev">
              <input
                type="hidden"
                name="_csrf"
                value="${reply.generateCsrf({ userInfo: SIGNED_OUT })}"
              />
              <label for="dev-name">${t.devName}</label>
              <input id="dev-name" name="name" required maxlength="100" autocomplete="off" />
              <button class="primary" type="submit">${t.signIn}</button>
            </form>`
        : "";
      const body = html`<h1>${t.signIn}</h1>
        <p>${t.notSignedIn}</p>
        ${
          sessions.hasOidc
            ? html`<p><a class="primary" href="/desk/signin/start">${t.signInWith}</a></p>`
            : ""
        }
        ${dev}`;
      return reply
        .type("text/html; charset=utf-8")
        .send(page({ t, title: t.signIn, orgName: orgName(t, org), path: req.url }, body));
    });

    desk.get("/desk/signin/start", { config: DESK }, async (req, reply) => {
      const { url, pendingId } = await sessions.begin(callbackUrl(req));
      reply.setCookie(PENDING_COOKIE, pendingId, { ...cookieBase, maxAge: 600 });
      return reply.redirect(url, 303);
    });

    desk.get("/desk/signin/callback", { config: DESK }, async (req, reply) => {
      const t = textsOf(req);
      const here = new URL(callbackUrl(req));
      here.search = new URL(req.url, "http://x").search;
      const result = await sessions.complete(req.cookies[PENDING_COOKIE], here);
      reply.clearCookie(PENDING_COOKIE, cookieBase);
      if (!result.ok)
        return reply
          .code(403)
          .type("text/html; charset=utf-8")
          .send(simplePage(t, req, result.why === "wrong_org" ? t.wrongOrg : t.signInFailed));
      startSession(reply, result.session);
      return reply.redirect("/desk/", 303);
    });

    if (sessions.hasDevSignIn)
      desk.post<{ Body: Form }>(
        "/desk/signin/dev",
        { config: DESK, ...csrf },
        async (req, reply) => {
          const name = (req.body.name ?? "").trim().slice(0, 100);
          const result = await sessions.devSignIn(name === "" ? "Officer" : name);
          if (!result.ok) return reply.redirect("/desk/signin", 303);
          startSession(reply, result.session);
          return reply.redirect("/desk/", 303);
        },
      );

    desk.post("/desk/logout", { config: DESK, ...csrf }, async (req, reply) => {
      const id = req.cookies[SESSION_COOKIE];
      sessions.end(id);
      if (id !== undefined) endStreamsOf(id);
      reply.clearCookie(SESSION_COOKIE, cookieBase);
      return reply.redirect("/desk/signin", 303);
    });

    function startSession(reply: FastifyReply, s: DeskSession): void {
      reply.setCookie(SESSION_COOKIE, s.id, {
        ...cookieBase,
        maxAge: Math.max(1, Math.floor((s.expires - Date.now()) / 1_000)),
      });
    }

    function callbackUrl(req: FastifyRequest): string {
      const base = options.publicUrl ?? `${req.protocol}://${req.host}`;
      return `${base}/desk/signin/callback`;
    }

    // --- Pages by role ---------------------------------------------------------------------

    const views: ViewContext = { desk, api, signedIn, render, after, csrf, org };
    switch (self.role) {
      case "municipality":
        municipalityViews(views);
        break;
      case "hub":
        hubViews(views);
        break;
      case "coordinator":
        coordinatorViews(views);
        break;
      case "liaison":
        liaisonViews(views);
        break;
    }
  });
}

interface ViewContext {
  desk: FastifyInstance;
  org: string;
  api(
    s: DeskSession,
    method: "GET" | "POST",
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiAnswer>;
  signedIn(
    req: FastifyRequest,
    reply: FastifyReply,
  ): Promise<{ s: DeskSession; t: DeskTexts } | undefined>;
  render(
    req: FastifyRequest,
    reply: FastifyReply,
    s: DeskSession,
    title: string,
    body: Html,
    status?: number,
  ): FastifyReply;
  after(
    reply: FastifyReply,
    s: DeskSession,
    t: DeskTexts,
    res: ApiAnswer,
    to: string,
  ): FastifyReply;
  csrf: { preHandler: FastifyInstance["csrfProtection"] };
}

/** What a form's step sends to the API, from the posted fields. */
type Step = readonly [string, (f: Form) => unknown];

/**
 * Registers one form action per step: `POST {page}/:id/{step}` sends the step's body to the
 * API's `{api}/{id}/{step}` as the signed-in person (so the API decides and audits), then goes
 * back to the item's page, saying what happened.
 */
function itemActions(v: ViewContext, page: string, api: string, steps: readonly Step[]): void {
  for (const [step, body] of steps)
    v.desk.post<{ Params: { id: string }; Body: Form }>(
      `${page}/:id/${step}`,
      { config: DESK, ...v.csrf },
      async (req, reply) => {
        const c = await v.signedIn(req, reply);
        if (c === undefined) return reply;
        const id = encodeURIComponent(req.params.id);
        const res = await v.api(c.s, "POST", `${api}/${id}/${step}`, body(req.body ?? {}));
        return v.after(reply, c.s, c.t, res, `${page}/${id}`);
      },
    );
}

function navOf(t: DeskTexts, role: string, url: string) {
  const items: { href: string; label: string }[] =
    role === "municipality"
      ? [
          { href: "/desk/", label: t.inbox },
          { href: "/desk/sent", label: t.sent },
          { href: "/desk/new", label: t.newReferral },
        ]
      : role === "hub"
        ? [{ href: "/desk/", label: t.referrals }]
        : role === "coordinator"
          ? [
              { href: "/desk/", label: t.escalations },
              { href: "/desk/overview", label: t.nationalOverview },
            ]
          : [{ href: "/desk/", label: t.inbound }];
  const path = url.split("?")[0] ?? url;
  return items.map((i) => ({ ...i, current: i.href === path }));
}

/** An organisation's name for people: the municipality, the region, the country's office. */
function orgName(t: DeskTexts, id: string): string {
  try {
    const a = parseOrgId(id);
    const cc = a.country.toUpperCase();
    switch (a.role) {
      case "municipality":
        return municipalities().find((m) => m.code === a.code)?.name ?? id;
      case "hub":
        return `${t.lang === "sv" ? "Regionkoordinator" : "Regional coordinator"} ${regionInfo(a.region).name}`;
      case "coordinator":
        return `${t.lang === "sv" ? "Nationell koordinator" : "National coordinator"} ${cc}`;
      case "liaison":
        return `${t.lang === "sv" ? "Kontaktpunkt" : "Contact point"} ${countryInfo(a.country)?.name ?? cc}`;
    }
  } catch {
    return id;
  }
}

function destinationText(t: DeskTexts, d: unknown): string {
  const dest = (d ?? {}) as { country?: string; municipality?: string; region?: string };
  if (dest.municipality !== undefined)
    return municipalities().find((m) => m.code === dest.municipality)?.name ?? dest.municipality;
  if (dest.region !== undefined) return orgName(t, `${dest.country ?? "se"}:hub:${dest.region}`);
  return countryInfo(dest.country ?? "")?.name ?? dest.country ?? "";
}

const STOCKHOLM_TIME = new Intl.DateTimeFormat("sv-SE", {
  dateStyle: "short",
  timeStyle: "short",
  timeZone: "Europe/Stockholm",
});

function when(iso: unknown): Html {
  const d = new Date(String(iso));
  if (Number.isNaN(d.getTime())) return html``;
  return html`<time datetime="${d.toISOString()}">${STOCKHOLM_TIME.format(d)}</time>`;
}

function timeLeft(t: DeskTexts, iso: unknown, now = Date.now()): Html {
  const ms = Date.parse(String(iso)) - now;
  if (Number.isNaN(ms)) return html``;
  if (ms <= 0) return html`<span class="overdue">${t.overdue}</span>`;
  const minutes = Math.floor(ms / 60_000);
  return html`${Math.floor(minutes / 60)} ${t.hours} ${minutes % 60} ${t.minutes}`;
}

function problemText(t: DeskTexts, res: ApiAnswer): string {
  if (res.status === 404) return t.notFound;
  if (res.status === 403) return t.forbidden;
  if (res.status === 503) return t.unavailable;
  const b = (res.body ?? {}) as { code?: unknown; reason?: unknown };
  return [b.code, b.reason].filter((x) => typeof x === "string").join(" / ");
}

/** The answer's error page for a read the API refused (404 for another's item, 403, 503). */
function refusedPage(
  v: ViewContext,
  req: FastifyRequest,
  reply: FastifyReply,
  s: DeskSession,
  t: DeskTexts,
  res: ApiAnswer,
) {
  // What the API answered, passed on: gone (an erased item), not found, forbidden, unavailable;
  // anything else is the API failing the Desk.
  const status = [404, 403, 410, 503].includes(res.status) ? res.status : 502;
  return v.render(
    req,
    reply,
    s,
    t.refused,
    html`<h1>${t.refused}</h1>
      <p class="alert" role="alert">${problemText(t, res)}</p>`,
    status,
  );
}

const ID = /^[0-9a-f-]{36}$/;

function csrfField(reply: FastifyReply, s: DeskSession): Html {
  return html`<input
    type="hidden"
    name="_csrf"
    value="${reply.generateCsrf({ userInfo: s.id })}"
  />`;
}

function options(t: DeskTexts, codes: readonly string[], selected?: string, blank?: string): Html {
  return html`${blank === undefined ? "" : html`<option value="">${blank}</option>`}${codes.map(
    (c) =>
      html`<option value="${c}" ${c === selected ? new Html("selected") : ""}>
        ${codeText(t, c)}
      </option>`,
  )}`;
}

function municipalityOptions(selected?: string): Html {
  return html`${regions().map(
    (r) =>
      html`<optgroup label="${r.name}">
        ${municipalities()
          .filter((m) => m.region === r.slug)
          .sort((a, b) => a.name.localeCompare(b.name, "sv"))
          .map(
            (m) =>
              html`<option value="${m.code}" ${m.code === selected ? new Html("selected") : ""}>
                ${m.name}
              </option>`,
          )}
      </optgroup>`,
  )}`;
}

/** What is known of an item, as a description list: a term and its value for each entry. */
function facts(entries: readonly (readonly [string, Part])[]): Html {
  return html`<dl>
    ${entries.map(
      ([term, value]) =>
        html`<dt>${term}</dt>
          <dd>${value}</dd>`,
    )}
  </dl>`;
}

/** The child's data, opened for this page alone (an audited API read) and shown under a heading. */
function childSection(t: DeskTexts, personal: unknown): Html {
  return html`<section aria-labelledby="child">
    <h2 id="child">${t.childData}</h2>
    <p class="hint">${t.childDataNote}</p>
    ${personalView(t, personal)}
  </section>`;
}

/** The child's data as a description list: keys translated where the Desk knows them. */
function personalView(t: DeskTexts, value: unknown): Html {
  if (typeof value === "boolean") return html`${value ? t.yes : t.no}`;
  if (value === null || typeof value !== "object") return html`${codeText(t, String(value))}`;
  if (Array.isArray(value)) return html`${value.map((v) => codeText(t, String(v))).join(", ")}`;
  return html`<dl>
    ${Object.entries(value as Record<string, unknown>).map(
      ([k, v]) =>
        html`<dt>${FIELD_LABEL(t)[k] ?? k}</dt>
          <dd>${personalView(t, v)}</dd>`,
    )}
  </dl>`;
}

function FIELD_LABEL(t: DeskTexts): Record<string, string> {
  return {
    givenNames: t.givenNames,
    familyName: t.familyName,
    estimatedAgeYears: t.age,
    sex: t.sex,
    description: t.description,
    location: t.lastKnownLocation,
    legalBasis: t.legalBasis,
    unit: t.contactUnit,
    email: t.contactEmail,
    heard: t.heard,
    note: t.heardNote,
    child: t.fieldChild,
    lastKnown: t.fieldLastKnown,
    childViewsHeard: t.fieldViews,
    contact: t.fieldContact,
    aliases: t.fieldAliases,
    nationalities: t.fieldNationalities,
    languages: t.fieldLanguages,
    dateOfBirth: t.fieldDateOfBirth,
    time: t.fieldTime,
    asylumStatus: t.fieldAsylum,
    guardianship: t.fieldGuardianship,
    riskIndicators: t.fieldRisks,
    phone: t.fieldPhone,
  };
}

const URGENCIES = ["URGENCY_IMMEDIATE", "URGENCY_HIGH", "URGENCY_NORMAL"];
const REASONS = [
  "REASON_CATEGORY_MISSING",
  "REASON_CATEGORY_TRAFFICKING_SUSPECTED",
  "REASON_CATEGORY_EXPLOITATION_SUSPECTED",
  "REASON_CATEGORY_UNACCOMPANIED_MINOR",
  "REASON_CATEGORY_MOVED",
  "REASON_CATEGORY_OTHER",
];
const DECLINE_REASONS = [
  "DECLINE_REASON_NOT_RESIDENT",
  "DECLINE_REASON_WRONG_MUNICIPALITY",
  "DECLINE_REASON_INSUFFICIENT_INFORMATION",
  "DECLINE_REASON_ALREADY_KNOWN",
  "DECLINE_REASON_OTHER",
];
const WITHDRAW_REASONS = [
  "WITHDRAW_REASON_CHILD_FOUND",
  "WITHDRAW_REASON_SENT_IN_ERROR",
  "WITHDRAW_REASON_OTHER",
];
const SEXES = ["female", "male", "other", "unknown"];

// --- Municipality (gateway) ----------------------------------------------------------------

interface InboxRow {
  referralId: string;
  status: string;
  from: string;
  urgency: string;
  reason: string;
  deadline: string;
  receivedAt: string;
}

interface SentRow {
  referralId: string;
  status: string;
  urgency: string;
  reason: string;
  destination: unknown;
  deadline: string;
  holder?: string;
  timeline: { type: string; by: string; at?: string; to?: string; code?: string }[];
}

/**
 * A list as a table: a header cell per column, a row per item, each cell what `cells` gives for
 * it; a line saying there is none when the list is empty. `caption` names what the table shows.
 */
function listTable<R>(
  t: DeskTexts,
  columns: readonly string[],
  rows: readonly R[],
  cells: (r: R) => readonly Part[],
  caption?: string,
): Html {
  if (rows.length === 0) return html`<p>${t.none}</p>`;
  return html`<table>
    ${
      caption === undefined
        ? ""
        : html`<caption class="hint">
            ${caption}
          </caption>`
    }
    <thead>
      <tr>
        ${columns.map((c) => html`<th scope="col">${c}</th>`)}
      </tr>
    </thead>
    <tbody>
      ${rows.map(
        (r) =>
          html`<tr>
            ${cells(r).map((c) => html`<td>${c}</td>`)}
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** The link to an item's page, named by the first eight characters of its referral id. */
const itemLink = (href: string, referralId: string): Html =>
  html`<a href="${href}">${referralId.slice(0, 8)}</a>`;

function municipalityViews(v: ViewContext): void {
  const { desk, api } = v;

  desk.get("/desk/", { config: DESK }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    const { s, t } = c;
    const res = await api(s, "GET", "/v1/inbox");
    if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
    const rows = (res.body as InboxRow[]).sort((a, b) => a.deadline.localeCompare(b.deadline));
    return v.render(
      req,
      reply,
      s,
      t.inbox,
      html`<h1>${t.inbox}</h1>
        <div data-live aria-live="polite">
          ${listTable(
            t,
            [t.referral, t.from, t.urgency, t.reason, t.deadline, t.timeLeft, t.status],
            rows,
            (r) => [
              itemLink(`/desk/inbox/${r.referralId}`, r.referralId),
              orgName(t, r.from),
              codeText(t, r.urgency),
              codeText(t, r.reason),
              when(r.deadline),
              r.status === "pending" ? timeLeft(t, r.deadline) : "",
              codeText(t, r.status),
            ],
            t.live,
          )}
        </div>`,
    );
  });

  desk.get<{ Params: { id: string } }>("/desk/inbox/:id", { config: DESK }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    const { s, t } = c;
    const id = req.params.id;
    // One audited API read: the child's data is opened at request time, never kept by the Desk.
    const res = ID.test(id) ? await api(s, "GET", `/v1/inbox/${id}`) : { status: 404, body: {} };
    if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
    const item = res.body as InboxRow & { personal: unknown };
    const pending = item.status === "pending";
    return v.render(
      req,
      reply,
      s,
      `${t.referral} ${id.slice(0, 8)}`,
      html`<h1>${t.referral} ${id.slice(0, 8)}</h1>
        ${facts([
          [t.status, codeText(t, item.status)],
          [t.from, orgName(t, item.from)],
          [t.urgency, codeText(t, item.urgency)],
          [t.reason, codeText(t, item.reason)],
          [t.deadline, html`${when(item.deadline)} (${timeLeft(t, item.deadline)})`],
        ])}
        ${childSection(t, item.personal)}
        ${
          pending
            ? html`<form class="act" method="post" action="/desk/inbox/${id}/accept">
                  ${csrfField(reply, s)}
                  <button class="primary" type="submit">${t.accept}</button>
                </form>
                <form class="act" method="post" action="/desk/inbox/${id}/decline">
                  ${csrfField(reply, s)}
                  <label for="decline-reason">${t.declineReason}</label>
                  <select id="decline-reason" name="reason" required>
                    ${options(t, DECLINE_REASONS, undefined, t.choose)}
                  </select>
                  <label for="decline-suggested">${t.suggested}</label>
                  <select id="decline-suggested" name="suggested">
                    <option value="">${t.noSuggestion}</option>
                    ${municipalityOptions()}
                  </select>
                  <button class="secondary" type="submit">${t.decline}</button>
                </form>`
            : ""
        }`,
    );
  });

  itemActions(v, "/desk/inbox", "/v1/inbox", [
    ["accept", () => ({})],
    [
      "decline",
      (f) => {
        const suggested = f.suggested ?? "";
        return {
          reason: f.reason ?? "",
          ...(suggested === "" ? {} : { suggested: { country: "se", municipality: suggested } }),
        };
      },
    ],
  ]);

  desk.get("/desk/sent", { config: DESK }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    const { s, t } = c;
    const res = await api(s, "GET", "/v1/referrals");
    if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
    const rows = (res.body as SentRow[]).sort((a, b) => a.deadline.localeCompare(b.deadline));
    return v.render(
      req,
      reply,
      s,
      t.sent,
      html`<h1>${t.sent}</h1>
        <div data-live aria-live="polite">
          ${listTable(
            t,
            [t.referral, t.destination, t.urgency, t.deadline, t.status],
            rows,
            (r) => [
              itemLink(`/desk/sent/${r.referralId}`, r.referralId),
              destinationText(t, r.destination),
              codeText(t, r.urgency),
              when(r.deadline),
              codeText(t, r.status),
            ],
            t.live,
          )}
        </div>`,
    );
  });

  desk.get<{ Params: { id: string } }>("/desk/sent/:id", { config: DESK }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    const { s, t } = c;
    const id = req.params.id;
    const res = ID.test(id)
      ? await api(s, "GET", `/v1/referrals/${id}`)
      : { status: 404, body: {} };
    if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
    const r = res.body as SentRow;
    const open = !["withdrawn", "closed", "rejected"].includes(r.status);
    return v.render(
      req,
      reply,
      s,
      `${t.referral} ${id.slice(0, 8)}`,
      html`<h1>${t.referral} ${id.slice(0, 8)}</h1>
        <div data-live aria-live="polite">
          <dl>
            <dt>${t.status}</dt>
            <dd id="status">${codeText(t, r.status)}</dd>
            <dt>${t.destination}</dt>
            <dd>${destinationText(t, r.destination)}</dd>
            <dt>${t.urgency}</dt>
            <dd>${codeText(t, r.urgency)}</dd>
            <dt>${t.deadline}</dt>
            <dd>${when(r.deadline)}</dd>
          </dl>
          <h2>${t.timeline}</h2>
          <ol class="timeline">
            ${r.timeline.map(
              (e) =>
                html`<li>
                  ${when(e.at)} <strong>${codeText(t, e.type)}</strong> ${orgName(t, e.by)}
                  ${e.to === undefined ? "" : html`→ ${orgName(t, e.to)}`}
                  ${e.code === undefined ? "" : html`(${codeText(t, e.code)})`}
                </li>`,
            )}
          </ol>
        </div>
        ${
          open
            ? html`<form class="act" method="post" action="/desk/sent/${id}/update">
                  ${csrfField(reply, s)}
                  <label for="update-urgency">${t.urgency}</label>
                  <select id="update-urgency" name="urgency" required>
                    ${options(t, URGENCIES, r.urgency)}
                  </select>
                  <button class="secondary" type="submit">${t.update}</button>
                </form>
                <form class="act" method="post" action="/desk/sent/${id}/withdraw">
                  ${csrfField(reply, s)}
                  <label for="withdraw-reason">${t.withdrawReason}</label>
                  <select id="withdraw-reason" name="reason" required>
                    ${options(t, WITHDRAW_REASONS, undefined, t.choose)}
                  </select>
                  <button class="secondary" type="submit">${t.withdraw}</button>
                </form>
                <form class="act" method="post" action="/desk/sent/${id}/close">
                  ${csrfField(reply, s)}
                  <button class="secondary" type="submit">${t.close}</button>
                </form>`
            : ""
        }`,
    );
  });

  itemActions(v, "/desk/sent", "/v1/referrals", [
    ["withdraw", (f) => ({ reason: f.reason ?? "" })],
    ["close", () => ({})],
    ["update", (f) => ({ urgency: f.urgency ?? "" })],
  ]);

  const newForm = (
    req: FastifyRequest,
    reply: FastifyReply,
    s: DeskSession,
    t: DeskTexts,
    values: Form,
    problems: Readonly<Record<string, string>>,
    general: readonly string[],
  ) => {
    const field = (name: string, label: string, control: Html, hint?: string) => {
      const problem = problems[name];
      return html`<div>
        <label for="f-${name}">${label}</label>
        ${hint === undefined ? "" : html`<p class="hint" id="f-${name}-hint">${hint}</p>`}
        ${control}
        ${
          problem === undefined
            ? ""
            : html`<p class="problem" id="f-${name}-problem">${problem}</p>`
        }
      </div>`;
    };
    const described = (name: string, hint = false) => {
      const ids = [
        hint ? `f-${name}-hint` : "",
        problems[name] === undefined ? "" : `f-${name}-problem`,
      ]
        .filter((x) => x !== "")
        .join(" ");
      return new Html(
        `id="f-${name}" name="${name}"${ids === "" ? "" : ` aria-describedby="${ids}"`}${
          problems[name] === undefined ? "" : ' aria-invalid="true"'
        }`,
      );
    };
    const text = (name: string, attrs = "") =>
      html`<input ${described(name)} value="${values[name] ?? ""}" ${new Html(attrs)} />`;
    const hasProblems = Object.keys(problems).length > 0 || general.length > 0;
    const dest = values.destination;
    return v.render(
      req,
      reply,
      s,
      t.newReferral,
      html`<h1>${t.newReferral}</h1>
        ${
          hasProblems
            ? html`<div class="alert" role="alert">
                <p>${t.formProblems}</p>
                ${
                  general.length === 0
                    ? ""
                    : html`<ul>
                        ${general.map((g) => html`<li>${g}</li>`)}
                      </ul>`
                }
              </div>`
            : ""
        }
        <form method="post" action="/desk/new" novalidate>
          ${csrfField(reply, s)}
          <input type="hidden" name="key" value="${values.key ?? randomUUID()}" />
          ${field(
            "destination",
            t.destination,
            html`<select ${described("destination", true)}>
              <option value="">${t.choose}</option>
              <optgroup label="${t.partnerCountries}">
                ${partnerCountries().map(
                  (p) =>
                    html`<option value="${p.code}" ${dest === p.code ? new Html("selected") : ""}>
                      ${p.name}
                    </option>`,
                )}
              </optgroup>
              ${municipalityOptions(dest)}
            </select>`,
            t.destinationHint,
          )}
          ${field(
            "urgency",
            t.urgency,
            html`<select ${described("urgency")}>
              ${options(t, URGENCIES, values.urgency, t.choose)}
            </select>`,
          )}
          ${field(
            "reason",
            t.reason,
            html`<select ${described("reason")}>
              ${options(t, REASONS, values.reason, t.choose)}
            </select>`,
          )}
          <fieldset>
            <legend>${t.childData}</legend>
            ${field("givenNames", t.givenNames, text("givenNames", 'autocomplete="off"'))}
            ${field("familyName", t.familyName, text("familyName", 'autocomplete="off"'))}
            ${field("age", t.age, text("age", 'inputmode="numeric" autocomplete="off"'))}
            ${field(
              "sex",
              t.sex,
              html`<select ${described("sex")}>
                ${options(t, SEXES, values.sex, t.choose)}
              </select>`,
            )}
            ${field(
              "description",
              t.description,
              html`<textarea ${described("description")} rows="3">
${values.description ?? ""}</textarea>`,
            )}
            ${field("lastKnownLocation", t.lastKnownLocation, text("lastKnownLocation", 'autocomplete="off"'))}
            <div>
              <label class="inline" for="f-heard"
                ><input
                  type="checkbox"
                  id="f-heard"
                  name="heard"
                  ${values.heard === "on" ? new Html("checked") : ""}
                />
                ${t.heard}</label
              >
            </div>
            ${field("heardNote", t.heardNote, text("heardNote", 'autocomplete="off"'))}
          </fieldset>
          ${field("legalBasis", t.legalBasis, text("legalBasis", 'autocomplete="off"'))}
          ${field("contactUnit", t.contactUnit, text("contactUnit", 'autocomplete="off"'))}
          ${field("contactEmail", t.contactEmail, text("contactEmail", 'type="email" autocomplete="off"'))}
          <button class="primary" type="submit">${t.send}</button>
        </form>`,
      hasProblems ? 400 : 200,
    );
  };

  desk.get("/desk/new", { config: DESK }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    return newForm(req, reply, c.s, c.t, {}, {}, []);
  });

  const checkReferral = schemaValidator(SCHEMA_IDS.api("referral-request"));
  desk.post<{ Body: Form }>("/desk/new", { config: DESK, ...v.csrf }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    const { s, t } = c;
    const values = req.body;
    const body = referralRequest(values);
    // The API's own schema, all problems at once, each shown next to its field; then the API
    // itself decides (and validates again).
    let issues: readonly Issue[] = [];
    try {
      checkReferral(body);
    } catch (err) {
      issues = isStafettError(err)
        ? (err.issues ?? [])
        : [{ field: "/", reason: "invalid", message: "" }];
    }
    if (issues.length === 0) {
      const key = values.key ?? "";
      const answer = await api(
        s,
        "POST",
        "/v1/referrals",
        body,
        /^[\x21-\x7e]{1,200}$/.test(key) ? { "idempotency-key": key } : {},
      );
      if (answer.status === 200 || answer.status === 202) {
        const { referralId } = answer.body as { referralId: string };
        s.flash = { kind: "ok", text: t.done };
        return reply.redirect(`/desk/sent/${referralId}`, 303);
      }
      const b = answer.body as { field?: string; reason?: string };
      issues = [
        { field: b.field ?? "/", reason: b.reason ?? "invalid", message: problemText(t, answer) },
      ];
    }
    const problems: Record<string, string> = {};
    const general: string[] = [];
    for (const i of issues) {
      const name = fieldOfPointer(i.field);
      const text = i.reason === "required" ? t.fieldRequired : t.fieldInvalid;
      if (name === undefined) general.push(`${t.fieldInvalid} (${i.field})`);
      else problems[name] ??= text;
    }
    return newForm(req, reply, s, t, values, problems, general);
  });
}

function partnerCountries() {
  return ["no", "dk", "fi", "de", "pl", "nl", "ee", "lv", "lt", "is"]
    .map((code) => countryInfo(code))
    .filter((c) => c !== undefined)
    .sort((a, b) => a.name.localeCompare(b.name, "sv"));
}

/** Which form field a schema problem's place (a JSON pointer) belongs to. */
const FIELD_OF_POINTER: readonly (readonly [string, string])[] = [
  ["/destination", "destination"],
  ["/urgency", "urgency"],
  ["/reason", "reason"],
  ["/personal/child/givenNames", "givenNames"],
  ["/personal/child/familyName", "familyName"],
  ["/personal/child/estimatedAgeYears", "age"],
  ["/personal/child/sex", "sex"],
  ["/personal/child/description", "description"],
  ["/personal/child", "givenNames"],
  ["/personal/lastKnown", "lastKnownLocation"],
  ["/personal/childViewsHeard", "heardNote"],
  ["/personal/legalBasis", "legalBasis"],
  ["/personal/contact/unit", "contactUnit"],
  ["/personal/contact/email", "contactEmail"],
  ["/personal/contact", "contactUnit"],
];

function fieldOfPointer(pointer: string): string | undefined {
  return FIELD_OF_POINTER.find(([p]) => pointer === p || pointer.startsWith(`${p}/`))?.[1];
}

/** The API's request body from the form: empty fields are left out, so a required one is "missing". */
function referralRequest(f: Form): unknown {
  const given = (k: string): string | undefined => {
    const x = (f[k] ?? "").trim();
    return x === "" ? undefined : x;
  };
  const dest = given("destination");
  const age = given("age");
  const location = given("lastKnownLocation");
  const strip = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined));
  return strip({
    urgency: given("urgency"),
    reason: given("reason"),
    destination:
      dest === undefined
        ? undefined
        : /^[0-9]{4}$/.test(dest)
          ? { country: "se", municipality: dest }
          : { country: dest },
    personal: strip({
      child: strip({
        givenNames: given("givenNames"),
        familyName: given("familyName"),
        estimatedAgeYears:
          age === undefined ? undefined : /^[0-9]{1,2}$/.test(age) ? Number(age) : age,
        sex: given("sex"),
        description: given("description"),
      }),
      lastKnown: location === undefined ? undefined : { location },
      childViewsHeard: strip({ heard: f.heard === "on", note: given("heardNote") }),
      legalBasis: given("legalBasis"),
      contact: strip({ unit: given("contactUnit"), email: given("contactEmail") }),
    }),
  });
}

// --- Regional coordinator (hub) ----------------------------------------------------------------

interface HubRow {
  referralId: string;
  origin: string;
  status: string;
  urgency: string;
  deadline: string;
  destination: unknown;
  escalated: boolean;
  holder?: string;
}

function hubTable(t: DeskTexts, rows: readonly HubRow[]): Html {
  return listTable(
    t,
    [t.referral, t.from, t.destination, t.urgency, t.deadline, t.timeLeft, t.status],
    [...rows].sort((a, b) => a.deadline.localeCompare(b.deadline)),
    (r) => [
      itemLink(`/desk/referrals/${r.referralId}`, r.referralId),
      orgName(t, r.origin),
      destinationText(t, r.destination),
      codeText(t, r.urgency),
      when(r.deadline),
      ["accepted", "closed", "withdrawn"].includes(r.status) ? "" : timeLeft(t, r.deadline),
      html`${codeText(t, r.status)}${r.escalated ? html` · ${t.escalated}` : ""}`,
    ],
  );
}

function hubViews(v: ViewContext): void {
  const { desk, api } = v;
  const self = parseOrgId(v.org);
  const ownRegion = self.role === "hub" ? self.region : "";
  desk.get("/desk/", { config: DESK }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    const { s, t } = c;
    const [all, triage] = await Promise.all([
      api(s, "GET", "/v1/referrals"),
      api(s, "GET", "/v1/triage"),
    ]);
    if (all.status !== 200) return refusedPage(v, req, reply, s, t, all);
    if (triage.status !== 200) return refusedPage(v, req, reply, s, t, triage);
    return v.render(
      req,
      reply,
      s,
      t.referrals,
      html`<h1>${t.referrals}</h1>
        <div data-live aria-live="polite">
          <p class="hint">${t.live}</p>
          <h2>${t.triage}</h2>
          ${hubTable(t, triage.body as HubRow[])}
          <h2>${t.referrals}</h2>
          ${hubTable(t, all.body as HubRow[])}
        </div>`,
    );
  });

  desk.get<{ Params: { id: string } }>(
    "/desk/referrals/:id",
    { config: DESK },
    async (req, reply) => {
      const c = await v.signedIn(req, reply);
      if (c === undefined) return reply;
      const { s, t } = c;
      const id = req.params.id;
      const res = ID.test(id)
        ? await api(s, "GET", `/v1/referrals/${id}`)
        : { status: 404, body: {} };
      if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
      const r = res.body as HubRow & { history: { type: string; at?: string; by?: string }[] };
      // One audited API read of the child's data, at request time.
      const personal = await api(s, "GET", `/v1/referrals/${id}/personal`);
      if (personal.status !== 200) return refusedPage(v, req, reply, s, t, personal);
      return v.render(
        req,
        reply,
        s,
        `${t.referral} ${id.slice(0, 8)}`,
        html`<h1>${t.referral} ${id.slice(0, 8)}</h1>
          ${facts([
            [t.status, codeText(t, r.status)],
            [t.from, orgName(t, r.origin)],
            [t.destination, destinationText(t, r.destination)],
            [t.urgency, codeText(t, r.urgency)],
            [t.deadline, html`${when(r.deadline)} (${timeLeft(t, r.deadline)})`],
          ])}
          ${childSection(t, (personal.body as { personal: unknown }).personal)}
          ${
            r.status === "triage"
              ? html`<form class="act" method="post" action="/desk/referrals/${id}/forward">
                    ${csrfField(reply, s)}
                    <label for="forward-to">${t.forwardTo}</label>
                    <select id="forward-to" name="municipality" required>
                      <option value="">${t.choose}</option>
                      ${municipalityOptions()}
                    </select>
                    <button class="primary" type="submit">${t.forward}</button>
                  </form>
                  <form class="act" method="post" action="/desk/referrals/${id}/reroute">
                    ${csrfField(reply, s)}
                    <label for="reroute-to">${t.rerouteTo}</label>
                    <select id="reroute-to" name="region" required>
                      <option value="">${t.choose}</option>
                      ${regions()
                        .filter((g) => g.slug !== ownRegion)
                        .map((g) => html`<option value="${g.slug}">${g.name}</option>`)}
                    </select>
                    <button class="secondary" type="submit">${t.reroute}</button>
                  </form>`
              : ""
          }
          <h2>${t.history}</h2>
          <ol class="timeline">
            ${r.history.map(
              (h) =>
                html`<li>
                  ${when(h.at)} ${codeText(t, h.type)} ${h.by === undefined ? "" : orgName(t, h.by)}
                </li>`,
            )}
          </ol>`,
      );
    },
  );

  itemActions(v, "/desk/referrals", "/v1/triage", [
    ["forward", (f) => ({ municipality: f.municipality ?? "" })],
    ["reroute", (f) => ({ region: f.region ?? "" })],
  ]);
}

// --- National coordinator ----------------------------------------------------------------------

interface EscalationRow {
  referralId: string;
  eventId: string;
  from: string;
  holder: string;
  deadline: string;
  urgency?: string;
  destination?: unknown;
  at: string;
  acknowledged?: { by: string; name?: string; at: string };
  assignee?: string;
  resolved?: { by: string; name?: string; at: string; note: string };
}

function escalationState(t: DeskTexts, e: EscalationRow): string {
  if (e.resolved !== undefined) return t.resolved;
  if (e.acknowledged !== undefined) return t.acknowledged;
  return t.open_;
}

function regionName(slug: string): string {
  try {
    return regionInfo(slug).name;
  } catch {
    return slug;
  }
}

/** The national overview: counts only, so the page is live like the lists (no audited read). */
function overviewPage(t: DeskTexts, o: Overview): Html {
  const counts = (c: OverviewCounts) =>
    html`<td>${c.open}</td>
      <td>${c.triage}</td>
      <td>${c.forwarded}</td>
      <td>${c.rerouted}</td>
      <td>${c.immediate}</td>
      <td>${c.high}</td>
      <td>${c.normal}</td>
      <td class="${c.overdue > 0 ? "overdue" : ""}">${c.overdue}</td>
      <td>${c.escalated}</td>
      <td>${c.nearestDeadline === undefined ? "" : when(c.nearestDeadline)}</td>`;
  const minutes = String(Math.round(o.staleAfterMs / 60_000));
  return html`<h1>${t.nationalOverview}</h1>
    <div data-live aria-live="polite">
      <table id="overview">
        <caption class="hint">
          ${t.overviewCaption}
        </caption>
        <thead>
          <tr>
            <th scope="col">${t.region}</th>
            <th scope="col">${t.openReferrals}</th>
            <th scope="col">${t.withRegion}</th>
            <th scope="col">${t.awaitingAnswer}</th>
            <th scope="col">${t.reroutedCount}</th>
            <th scope="col">${codeText(t, "URGENCY_IMMEDIATE")}</th>
            <th scope="col">${codeText(t, "URGENCY_HIGH")}</th>
            <th scope="col">${codeText(t, "URGENCY_NORMAL")}</th>
            <th scope="col">${t.overdueCount}</th>
            <th scope="col">${t.escalatedCount}</th>
            <th scope="col">${t.nearestDeadline}</th>
            <th scope="col">${t.reportedAt}</th>
          </tr>
        </thead>
        <tbody>
          ${o.regions.map(
            (r) =>
              html`<tr data-region="${r.region}">
                <th scope="row">${regionName(r.region)}</th>
                ${counts(r)}
                <td>
                  ${r.reportedAt === undefined ? t.noReport : when(r.reportedAt)}
                  ${r.stale ? html`<strong class="problem">${t.stale}</strong>` : ""}
                </td>
              </tr>`,
          )}
        </tbody>
        <tfoot>
          <tr data-region="total">
            <th scope="row">${t.total}</th>
            ${counts(o.totals)}
            <td></td>
          </tr>
        </tfoot>
      </table>
      <p class="hint">${t.staleHint.replace("{minutes}", minutes)}</p>
    </div>`;
}

function coordinatorViews(v: ViewContext): void {
  const { desk, api } = v;
  desk.get("/desk/overview", { config: DESK }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    const { s, t } = c;
    const res = await api(s, "GET", "/v1/overview");
    if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
    return v.render(req, reply, s, t.nationalOverview, overviewPage(t, res.body as Overview));
  });
  desk.get("/desk/", { config: DESK }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    const { s, t } = c;
    const res = await api(s, "GET", "/v1/escalations");
    if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
    const rows = (res.body as EscalationRow[]).sort((a, b) => b.at.localeCompare(a.at));
    return v.render(
      req,
      reply,
      s,
      t.escalations,
      html`<h1>${t.escalations}</h1>
        <div data-live aria-live="polite">
          <p class="hint">${t.live}</p>
          ${listTable(
            t,
            [
              t.escalation,
              t.from,
              t.holder,
              t.destination,
              t.urgency,
              t.deadline,
              t.status,
              t.assignee,
            ],
            rows,
            (r) => [
              itemLink(`/desk/escalations/${r.eventId}`, r.referralId),
              orgName(t, r.from),
              orgName(t, r.holder),
              r.destination === undefined ? "" : destinationText(t, r.destination),
              r.urgency === undefined ? "" : codeText(t, r.urgency),
              when(r.deadline),
              escalationState(t, r),
              r.assignee ?? "",
            ],
          )}
        </div>`,
    );
  });

  desk.get<{ Params: { id: string } }>(
    "/desk/escalations/:id",
    { config: DESK },
    async (req, reply) => {
      const c = await v.signedIn(req, reply);
      if (c === undefined) return reply;
      const { s, t } = c;
      const res = await api(s, "GET", "/v1/escalations");
      if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
      const e = (res.body as EscalationRow[]).find((x) => x.eventId === req.params.id);
      if (e === undefined) return refusedPage(v, req, reply, s, t, { status: 404, body: {} });
      const id = e.eventId;
      const open = e.resolved === undefined;
      return v.render(
        req,
        reply,
        s,
        `${t.escalation} ${e.referralId.slice(0, 8)}`,
        html`<h1>${t.escalation} ${e.referralId.slice(0, 8)}</h1>
          <dl>
            <dt>${t.status}</dt>
            <dd id="escalation-state">${escalationState(t, e)}</dd>
            <dt>${t.from}</dt>
            <dd>${orgName(t, e.from)}</dd>
            <dt>${t.holder}</dt>
            <dd>${orgName(t, e.holder)}</dd>
            <dt>${t.deadline}</dt>
            <dd>${when(e.deadline)}</dd>
            ${
              e.acknowledged === undefined
                ? ""
                : html`<dt>${t.acknowledged}</dt>
                    <dd>
                      ${e.acknowledged.name ?? e.acknowledged.by}, ${when(e.acknowledged.at)}
                    </dd>`
            }
            ${
              e.assignee === undefined
                ? ""
                : html`<dt>${t.assignee}</dt>
                    <dd id="escalation-assignee">${e.assignee}</dd>`
            }
            ${
              e.resolved === undefined
                ? ""
                : html`<dt>${t.resolved}</dt>
                    <dd>
                      ${e.resolved.name ?? e.resolved.by}, ${when(e.resolved.at)}:
                      ${e.resolved.note}
                    </dd>`
            }
          </dl>
          ${
            open && e.acknowledged === undefined
              ? html`<form class="act" method="post" action="/desk/escalations/${id}/acknowledge">
                  ${csrfField(reply, s)}
                  <button class="primary" type="submit">${t.acknowledge}</button>
                </form>`
              : ""
          }
          ${
            open && e.acknowledged !== undefined
              ? html`<form class="act" method="post" action="/desk/escalations/${id}/assign">
                    ${csrfField(reply, s)}
                    <label for="assign-officer">${t.assignTo}</label>
                    <input
                      id="assign-officer"
                      name="officer"
                      required
                      maxlength="100"
                      autocomplete="off"
                    />
                    <button class="secondary" type="submit">${t.assign}</button>
                  </form>
                  <form class="act" method="post" action="/desk/escalations/${id}/resolve">
                    ${csrfField(reply, s)}
                    <label for="resolve-note">${t.note}</label>
                    <textarea
                      id="resolve-note"
                      name="note"
                      required
                      maxlength="1000"
                      rows="3"
                    ></textarea>
                    <button class="primary" type="submit">${t.resolve}</button>
                  </form>`
              : ""
          }`,
      );
    },
  );

  itemActions(v, "/desk/escalations", "/v1/escalations", [
    ["acknowledge", () => ({})],
    ["assign", (f) => ({ officer: (f.officer ?? "").trim() })],
    ["resolve", (f) => ({ note: (f.note ?? "").trim() })],
  ]);
}

// --- Contact point (liaison) -------------------------------------------------------------------

interface InboundRow {
  referralId: string;
  origin: string;
  urgency: string;
  reason: string;
  deadline: string;
  routedTo?: string;
  /** Who holds it now, as the hubs on its way reported: the municipality once it is there. */
  heldBy?: string;
  status: string;
  at: string;
}

interface OutboundRow {
  referralId: string;
  origin: string;
  partner: string;
  deadline: string;
  urgency?: string;
  escalated: boolean;
  answer?: string;
  crossed: { type: string; at: string }[];
}

/** Where a routed referral went: the municipality holding it once there, else the hub it left for. */
function routedTo(t: DeskTexts, r: InboundRow): Html | string {
  const to = r.heldBy ?? r.routedTo;
  return to === undefined ? "" : html` → ${orgName(t, to)}`;
}

/** What left the country, and the partner's answers: no personal data. */
function outboundTable(t: DeskTexts, rows: readonly OutboundRow[]): Html {
  return listTable(
    t,
    [t.referral, t.from, t.to, t.deadline, t.timeline, t.partnerAnswer],
    rows,
    (r) => [
      r.referralId.slice(0, 8),
      orgName(t, r.origin),
      countryInfo(r.partner)?.name ?? r.partner,
      when(r.deadline),
      r.crossed.map((c) => codeText(t, c.type)).join(", "),
      html`${
        r.answer === undefined
          ? t.noAnswer
          : r.answer === "accepted"
            ? t.answerAccepted
            : t.answerDeclined
      }${r.escalated ? html` · ${t.escalated}` : ""}`,
    ],
  );
}

function liaisonViews(v: ViewContext): void {
  const { desk, api } = v;
  desk.get("/desk/", { config: DESK }, async (req, reply) => {
    const c = await v.signedIn(req, reply);
    if (c === undefined) return reply;
    const { s, t } = c;
    const [res, out] = await Promise.all([
      api(s, "GET", "/v1/inbound"),
      api(s, "GET", "/v1/outbound"),
    ]);
    if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
    if (out.status !== 200) return refusedPage(v, req, reply, s, t, out);
    const rows = (res.body as InboundRow[]).sort((a, b) => a.deadline.localeCompare(b.deadline));
    const sent = (out.body as OutboundRow[]).sort((a, b) => a.deadline.localeCompare(b.deadline));
    return v.render(
      req,
      reply,
      s,
      t.inbound,
      html`<h1>${t.inbound}</h1>
        <div data-live aria-live="polite">
          <p class="hint">${t.live}</p>
          ${listTable(
            t,
            [t.referral, t.from, t.urgency, t.reason, t.deadline, t.timeLeft, t.status],
            rows,
            (r) => [
              itemLink(`/desk/inbound/${r.referralId}`, r.referralId),
              orgName(t, r.origin),
              codeText(t, r.urgency),
              codeText(t, r.reason),
              when(r.deadline),
              r.status === "pending" ? timeLeft(t, r.deadline) : "",
              html`${codeText(t, r.status)}${routedTo(t, r)}`,
            ],
          )}
          <h2>${t.outbound}</h2>
          ${outboundTable(t, sent)}
        </div>`,
    );
  });

  desk.get<{ Params: { id: string } }>(
    "/desk/inbound/:id",
    { config: DESK },
    async (req, reply) => {
      const c = await v.signedIn(req, reply);
      if (c === undefined) return reply;
      const { s, t } = c;
      const id = req.params.id;
      // One audited API read of the child's data, at request time.
      const res = ID.test(id)
        ? await api(s, "GET", `/v1/inbound/${id}`)
        : { status: 404, body: {} };
      if (res.status !== 200) return refusedPage(v, req, reply, s, t, res);
      const r = res.body as InboundRow & { personal: unknown };
      const pending = r.status === "pending";
      return v.render(
        req,
        reply,
        s,
        `${t.referral} ${id.slice(0, 8)}`,
        html`<h1>${t.referral} ${id.slice(0, 8)}</h1>
          ${facts([
            [t.status, html`${codeText(t, r.status)}${routedTo(t, r)}`],
            [t.from, orgName(t, r.origin)],
            [t.urgency, codeText(t, r.urgency)],
            [t.reason, codeText(t, r.reason)],
            [t.deadline, html`${when(r.deadline)} (${timeLeft(t, r.deadline)})`],
          ])}
          ${childSection(t, r.personal)}
          ${
            pending
              ? html`<form class="act" method="post" action="/desk/inbound/${id}/route">
                    ${csrfField(reply, s)}
                    <label for="route-to">${t.forwardTo}</label>
                    <select id="route-to" name="municipality" required>
                      <option value="">${t.choose}</option>
                      ${municipalityOptions()}
                    </select>
                    <button class="primary" type="submit">${t.routeTo}</button>
                  </form>
                  <form class="act" method="post" action="/desk/inbound/${id}/accept">
                    ${csrfField(reply, s)}
                    <button class="secondary" type="submit">${t.acceptForCountry}</button>
                  </form>
                  <form class="act" method="post" action="/desk/inbound/${id}/decline">
                    ${csrfField(reply, s)}
                    <label for="inbound-decline">${t.inboundDeclineReason}</label>
                    <select id="inbound-decline" name="reason">
                      ${options(t, DECLINE_REASONS, undefined, t.noSuggestion)}
                    </select>
                    <button class="secondary" type="submit">${t.decline}</button>
                  </form>`
              : ""
          }`,
      );
    },
  );

  itemActions(v, "/desk/inbound", "/v1/inbound", [
    ["route", (f) => ({ municipality: f.municipality ?? "" })],
    ["accept", () => ({})],
    ["decline", (f) => ((f.reason ?? "").trim() === "" ? {} : { reason: (f.reason ?? "").trim() })],
  ]);
}
