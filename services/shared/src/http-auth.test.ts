import { createHmac } from "node:crypto";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { toBase64Url } from "./base64url.js";
import {
  AuthError,
  createAuthenticator,
  type AuthConfig,
  type Authenticator,
} from "./http-auth.js";

const ORG = "se:municipality:0180";
const ISSUER = "https://idp.example.se";
const AUDIENCE = "stafett";
const now = () => Math.floor(Date.now() / 1000);

let key: CryptoKey;
let otherKey: CryptoKey;
let config: AuthConfig;
let authenticate: Authenticator;

beforeAll(async () => {
  const pair = await generateKeyPair("EdDSA", { crv: "Ed25519" });
  key = pair.privateKey;
  otherKey = (await generateKeyPair("EdDSA", { crv: "Ed25519" })).privateKey;
  config = {
    jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "EdDSA", use: "sig" }] },
    issuer: ISSUER,
    audience: AUDIENCE,
  };
  authenticate = createAuthenticator(config, ORG);
});

/** A token with sensible claims; `claims` override them (undefined removes one). */
function token(
  claims: Partial<Record<keyof JWTPayload | "org", unknown>> = {},
  signWith: CryptoKey = key,
  kid = "k1",
): Promise<string> {
  const payload: Record<string, unknown> = {
    org: ORG,
    sub: "case-system-1",
    iss: ISSUER,
    aud: AUDIENCE,
    iat: now(),
    exp: now() + 600,
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg: "EdDSA", kid }).sign(signWith);
}

/** What the authenticator decided: the principal, or the status and code it refused with. */
async function outcome(
  authorization: string | undefined,
): Promise<{ status: number; code?: string; principal?: unknown }> {
  try {
    return { status: 200, principal: await authenticate(authorization) };
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    return { status: err.status, code: err.code };
  }
}

const unauthenticated = { status: 401, code: "ERR_UNAUTHENTICATED" };

