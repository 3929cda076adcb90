/**
 * A real OpenID provider for the Desk's browser tests (oidc-provider, on 127.0.0.1): it signs
 * people in at its own development login page, and issues ID tokens and JWT access tokens
 * (RFC 9068) for the Stafett API, carrying the person's `org`, `name` and `roles`, which the
 * services verify exactly as they verify a case system's token. Every person is invented.
 *
 * The provider's address is fixed first (its socket listens before the services start, so
 * their token configuration can name it); its clients, one per organisation's Desk, are
 * registered once the services' addresses are known.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { exportJWK, generateKeyPair, type JSONWebKeySet } from "jose";
import Provider from "oidc-provider";
import type { AuthConfig, DeskOptions } from "@stafett/shared";

export const API_RESOURCE = "urn:stafett:api";
const AUDIENCE = "stafett";
const SCOPE = "openid profile stafett";

export interface Person {
  /** What the person types at the provider's login page. */
  login: string;
  name: string;
  org: string;
  roles?: readonly string[];
}

export class TestOidcProvider {
  private provider: Provider | undefined;

  private constructor(
    private readonly server: Server,
    readonly issuer: string,
    private readonly privateJwk: Record<string, unknown>,
    readonly jwks: JSONWebKeySet,
  ) {}

  static async listen(): Promise<TestOidcProvider> {
    const server = createServer((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
    const kid = "test-idp";
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: "RS256", use: "sig" };
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
    return new TestOidcProvider(server, `http://127.0.0.1:${port}`, privateJwk, {
      keys: [publicJwk],
    });
  }

  /** The services' token configuration: this provider's key, issuer and the API's audience. */
  get auth(): AuthConfig {
    return { jwks: this.jwks, issuer: this.issuer, audience: AUDIENCE };
  }

  /** An organisation's Desk configuration for this provider (its client id is the org id). */
  desk(org: string): DeskOptions {
    return {
      oidc: {
        issuer: this.issuer,
        clientId: org,
        clientSecret: secretOf(org),
        scope: SCOPE,
        resource: API_RESOURCE,
        allowInsecureHttp: true,
      },
    };
  }

  /** Starts answering: one client per Desk (id = org, callback at its URL), these people. */
  start(desks: ReadonlyMap<string, string>, people: readonly Person[]): void {
    const byLogin = new Map(people.map((p) => [p.login, p]));
    const provider = new Provider(this.issuer, {
      clients: [...desks].map(([org, url]) => ({
        client_id: org,
        client_secret: secretOf(org),
        redirect_uris: [`${url}/desk/signin/callback`],
        grant_types: ["authorization_code"],
        response_types: ["code"],
      })),
      jwks: { keys: [this.privateJwk] },
      pkce: { required: () => true },
      cookies: { keys: ["test-cookie-key-not-secret"] },
      claims: { openid: ["sub"], profile: ["name"] },
      findAccount: (_ctx, id) => {
        const p = byLogin.get(id);
        if (p === undefined) return undefined;
        return { accountId: id, claims: () => ({ sub: id, name: p.name }) };
      },
      extraTokenClaims: (_ctx, token) => {
        const p = byLogin.get(String((token as { accountId?: unknown }).accountId));
        return p === undefined ? {} : { org: p.org, name: p.name, roles: [...(p.roles ?? [])] };
      },
      // Consent is the organisation's own matter, not the test's: every scope is granted.
      loadExistingGrant: async (ctx) => {
        const clientId = ctx.oidc.client?.clientId;
        const accountId = ctx.oidc.session?.accountId;
        if (clientId === undefined || accountId === undefined) return undefined;
        const grant = new ctx.oidc.provider.Grant({ clientId, accountId });
        grant.addOIDCScope("openid profile");
        grant.addResourceScope(API_RESOURCE, "stafett");
        await grant.save();
        return grant;
      },
      features: {
        devInteractions: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => API_RESOURCE,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: "stafett",
            audience: AUDIENCE,
            accessTokenTTL: 3_600,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: "RS256" } },
          }),
        },
      },
    });
    this.provider = provider;
    this.server.removeAllListeners("request");
    this.server.on("request", provider.callback());
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function secretOf(org: string): string {
  return `test-secret-${org.replace(/[^a-z0-9]/g, "-")}-0123456789abcdef`;
}
