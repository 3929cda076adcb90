import type { FastifyInstance, InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AuditLog,
  createDevTokenIssuer,
  createLogger,
  generateSigningKey,
  importSigningKey,
  type DevTokenIssuer,
} from "@stafett/shared";
import { buildLiaisonHttp } from "./http.js";
import type { Liaison } from "./liaison.js";
import { LiaisonState, type InboundReferral } from "./state.js";

const ORG = "se:liaison";
const ID = "4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10";

/** What the routes asked the liaison to do. */
const calls: unknown[][] = [];

function liaisonStandIn(): Liaison {
  const state = new LiaisonState();
  state.apply({
    k: "inbound",
    referralId: ID,
    openedId: "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3",
    origin: "no:municipality:0301",
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    deadline: "2026-11-27T21:15:00Z",
    opened: "AAAA",
    at: "2026-11-27T09:15:00.000Z",
  });
  const item = (): InboundReferral => {
    const found = state.inbound.get(ID);
    if (found === undefined) throw new Error("no sample item");
    return found;
  };
  const standIn: Pick<Liaison, "state" | "answer" | "routeTo" | "personalOf" | "erase"> = {
    state,
    erase: async (referralId) => {
      // Recorded in the audit before it is done: the record is there when the erasure starts.
      const audited = audit.list({ referralId }).records.some((r) => r.action === "erased");
      calls.push(["erase", referralId, audited]);
      state.erase(referralId);
      return { referralId, cause: "request", at: "2026-11-28T09:00:00.000Z" };
    },
    personalOf: async () => ({ child: { estimatedAgeYears: 14 } }),
    answer: async (...args) => {
      calls.push(["answer", ...args]);
      return item();
    },
    routeTo: async (...args) => {
      calls.push(["routeTo", ...args]);
      return item();
    },
  };
  return standIn as Liaison;
}

let tokens: DevTokenIssuer;
let app: FastifyInstance;
let audit: AuditLog;
const stateDir = mkdtempSync(join(tmpdir(), "stafett-liaison-http-"));

beforeAll(async () => {
  tokens = await createDevTokenIssuer();
  const signer = await importSigningKey((await generateSigningKey()).privateJwk);
  audit = await AuditLog.open(stateDir, ORG, signer);
  app = await buildLiaisonHttp(liaisonStandIn(), {
    auth: tokens.config,
    org: ORG,
    log: createLogger({ service: "liaison-http-test", level: "silent" }),
    audit,
  });
  await app.ready();
});

afterAll(async () => {
  await app.close();
  await audit.close();
  rmSync(stateDir, { recursive: true, force: true });
});

async function call(
  method: InjectOptions["method"],
  url: string,
  options: {
    org?: string | null;
    payload?: InjectOptions["payload"];
    type?: string;
    roles?: string[];
  } = {},
) {
  const headers: Record<string, string> = {};
  if (options.org !== null)
    headers.authorization = `Bearer ${await tokens.mint(
      options.org ?? ORG,
      "officer-1",
      600,
      options.roles === undefined ? {} : { roles: options.roles },
    )}`;
  if (options.type !== undefined) headers["content-type"] = options.type;
  calls.length = 0;
  return app.inject({
    method,
    url,
    headers,
    ...(options.payload === undefined ? {} : { payload: options.payload }),
  });
}

