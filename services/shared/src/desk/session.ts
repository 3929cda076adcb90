/**
 * The Desk's sign-in and sessions. A person signs in with the organisation's OpenID provider
 * (authorization code with PKCE, through openid-client); the access token the provider issues
 * is the same kind of bearer token the API takes, verified here by the API's own verifier, so
 * the Desk admits exactly whom the API admits: the token's `org` must be this organisation.
 * Sessions live in the service's memory only; the browser holds a random id in an http-only,
 * Secure, SameSite cookie and nothing else.
 */
import { randomBytes } from "node:crypto";
import * as oidc from "openid-client";
import type { AuthConfig, DevTokenIssuer } from "../http-auth.js";
import { createTokenVerifier } from "../http-auth.js";

export interface DeskOidcOptions {
  /** The provider's issuer URL (discovery is fetched from it on the first sign-in). */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The scopes asked for; "openid" at least. */
  scope?: string;
  /** The resource indicator (RFC 8707) the API's tokens are issued for, when the provider needs one. */
  resource?: string;
  /** Plain HTTP to the provider: only for a provider on this machine (tests, the demo). */
  allowInsecureHttp?: boolean;
}

export interface DeskOptions {
  /** The organisation's OpenID provider; without it the Desk has no OpenID sign-in. */
  oidc?: DeskOidcOptions;
  /**
   * Development mode only (the demo): a sign-in form that mints a token for a named person of
   * this organisation. Never set in production; `loadConfig` never sets it.
   */
  devSignIn?: DevTokenIssuer;
  /** The origin the Desk is reached at, for the sign-in callback; else the request's own. */
  publicUrl?: string;
  /** How long a session lasts at most (default 8 h; never longer than its token). */
  sessionTtlMs?: number;
}

export interface DeskSession {
  readonly id: string;
  /** The person's bearer token: the Desk calls the API with it, so the API decides and audits. */
  readonly token: string;
  readonly subject: string;
  readonly name: string;
  readonly expires: number;
  flash?: { kind: "ok" | "error"; text: string };
}

interface PendingSignIn {
  verifier: string;
  state: string;
  nonce: string;
  expires: number;
}

const PENDING_TTL_MS = 10 * 60_000;
/**
 * At most this many sign-ins pending at once: starting one needs no token, so without a bound
 * anyone who reaches the Desk could grow the service's memory without limit. Past it, the
 * oldest pending sign-in is dropped (that person starts again).
 */
export const PENDING_MAX = 10_000;
const SESSIONS_MAX = 10_000;

export type SignInResult =
  { ok: true; session: DeskSession } | { ok: false; why: "wrong_org" | "failed" };

export class DeskSessions {
  private readonly sessions = new Map<string, DeskSession>();
  private readonly pending = new Map<string, PendingSignIn>();
  private readonly verify;
  private config: Promise<oidc.Configuration> | undefined;

  constructor(
    readonly org: string,
    auth: AuthConfig,
    private readonly options: DeskOptions,
    private readonly clock: () => number = Date.now,
  ) {
    this.verify = createTokenVerifier(auth, () => new Date(this.clock()));
  }

  get(id: string | undefined): DeskSession | undefined {
    if (id === undefined) return undefined;
    const s = this.sessions.get(id);
    if (s === undefined) return undefined;
    if (s.expires <= this.clock()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
  }

  end(id: string | undefined): void {
    if (id !== undefined) this.sessions.delete(id);
  }

  /** Starts an OpenID sign-in: where to send the browser, and the key to its pending state. */
  async begin(redirectUri: string): Promise<{ url: string; pendingId: string }> {
    const o = this.requireOidc();
    const config = await this.discover();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const params: Record<string, string> = {
      redirect_uri: redirectUri,
      scope: o.scope ?? "openid profile",
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    };
    if (o.resource !== undefined) params.resource = o.resource;
    this.prune();
    for (const k of this.pending.keys()) {
      if (this.pending.size < PENDING_MAX) break;
      this.pending.delete(k);
    }
    const pendingId = randomId();
    this.pending.set(pendingId, { verifier, state, nonce, expires: this.clock() + PENDING_TTL_MS });
    return { url: oidc.buildAuthorizationUrl(config, params).href, pendingId };
  }

  /** Completes an OpenID sign-in from the callback URL; the pending state is used once. */
  async complete(pendingId: string | undefined, callbackUrl: URL): Promise<SignInResult> {
    const pending = pendingId === undefined ? undefined : this.pending.get(pendingId);
    if (pendingId !== undefined) this.pending.delete(pendingId);
    if (pending === undefined || pending.expires <= this.clock())
      return { ok: false, why: "failed" };
    let token: string;
    try {
      const tokens = await oidc.authorizationCodeGrant(await this.discover(), callbackUrl, {
        pkceCodeVerifier: pending.verifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
      token = tokens.access_token;
    } catch {
      // openid-client's errors can quote the provider's answer: never logged or shown.
      return { ok: false, why: "failed" };
    }
    return this.admit(token);
  }

  /** Development sign-in: a token minted for a named person of this organisation. */
  async devSignIn(name: string): Promise<SignInResult> {
    const issuer = this.options.devSignIn;
    if (issuer === undefined) return { ok: false, why: "failed" };
    const subject = `dev-${randomId().slice(0, 8)}`;
    return this.admit(await issuer.mint(this.org, subject, 8 * 3_600, { name }));
  }

  get hasOidc(): boolean {
    return this.options.oidc !== undefined;
  }

  get hasDevSignIn(): boolean {
    return this.options.devSignIn !== undefined;
  }

  /** A token becomes a session only when the API would take it for this organisation. */
  private async admit(token: string): Promise<SignInResult> {
    let claims;
    try {
      claims = await this.verify(`Bearer ${token}`);
    } catch {
      return { ok: false, why: "failed" };
    }
    if (claims.org !== this.org) return { ok: false, why: "wrong_org" };
    const exp = expiryOf(token);
    const expires = Math.min(this.clock() + (this.options.sessionTtlMs ?? 8 * 3_600_000), exp);
    this.prune();
    const session: DeskSession = {
      id: randomId(),
      token,
      subject: claims.subject,
      name: claims.name ?? claims.subject,
      expires,
    };
    this.sessions.set(session.id, session);
    return { ok: true, session };
  }

  private requireOidc(): DeskOidcOptions {
    if (this.options.oidc === undefined) throw new Error("the Desk has no OpenID provider");
    return this.options.oidc;
  }

  private discover(): Promise<oidc.Configuration> {
    const o = this.requireOidc();
    this.config ??= oidc
      .discovery(
        new URL(o.issuer),
        o.clientId,
        o.clientSecret,
        undefined,
        o.allowInsecureHttp === true ? { execute: [oidc.allowInsecureRequests] } : undefined,
      )
      .catch((err: unknown) => {
        this.config = undefined;
        throw err;
      });
    return this.config;
  }

  private prune(): void {
    const now = this.clock();
    for (const [k, p] of this.pending) if (p.expires <= now) this.pending.delete(k);
    if (this.sessions.size >= SESSIONS_MAX)
      for (const [k, s] of this.sessions) if (s.expires <= now) this.sessions.delete(k);
  }
}

function randomId(): string {
  return randomBytes(32).toString("base64url");
}

/** The `exp` of a token that already verified, in milliseconds. */
function expiryOf(token: string): number {
  const payload = token.split(".")[1] ?? "";
  const exp = (JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as { exp?: unknown })
    .exp;
  return typeof exp === "number" ? exp * 1_000 : 0;
}
