/**
 * Bearer-token authentication for the services' HTTP APIs: a JWT verified with jose against a
 * configured JWKS (issuer, audience, expiry and signature checked), whose `org` claim names the
 * organisation the caller acts for; which organisations may call a route is the HTTP layer's
 * decision (http-service.ts). A development mode generates its own key.
 */
import {
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWTPayload,
} from "jose";
import { StafettError } from "./errors.js";

export interface AuthConfig {
  jwks: JSONWebKeySet;
  issuer: string;
  audience: string;
}

export interface Principal {
  /** The organisation the caller acts for, e.g. "se:municipality:0180". */
  org: string;
  /** The caller (a case system or an officer's id in it); for audit, not personal data. */
  subject: string;
  /** The person's name (the token's `name` claim), for the access audit, when present. */
  name?: string;
  /** What the person may do beyond an officer's work (the token's `roles`, e.g. "auditor"). */
  roles: readonly string[];
}

export type Authenticator = (authorization: string | undefined) => Promise<Principal>;

/** A bearer token that verified: its `org` claim (when it is a string) and its subject. */
export interface VerifiedToken {
  org: string | undefined;
  subject: string;
  name?: string;
  roles: readonly string[];
}

/** Verifies an Authorization header's bearer token; refuses with a 401 AuthError. */
export type TokenVerifier = (authorization: string | undefined) => Promise<VerifiedToken>;

export class AuthError extends Error {
  override readonly name = "AuthError";
  constructor(
    readonly status: 401 | 403,
    readonly code: "ERR_UNAUTHENTICATED" | "ERR_FORBIDDEN",
    message: string,
  ) {
    super(message);
  }
}

/**
 * The longest a token is taken after it was issued (its `iat`), whatever its `exp` says: a stolen
 * token stops working within a working day. A token issued in the future (beyond a minute of
 * clock difference) is refused.
 */
export const MAX_TOKEN_AGE_SECONDS = 12 * 3_600;
const CLOCK_TOLERANCE_SECONDS = 60;

/** Issued no later than a minute from now (clocks differ a little), and not longer ago than the maximum age. */
function issuedInTime(payload: JWTPayload, seconds: number): boolean {
  const iat = payload.iat;
  return (
    typeof iat === "number" &&
    iat <= seconds + CLOCK_TOLERANCE_SECONDS &&
    seconds - iat <= MAX_TOKEN_AGE_SECONDS
  );
}

/** Verified tokens remembered at most, per verifier (callers reuse their token). */
const VERIFIED_TOKENS_MAX = 1_024;

/**
 * Verifies bearer tokens against `config`, whatever organisation they are for. A token that
 * verified is remembered (by its exact text, until its `exp`), so a caller that reuses its token
 * costs one signature check, not one per request: the signature check is as dear as an event's.
 * Every request still checks the token's time window; the JWKS is fixed for the verifier's life.
 */
export function createTokenVerifier(
  config: AuthConfig,
  clock: () => Date = () => new Date(),
): TokenVerifier {
  const keys = createLocalJWKSet(config.jwks);
  const verified = new Map<string, JWTPayload>();
  const verify = async (token: string, now: Date): Promise<JWTPayload> => {
    const known = verified.get(token);
    if (known !== undefined) {
      const seconds = now.getTime() / 1_000;
      // jose's own rules: expired when exp <= now, not yet valid when nbf > now, too old when
      // issued more than the maximum age ago.
      if (
        typeof known.exp === "number" &&
        seconds < known.exp &&
        !((known.nbf ?? 0) > seconds) &&
        issuedInTime(known, seconds)
      )
        return known;
      verified.delete(token);
    }
    const { payload } = await jwtVerify(token, keys, {
      issuer: config.issuer,
      audience: config.audience,
      requiredClaims: ["exp", "sub", "iat"],
      currentDate: now,
    });
    if (!issuedInTime(payload, now.getTime() / 1_000)) throw new Error("iat out of range");
    if (verified.size >= VERIFIED_TOKENS_MAX) {
      const oldest = verified.keys().next().value;
      if (oldest !== undefined) verified.delete(oldest);
    }
    verified.set(token, payload);
    return payload;
  };
  return async (authorization) => {
    const token = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(authorization ?? "")?.[1];
    if (token === undefined)
      throw new AuthError(401, "ERR_UNAUTHENTICATED", "a bearer token is required");
    let payload: JWTPayload;
    try {
      payload = await verify(token, clock());
    } catch {
      throw new AuthError(401, "ERR_UNAUTHENTICATED", "the bearer token is not valid");
    }
    const roles = Array.isArray(payload.roles)
      ? payload.roles.filter((r): r is string => typeof r === "string")
      : [];
    return {
      org: typeof payload.org === "string" ? payload.org : undefined,
      subject: String(payload.sub),
      ...(typeof payload.name === "string" ? { name: payload.name } : {}),
      roles,
    };
  };
}