describe("the liaison's HTTP API", () => {
  it("answers /healthz without a token", async () => {
    const res = await call("GET", "/healthz", { org: null });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it("lists inbound referrals for the contact point, without the sealed event", async () => {
    const res = await call("GET", "/v1/inbound");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([expect.objectContaining({ referralId: ID, status: "pending" })]);
    expect(res.body).not.toContain('"opened"');
  });

  it("refuses a missing token with 401 and another organisation's with 403, coded", async () => {
    const none = await call("POST", `/v1/inbound/${ID}/accept`, { org: null });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ code: "ERR_UNAUTHENTICATED" });
    const other = await call("GET", "/v1/inbound", { org: "se:hub:vast" });
    expect(other.statusCode).toBe(403);
    expect(other.json()).toMatchObject({ code: "ERR_FORBIDDEN" });
    expect(calls).toEqual([]);
  });

  it("routes with a valid body", async () => {
    const res = await call("POST", `/v1/inbound/${ID}/route`, {
      payload: { municipality: "1480" },
    });
    expect(res.statusCode).toBe(200);
    expect(calls).toEqual([["routeTo", ID, "1480"]]);
  });

  it("refuses a route without a body with 400 ERR_SCHEMA_INVALID (it was a 500)", async () => {
    const res = await call("POST", `/v1/inbound/${ID}/route`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "ERR_SCHEMA_INVALID", field: "/", reason: "type" });
    expect(calls).toEqual([]);
  });

  it("refuses malformed JSON with 400 ERR_BAD_REQUEST", async () => {
    const res = await call("POST", `/v1/inbound/${ID}/route`, {
      payload: '{"municipality": "1480"',
      type: "application/json",
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "ERR_BAD_REQUEST" });
    expect(calls).toEqual([]);
  });

  it("refuses a route to something that is not a municipality code with 400, naming the field", async () => {
    const res = await call("POST", `/v1/inbound/${ID}/route`, { payload: { municipality: 1480 } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: "ERR_SCHEMA_INVALID", field: "/municipality" });
  });

  it("declines with or without a reason code (or a body), and refuses an unknown one", async () => {
    expect((await call("POST", `/v1/inbound/${ID}/decline`)).statusCode).toBe(200);
    expect(calls).toEqual([["answer", ID, "declined", undefined]]);
    expect((await call("POST", `/v1/inbound/${ID}/decline`, { payload: {} })).statusCode).toBe(200);
    expect(calls).toEqual([["answer", ID, "declined", undefined]]);
    const reason = "DECLINE_REASON_NOT_RESIDENT";
    expect(
      (await call("POST", `/v1/inbound/${ID}/decline`, { payload: { reason } })).statusCode,
    ).toBe(200);
    expect(calls).toEqual([["answer", ID, "declined", reason]]);
    const bad = await call("POST", `/v1/inbound/${ID}/decline`, { payload: { reason: "busy" } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: "ERR_SCHEMA_INVALID", field: "/reason" });
  });

  it("accepts without a body or with {}, and refuses any other body", async () => {
    expect((await call("POST", `/v1/inbound/${ID}/accept`)).statusCode).toBe(200);
    expect(calls).toEqual([["answer", ID, "accepted"]]);
    expect((await call("POST", `/v1/inbound/${ID}/accept`, { payload: {} })).statusCode).toBe(200);
    const bad = await call("POST", `/v1/inbound/${ID}/accept`, { payload: { reason: "x" } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      code: "ERR_SCHEMA_INVALID",
      field: "/",
      reason: "additionalProperties",
    });
    expect(calls).toEqual([]);
  });
});

describe("the contact point sees what it decides on", () => {
  it("an inbound referral opens with its personal part, and the read is in the audit first", async () => {
    const res = await call("GET", `/v1/inbound/${ID}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      referralId: ID,
      personal: { child: { estimatedAgeYears: 14 } },
    });
    expect(res.json()).not.toHaveProperty("opened");
    const reads = audit.list({ referralId: ID }).records.filter((r) => r.action === "read");
    expect(reads).toMatchObject([{ action: "read", org: ORG }]);
    expect((await call("GET", "/v1/inbound/00000000-0000-4000-8000-000000000000")).statusCode).toBe(
      404,
    );
  });
});

describe("erasure on request", () => {
  it("only for the contact point's eraser, audited before it is done; the personal read answers 410 afterwards", async () => {
    const plain = await call("DELETE", `/v1/inbound/${ID}/personal`);
    expect(plain.statusCode).toBe(403);
    expect(plain.json()).toMatchObject({ code: "ERR_FORBIDDEN" });
    const stranger = await call("DELETE", `/v1/inbound/${ID}/personal`, {
      org: "se:hub:vast",
      roles: ["eraser"],
    });
    expect(stranger.statusCode).toBe(403);
    const unknown = await call(
      "DELETE",
      "/v1/inbound/00000000-0000-4000-8000-000000000000/personal",
      {
        roles: ["eraser"],
      },
    );
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toMatchObject({ code: "ERR_NOT_FOUND", reason: "unknown_referral" });
    expect(calls).toEqual([]);

    const done = await call("DELETE", `/v1/inbound/${ID}/personal`, { roles: ["eraser"] });
    expect(done.statusCode).toBe(200);
    expect(done.json()).toEqual({
      referralId: ID,
      erasedAt: "2026-11-28T09:00:00.000Z",
      cause: "request",
    });
    expect(calls).toEqual([["erase", ID, true]]);
    const gone = await call("GET", `/v1/inbound/${ID}`);
    expect(gone.statusCode).toBe(410);
    expect(gone.json()).toMatchObject({ code: "ERR_GONE", reason: "erased" });
    const listed = await call("GET", "/v1/inbound");
    expect(listed.json()).toEqual([expect.objectContaining({ referralId: ID, erased: true })]);
  });
});
