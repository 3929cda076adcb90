import { describe, expect, it } from "vitest";
import { isStafettError } from "./errors.js";
import { loadServiceConfig } from "./service-config.js";

const BASE = {
  STAFETT_ORG: "se:municipality:1480",
  STAFETT_AUTH_DEV: "1",
  STAFETT_SIGNING_KEY: "/keys/sig.jwk",
  STAFETT_ENCRYPTION_KEY: "/keys/enc.jwk",
  STAFETT_TRUST_ANCHORS: "/keys/anchors.json",
  STAFETT_STATE_DIR: "/state",
};
const DEFAULTS = { httpPort: 8080, metricsPort: 9180 };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadServiceConfig(env, DEFAULTS);
    return [];
  } catch (err) {
    if (!isStafettError(err)) throw err;
    return (err.issues ?? []).map((i) => i.field);
  }
}

describe("the Desk's configuration", () => {
  it("is optional, and read whole when the provider is given", () => {
    expect(problemsOf(BASE)).toEqual([]);
    const c = loadServiceConfig(
      {
        ...BASE,
        STAFETT_DESK_OIDC_ISSUER: "https://idp.goteborg.example",
        STAFETT_DESK_OIDC_CLIENT_ID: "stafett-desk",
        STAFETT_DESK_OIDC_CLIENT_SECRET_FILE: "/keys/desk-secret",
        STAFETT_DESK_PUBLIC_URL: "https://stafett.goteborg.example",
      },
      DEFAULTS,
    );
    expect(c).toMatchObject({
      deskOidcIssuer: "https://idp.goteborg.example",
      deskOidcClientId: "stafett-desk",
      deskPublicUrl: "https://stafett.goteborg.example",
    });
  });

  it("refuses a provider without its client, secret and public URL, or over plain HTTP", () => {
    expect(problemsOf({ ...BASE, STAFETT_DESK_OIDC_ISSUER: "http://idp.example" })).toEqual([
      "STAFETT_DESK_OIDC_ISSUER",
      "STAFETT_DESK_OIDC_ISSUER",
    ]);
  });
});