/** The caller a verified token names, for organisation `org`. */
export function principalOf(org: string, token: VerifiedToken): Principal {
  return {
    org,
    subject: token.subject,
    ...(token.name === undefined ? {} : { name: token.name }),
    roles: token.roles,
  };
}

/**
 * Verifies bearer tokens against `config` (see createTokenVerifier) and requires their `org`
 * claim to be `org`: another organisation's valid token is refused with 403.
 */
export function createAuthenticator(
  config: AuthConfig,
  org: string,
  clock: () => Date = () => new Date(),
): Authenticator {
  const verify = createTokenVerifier(config, clock);
  return async (authorization) => {
    const token = await verify(authorization);
    if (token.org !== org)
      throw new AuthError(403, "ERR_FORBIDDEN", "the token is not for this organisation");
    return principalOf(org, token);
  };
}

/** A development signer: a fresh key, its JWKS, and a way to mint tokens for the demo and tests. */
export interface DevTokenIssuer {
  config: AuthConfig;
  mint(
    org: string,
    subject?: string,
    ttlSeconds?: number,
    claims?: { name?: string; roles?: readonly string[] },
  ): Promise<string>;
}

export async function createDevTokenIssuer(
  issuer = "stafett-dev",
  audience = "stafett",
): Promise<DevTokenIssuer> {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519" });
  const jwk = { ...(await exportJWK(publicKey)), kid: "dev", alg: "EdDSA", use: "sig" };
  return {
    config: { jwks: { keys: [jwk] }, issuer, audience },
    mint: (org, subject = "case-system", ttlSeconds = 3_600, claims = {}) =>
      mint(privateKey, { org, subject, issuer, audience, ttlSeconds, claims }),
  };
}

async function mint(
  key: CryptoKey,
  o: {
    org: string;
    subject: string;
    issuer: string;
    audience: string;
    ttlSeconds: number;
    claims: { name?: string; roles?: readonly string[] };
  },
): Promise<string> {
  return new SignJWT({
    org: o.org,
    ...(o.claims.name === undefined ? {} : { name: o.claims.name }),
    ...(o.claims.roles === undefined ? {} : { roles: [...o.claims.roles] }),
  })
    .setProtectedHeader({ alg: "EdDSA", kid: "dev" })
    .setSubject(o.subject)
    .setIssuer(o.issuer)
    .setAudience(o.audience)
    .setIssuedAt()
    .setExpirationTime(`${o.ttlSeconds}s`)
    .sign(key);
}

export function assertAuthConfig(value: unknown): JSONWebKeySet {
  if (
    value === null ||
    typeof value !== "object" ||
    !Array.isArray((value as { keys?: unknown }).keys)
  ) {
    throw new StafettError("ERR_CONFIG_INVALID", "the auth JWKS file is not a JWK set", {
      reason: "jwks",
    });
  }
  return value as JSONWebKeySet;
}
