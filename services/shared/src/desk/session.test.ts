/**
 * The Desk's pending sign-ins. `GET /desk/signin/start` needs no token (it is how a person
 * begins to sign in), and each call keeps a pending sign-in (PKCE verifier, state, nonce) for ten
 * minutes: before the review of 2026-12-03 nothing bounded how many, so anyone who reached the
 * Desk could grow the service's memory without limit by asking for sign-in pages.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestOidcProvider } from "../../../../test/support/oidc.js";
import { DeskSessions, PENDING_MAX } from "./session.js";

const ORG = "se:municipality:1480";
let idp: TestOidcProvider;

beforeAll(async () => {
  idp = await TestOidcProvider.listen();
  idp.start(new Map([[ORG, "http://127.0.0.1:9"]]), []);
});

afterAll(async () => {
  await idp?.stop();
});

describe("the Desk's pending sign-ins", () => {
  it(
    "are bounded: an unauthenticated flood of sign-in starts keeps at most PENDING_MAX, the newest",
    { timeout: 60_000 },
    async () => {
      const sessions = new DeskSessions(ORG, idp.auth, idp.desk(ORG));
      const pending = (sessions as unknown as { pending: Map<string, unknown> }).pending;
      let last = "";
      for (let i = 0; i < PENDING_MAX + 500; i++)
        last = (await sessions.begin("http://127.0.0.1:9/desk/signin/callback")).pendingId;
      expect(pending.size).toBeLessThanOrEqual(PENDING_MAX);
      expect(pending.has(last)).toBe(true);
    },
  );
});