describe("createAuthenticator", () => {
  it("accepts a valid token for this organisation and returns the principal", async () => {
    expect(await outcome(`Bearer ${await token()}`)).toEqual({
      status: 200,
      principal: { org: ORG, subject: "case-system-1", roles: [] },
    });
  });

  it("refuses a missing or garbage Authorization header with 401", async () => {
    for (const header of [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      "Basic dXNlcjpwYXNz",
      "Bearer not-a-jwt",
      "Bearer a.b.c",
      `Bearer ${"x".repeat(5000)}`,
      "Bearer e30.e30.",
      "Bearer abc def",
    ]) {
      expect({ header: header?.slice(0, 40), ...(await outcome(header)) }).toEqual({
        header: header?.slice(0, 40),
        ...unauthenticated,
      });
    }
  });

  it("refuses an expired token with 401", async () => {
    expect(await outcome(`Bearer ${await token({ iat: now() - 7200, exp: now() - 60 })}`)).toEqual(
      unauthenticated,
    );
  });

  it("refuses a token that is not yet valid with 401", async () => {
    expect(await outcome(`Bearer ${await token({ nbf: now() + 600 })}`)).toEqual(unauthenticated);
  });

  it("refuses a token without exp or sub with 401", async () => {
    expect(await outcome(`Bearer ${await token({ exp: undefined })}`)).toEqual(unauthenticated);
    expect(await outcome(`Bearer ${await token({ sub: undefined })}`)).toEqual(unauthenticated);
  });

  it.each<[string, Partial<Record<keyof JWTPayload, unknown>>]>([
    ["without iat", { iat: undefined }],
    ["issued an hour in the future", { iat: now() + 3_600, exp: now() + 7_200 }],
    [
      "issued 13 hours ago, however far off its exp",
      { iat: now() - 13 * 3_600, exp: now() + 3_600 },
    ],
  ])("refuses a token %s with 401", async (_name, claims) => {
    await expect(authenticate(`Bearer ${await token(claims)}`)).rejects.toMatchObject({
      status: 401,
      code: "ERR_UNAUTHENTICATED",
    });
  });

  it("stops taking a remembered token once it is older than the maximum age", async () => {
    let clock = new Date();
    const auth = createAuthenticator(config, ORG, () => clock);
    const t = await token({ exp: now() + 48 * 3_600 });
    await expect(auth(`Bearer ${t}`)).resolves.toMatchObject({ org: ORG });
    clock = new Date(clock.getTime() + 13 * 3_600_000);
    await expect(auth(`Bearer ${t}`)).rejects.toMatchObject({ status: 401 });
  });

  it("refuses a token from another issuer with 401", async () => {
    expect(await outcome(`Bearer ${await token({ iss: "https://evil.example" })}`)).toEqual(
      unauthenticated,
    );
    expect(await outcome(`Bearer ${await token({ iss: undefined })}`)).toEqual(unauthenticated);
  });

  it("refuses a token for another audience with 401", async () => {
    expect(await outcome(`Bearer ${await token({ aud: "another-service" })}`)).toEqual(
      unauthenticated,
    );
    expect(await outcome(`Bearer ${await token({ aud: undefined })}`)).toEqual(unauthenticated);
  });

  it("refuses a token signed by another key with 401, under the configured kid or another", async () => {
    expect(await outcome(`Bearer ${await token({}, otherKey)}`)).toEqual(unauthenticated);
    expect(await outcome(`Bearer ${await token({}, otherKey, "k2")}`)).toEqual(unauthenticated);
  });

  it("refuses unsigned and HMAC tokens (alg none; the public key as an HMAC secret) with 401", async () => {
    const b64 = (v: unknown) => toBase64Url(new TextEncoder().encode(JSON.stringify(v)));
    const claims = { org: ORG, sub: "x", iss: ISSUER, aud: AUDIENCE, exp: now() + 600 };
    expect(await outcome(`Bearer ${b64({ alg: "none" })}.${b64(claims)}.`)).toEqual(
      unauthenticated,
    );
    const signingInput = `${b64({ alg: "HS256", kid: "k1" })}.${b64(claims)}`;
    const x = String(config.jwks.keys[0]?.x);
    const mac = createHmac("sha256", x).update(signingInput).digest();
    expect(await outcome(`Bearer ${signingInput}.${toBase64Url(mac)}`)).toEqual(unauthenticated);
  });

  it("refuses another organisation's valid token with 403", async () => {
    expect(await outcome(`Bearer ${await token({ org: "se:municipality:1480" })}`)).toEqual({
      status: 403,
      code: "ERR_FORBIDDEN",
    });
    expect(await outcome(`Bearer ${await token({ org: undefined })}`)).toEqual({
      status: 403,
      code: "ERR_FORBIDDEN",
    });
    expect(await outcome(`Bearer ${await token({ org: [ORG] })}`)).toEqual({
      status: 403,
      code: "ERR_FORBIDDEN",
    });
  });

  describe("a token that verified once", () => {
    /** An authenticator on a clock the test moves. */
    function onClock(): { auth: Authenticator; advance(seconds: number): void } {
      let t = Date.now();
      return {
        auth: createAuthenticator(config, ORG, () => new Date(t)),
        advance: (seconds) => {
          t += seconds * 1_000;
        },
      };
    }
    const decided = async (auth: Authenticator, header: string): Promise<number> =>
      auth(header).then(
        () => 200,
        (err: unknown) => (err instanceof AuthError ? err.status : 500),
      );

    it("is refused once it expires, though it was accepted before", async () => {
      const { auth, advance } = onClock();
      const header = `Bearer ${await token({ exp: now() + 60 })}`;
      expect(await decided(auth, header)).toBe(200);
      advance(30);
      expect(await decided(auth, header)).toBe(200);
      advance(31);
      expect(await decided(auth, header)).toBe(401);
    });

    it("is refused before its nbf, and accepted from then on", async () => {
      const { auth, advance } = onClock();
      const header = `Bearer ${await token({ nbf: now() + 30 })}`;
      expect(await decided(auth, header)).toBe(401);
      advance(31);
      expect(await decided(auth, header)).toBe(200);
    });

    it("does not vouch for another token with the same claims and a changed signature", async () => {
      const { auth } = onClock();
      const good = await token();
      expect(await decided(auth, `Bearer ${good}`)).toBe(200);
      const [h, p, sig = ""] = good.split(".");
      const flipped = sig.slice(0, 10) + (sig[10] === "A" ? "B" : "A") + sig.slice(11);
      expect(await decided(auth, `Bearer ${h}.${p}.${flipped}`)).toBe(401);
      // Another organisation's authenticator never accepts it, remembered or not.
      const other = createAuthenticator(config, "se:municipality:1480");
      expect(await decided(other, `Bearer ${good}`)).toBe(403);
      expect(await decided(other, `Bearer ${good}`)).toBe(403);
    });
  });
});
