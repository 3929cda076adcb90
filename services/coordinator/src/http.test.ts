import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDevTokenIssuer, createLogger, type DevTokenIssuer } from "@stafett/shared";
import type { Coordinator, Escalation, Handling, Officer, Overview } from "./coordinator.js";
import { buildCoordinatorHttp } from "./http.js";

const ORG = "se:coordinator";
const ESCALATION: Escalation = {
  referralId: "4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10",
  eventId: "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3",
  from: "se:hub:vast",
  holder: "se:municipality:1480",
  deadline: "2026-11-27T21:15:00Z",
  at: "2026-11-27T21:15:01.000Z",
};

const OVERVIEW: Overview = {
  at: "2026-11-27T21:16:00.000Z",
  staleAfterMs: 720_000,
  regions: [],
  totals: {
    open: 0,
    triage: 0,
    forwarded: 0,
    rerouted: 0,
    immediate: 0,
    high: 0,
    normal: 0,
    overdue: 0,
    escalated: 0,
  },
};

let tokens: DevTokenIssuer;
const handled: { eventId: string; handling: Handling; by: Officer }[] = [];
let app: FastifyInstance;

beforeAll(async () => {
  tokens = await createDevTokenIssuer();
  const standIn: Pick<Coordinator, "escalations" | "handle" | "overview"> = {
    overview: () => OVERVIEW,
    escalations: new Map([[ESCALATION.referralId, ESCALATION]]),
    handle: async (eventId: string, handling: Handling, by: Officer) => {
      handled.push({ eventId, handling, by });
      return ESCALATION;
    },
  };
  app = await buildCoordinatorHttp(standIn as Coordinator, {
    auth: tokens.config,
    org: ORG,
    log: createLogger({ service: "coordinator-http-test", level: "silent" }),
  });
  await app.ready();
});

afterAll(async () => {
  await app.close();
});

describe("the coordinator's HTTP API", () => {
  it("answers /healthz without a token", async () => {
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it.each([
    ["/v1/escalations", [ESCALATION]],
    ["/v1/overview", OVERVIEW],
  ] as const)("%s: for the coordinator's own token only", async (url, body) => {
    const own = await app.inject({
      method: "GET",
      url,
      headers: { authorization: `Bearer ${await tokens.mint(ORG)}` },
    });
    expect(own.statusCode).toBe(200);
    expect(own.json()).toEqual(body);
    const none = await app.inject({ method: "GET", url });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ code: "ERR_UNAUTHENTICATED" });
    const hub = await app.inject({
      method: "GET",
      url,
      headers: { authorization: `Bearer ${await tokens.mint("se:hub:vast")}` },
    });
    expect(hub.statusCode).toBe(403);
    expect(hub.json()).toMatchObject({ code: "ERR_FORBIDDEN" });
  });
});

describe("the coordinator's officers handle escalations", () => {
  const url = (step: string) => `/v1/escalations/${ESCALATION.eventId}/${step}`;

  it("takes each step with the officer named by the token, and the body its schema allows", async () => {
    const auth = {
      authorization: `Bearer ${await tokens.mint(ORG, "nils", 600, { name: "Nils Fiktiv" })}`,
    };
    const steps: [string, Record<string, string>, Handling][] = [
      ["acknowledge", {}, { step: "acknowledged" }],
      ["assign", { officer: "Nils Fiktiv" }, { step: "assigned", officer: "Nils Fiktiv" }],
      ["resolve", { note: "Reached Göteborg." }, { step: "resolved", note: "Reached Göteborg." }],
    ];
    for (const [step, payload] of steps) {
      const res = await app.inject({ method: "POST", url: url(step), headers: auth, payload });
      expect(res.statusCode, step).toBe(200);
    }
    expect(handled).toEqual(
      steps.map(([, , handling]) => ({
        eventId: ESCALATION.eventId,
        handling,
        by: { subject: "nils", name: "Nils Fiktiv" },
      })),
    );
    const bad = await app.inject({
      method: "POST",
      url: url("assign"),
      headers: auth,
      payload: { officer: "" },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: "ERR_SCHEMA_INVALID", field: "/officer" });
  });

  it("refuses a hub's token and a missing one", async () => {
    const hub = await app.inject({
      method: "POST",
      url: url("acknowledge"),
      headers: { authorization: `Bearer ${await tokens.mint("se:hub:vast")}` },
      payload: {},
    });
    expect(hub.statusCode).toBe(403);
    const none = await app.inject({ method: "POST", url: url("acknowledge"), payload: {} });
    expect(none.statusCode).toBe(401);
  });
});
