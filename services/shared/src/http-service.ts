/**
 * The HTTP layer every service's API registers (fastify plugin `httpService`): who may call each
 * route, one body limit, request bodies validated against schemas/api, one mapping from what a
 * handler throws to a coded JSON answer, `/healthz` (the process answers) and `/readyz` (it can
 * do its work: readiness.ts), a log line and a duration metric per request that hold no value
 * from the request.
 *
 *   const app = fastify();
 *   await app.register(httpService, { auth, org, log });
 *   app.post("/v1/x/:id/decline", { config: { access: "own-org" },
 *     schema: { body: requestBody("decline-request") } }, handler);
 *
 * Every route declares `config.access` (registering one without it throws), and every route
 * that takes a body (POST, PUT, PATCH) declares `schema.body`. The decision is made on the
 * matched route, never on the raw URL: the router decodes percent-escapes, so "/%761/inbox"
 * reaches "/v1/inbox" and is decided as "/v1/inbox".
 */
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  FastifySchemaCompiler,
  RouteOptions,
} from "fastify";
import { fastifyPlugin } from "fastify-plugin";
import type { ServerResponse } from "node:http";
import { isStafettError } from "./errors.js";
import type { AuditAction, AuditLog } from "./audit.js";
import {
  AuthError,
  createTokenVerifier,
  principalOf,
  type AuthConfig,
  type Principal,
} from "./http-auth.js";
import { errorReply } from "./http-errors.js";
import type { Logger } from "./logger.js";
import type { ServiceMetrics } from "./metrics.js";
import type { Readiness } from "./readiness.js";
import type { Notifier } from "./notifier.js";
import type { Notification } from "./notifications.js";
import { parseOrgId, type Address } from "./subjects.js";
import type { Role } from "./types.js";
import { schemaValidator, SCHEMA_IDS, type ApiSchemaName } from "./validate.js";

/**
 * The largest request body any service takes, in bytes. The largest request is a referral with
 * its personal part: a few KiB in practice, and under the schema's length limits at most about
 * 12,000 characters of text (48 KB even if every one took four bytes of UTF-8).
 */
export const BODY_LIMIT = 64 * 1024;

/**
 * Who may call a route, declared on every route as `config: { access }`:
 * - `"public"`: anyone, without a token (`/healthz`, the gateway's `/openapi.yaml`);
 * - `"own-org"`: a valid token whose `org` is the service's own organisation;
 * - `{ roles }`: a valid token whose `org` is an organisation of one of these roles in the
 *   service's own country.
 * A valid token that the route does not admit answers 403 ERR_FORBIDDEN; a missing or invalid
 * token 401 ERR_UNAUTHENTICATED.
 */
export type RouteAccess =
  | "public"
  | "own-org"
  | { readonly roles: readonly Role[] }
  /**
   * A person of the own organisation whose token grants this role (its `roles` claim): an
   * `auditor` reads the access audit, an `eraser` erases a referral's personal part.
   */
  | { readonly grant: "auditor" | "eraser" }
  /**
   * A Desk page (desk/plugin.ts): the Desk's signed-in session decides, and the Desk reaches
   * the child's data only through this API's own routes, with the person's token. Its forms are
   * checked by the Desk (CSRF token, then the API's schemas), so it declares no body schema.
   */
  | "desk";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Who may call the route; required on every route (see RouteAccess). */
    access?: RouteAccess;
  }
  interface FastifyRequest {
    /** The caller, once its token was admitted; null on public routes. */
    principal: Principal | null;
    /**
     * Records in the access audit what the caller does (a read of a child's data, an action),
     * before the answer leaves; throws ERR_UNAVAILABLE (503) when it cannot be written.
     */
    audit(action: AuditAction, about?: { referralId?: string; eventId?: string }): Promise<void>;
  }
}

export interface HttpServiceOptions {
  /** Where bearer tokens are verified against (JWKS, issuer, audience). */
  auth: AuthConfig;
  /** The organisation the service acts for, e.g. "se:hub:vast". */
  org: string;
  /** The service's logger; the plugin logs through `child({ component: "http" })`. */
  log: Logger;
  /** The clock tokens are checked against; the system clock by default. */
  clock?: () => Date;
  /** The party's access audit: `req.audit` writes to it, and `GET /v1/audit` reads it. */
  audit?: AuditLog;
  /** What `GET /readyz` answers from; without it, /readyz answers as /healthz does. */
  readiness?: Readiness;
  /** Where each request's duration is counted, by method, route pattern and status. */
  metrics?: ServiceMetrics;
  /** The party's notifications: `GET /v1/events` streams them (Server-Sent Events). */
  events?: Pick<Notifier, "subscribe" | "since" | "payload">;
}

/** How often an idle event stream gets a comment line, so that proxies keep it open. */
export const EVENT_STREAM_PING_MS = 15_000;

/** The header in which a client states why it reads or acts (recorded in the access audit). */
export const PURPOSE_HEADER = "stafett-purpose";

/** The request body schema of a route: `schema: { body: requestBody("withdraw-request") }`. */
export function requestBody(name: ApiSchemaName): { readonly $ref: string } {
  return { $ref: SCHEMA_IDS.api(name) };
}

const METHODS_WITH_BODY = new Set(["POST", "PUT", "PATCH"]);

/** A route was matched that declares no `config.access`: refused, as a bug, with 500. */
class AccessNotDeclared extends Error {
  override readonly name = "AccessNotDeclared";
}

async function plugin(app: FastifyInstance, options: HttpServiceOptions): Promise<void> {
  const self = parseOrgId(options.org);
  const verify = createTokenVerifier(options.auth, options.clock);
  const log = options.log.child({ component: "http" });

  app.decorateRequest("principal", null);
  app.decorateRequest(
    "audit",
    async function audit(
      this: FastifyRequest,
      action: AuditAction,
      about: { referralId?: string; eventId?: string } = {},
    ): Promise<void> {
      const who = this.principal;
      if (options.audit === undefined || who === null) return;
      const purpose = this.headers[PURPOSE_HEADER];
      await options.audit.record({
        sub: who.subject,
        ...(who.name === undefined ? {} : { name: who.name }),
        action,
        ...about,
        ...(typeof purpose === "string" && /^[\x20-\x7e\u00a0-\u024f]{1,200}$/.test(purpose)
          ? { purpose }
          : {}),
      });
    },
  );

  app.addHook("onRoute", (route) => {
    const where = `${String(route.method)} ${route.url}`;
    if (route.config?.access === undefined)
      throw new Error(`${where}: the route declares no config.access`);
    if (
      route.config.access !== "desk" &&
      methods(route).some((m) => METHODS_WITH_BODY.has(m)) &&
      route.schema?.body === undefined
    )
      throw new Error(`${where}: the route takes a body but declares no schema.body`);
    if (route.bodyLimit !== undefined && route.bodyLimit !== BODY_LIMIT)
      throw new Error(`${where}: the body limit is BODY_LIMIT, for every route`);
    route.bodyLimit = BODY_LIMIT;
  });

  // Request parts are validated with the generated validators of schemas/ (validate.ts), so a
  // refusal is the same coded ERR_SCHEMA_INVALID, naming places and rules, never values.
  app.setValidatorCompiler(validatorCompiler);

  app.addHook("onRequest", async (req) => {
    if (req.is404) return;
    const access = req.routeOptions.config.access;
    if (access === "public" || access === "desk") return;
    if (access === undefined) throw new AccessNotDeclared("no access declared");
    const token = await verify(req.headers.authorization);
    const org = token.org;
    if (org === undefined || !admits(access, org, token.roles, options.org, self)) {
      throw new AuthError(
        403,
        "ERR_FORBIDDEN",
        access === "own-org"
          ? "the token is not for this organisation"
          : "the token's organisation may not call this route",
      );
    }
    req.principal = principalOf(org, token);
  });

  const httpDuration = options.metrics?.httpDuration;
  app.addHook("onResponse", async (req, reply) => {
    httpDuration?.observe(
      { method: req.method, route: routeOf(req) ?? "unmatched", status: String(reply.statusCode) },
      reply.elapsedTime / 1_000,
    );
    log.info(
      {
        method: req.method,
        route: routeOf(req),
        status: reply.statusCode,
        duration_ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      "request",
    );
  });

  app.setErrorHandler((err, req, reply) => answerError(err, req, reply, log));
  app.setNotFoundHandler((_req, reply) =>
    reply.code(404).send({ code: "ERR_NOT_FOUND", message: "no such route" }),
  );

  app.get("/healthz", { config: { access: "public" } }, async () => ({ ok: true }));

  // Ready: 200 with every check, or 503 naming the failing ones with their code and reason.
  const readiness = options.readiness;
  app.get("/readyz", { config: { access: "public" } }, async (_req, reply) => {
    if (readiness === undefined) return { ready: true, checks: {} };
    const report = await readiness.evaluate();
    if (report.ready) return { ready: true, checks: report.checks };
    return reply.code(503).send({
      ready: false,
      code: "ERR_UNAVAILABLE",
      failing: report.failing,
      checks: report.checks,
    });
  });
  if (options.events !== undefined) eventStream(app, options.events, log);

  const audit = options.audit;
  if (audit !== undefined)
    app.get<{ Querystring: Record<string, string | undefined> }>(
      "/v1/audit",
      { config: { access: { grant: "auditor" } } },
      async (req) => {
        const q = req.query;
        const limit = q.limit === undefined ? undefined : Number(q.limit);
        const after = q.after === undefined ? undefined : Number(q.after);
        return audit.list({
          ...(q.referralId === undefined ? {} : { referralId: q.referralId }),
          ...(q.sub === undefined ? {} : { sub: q.sub }),
          ...(q.from === undefined ? {} : { from: q.from }),
          ...(q.to === undefined ? {} : { to: q.to }),
          ...(after === undefined || Number.isNaN(after) ? {} : { after }),
          ...(limit === undefined || Number.isNaN(limit) ? {} : { limit }),
        });
      },
    );
}

/**
 * `GET /v1/events`: the party's notifications as Server-Sent Events, the same as its webhooks
 * carry (`id:` the notification's place in the stream, `event:` its type, `data:` the webhook
 * body). A client that reconnects with `Last-Event-ID` (browsers' EventSource does) gets every
 * notification after that one first, from the outbox on disk, so nothing is missed across a
 * reconnect or a restart of the service, and nothing is sent twice on one connection.
 */
function eventStream(
  app: FastifyInstance,
  events: NonNullable<HttpServiceOptions["events"]>,
  log: Logger,
): void {
  const open = new Set<ServerResponse>();
  // A stream never ends by itself: closing the server ends them, or close() would wait forever.
  app.addHook("preClose", async () => {
    for (const raw of open) raw.end();
  });
  app.get("/v1/events", { config: { access: "own-org" } }, (req, reply) => {
    const header = req.headers["last-event-id"];
    const after = typeof header === "string" && /^\d{1,15}$/.test(header) ? Number(header) : 0;
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    raw.write("retry: 2000\n\n");
    let sent = after;
    const write = (seq: number, n: Notification): void => {
      if (seq <= sent) return;
      sent = seq;
      raw.write(`id: ${seq}\nevent: ${n.type}\ndata: ${JSON.stringify(events.payload(n))}\n\n`);
    };
    // Subscribed first, then what is on disk: a notification stored meanwhile comes through the
    // subscription, after the replay (which runs without a pause), and `sent` drops overlaps.
    const unsubscribe = events.subscribe(write);
    for (const [seq, n] of events.since(after)) write(seq, n);
    const ping = setInterval(() => raw.write(": ping\n\n"), EVENT_STREAM_PING_MS);
    open.add(raw);
    raw.on("close", () => {
      clearInterval(ping);
      unsubscribe();
      open.delete(raw);
      log.info(
        {
          method: req.method,
          route: "/v1/events",
          status: 200,
          duration_ms: Math.round(reply.elapsedTime * 10) / 10,
        },
        "request",
      );
    });
  });
}

/** The plugin; register it before the service's routes. */
export const httpService: FastifyPluginAsync<HttpServiceOptions> = fastifyPlugin(plugin, {
  name: "stafett-http",
  fastify: "5.x",
});

function methods(route: RouteOptions): string[] {
  return (Array.isArray(route.method) ? route.method : [route.method]).map(String);
}

/** Whether a token for organisation `caller` may call a route with `access`. */
function admits(
  access: Exclude<RouteAccess, "public" | "desk">,
  caller: string,
  roles: readonly string[],
  org: string,
  self: Address,
): boolean {
  if (access === "own-org") return caller === org;
  if ("grant" in access) return caller === org && roles.includes(access.grant);
  let address: Address;
  try {
    address = parseOrgId(caller);
  } catch {
    return false;
  }
  return address.country === self.country && access.roles.includes(address.role);
}

/** The matched route's pattern ("/v1/referrals/:id"), never the URL; null when none matched. */
function routeOf(req: FastifyRequest): string | null {
  return req.is404 ? null : (req.routeOptions.url ?? null);
}

/**
 * The coded answer to anything thrown (http-errors.ts). A 5xx is logged with its code, the
 * route's pattern and, for an uncoded error, its class name only: a library's message or
 * stack can quote the request.
 */
function answerError(
  err: unknown,
  req: FastifyRequest,
  reply: FastifyReply,
  log: Logger,
): FastifyReply {
  const r = errorReply(err, BODY_LIMIT);
  if (r.status >= 500) {
    const what = isStafettError(err) ? { reason: err.reason } : { error: kindOf(err) };
    log[r.status === 503 ? "warn" : "error"](
      { method: req.method, route: routeOf(req), status: r.status, code: r.body.code, ...what },
      "request failed",
    );
  }
  return reply.code(r.status).headers(r.headers).send(r.body);
}

/** An uncoded error's class name ("TypeError"), or the type of a thrown non-error: never its text. */
function kindOf(err: unknown): string {
  if (!(err instanceof Error)) return typeof err;
  return /^\w{1,64}$/.test(err.name) ? err.name : "Error";
}

/** A request part's schema is `{ $ref }` to a schema in schemas/ (see requestBody). */
const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, method, url, httpPart }) => {
  const ref =
    typeof schema === "object" && schema !== null && Object.keys(schema).length === 1
      ? (schema as { $ref?: unknown }).$ref
      : undefined;
  if (typeof ref !== "string")
    throw new Error(
      `${method} ${url}: the ${String(httpPart)} schema is not { $ref: <schema id> }`,
    );
  const check = schemaValidator(ref);
  return (data: unknown) => {
    try {
      check(data);
      return true;
    } catch (err) {
      return { error: err instanceof Error ? err : new Error("invalid") };
    }
  };
};
