/**
 * The configuration every service shares, read from the environment in one place (each
 * service's loadConfig adds its own variables). Files are named by path; keys are never inline.
 */
import { DEFAULT_RETENTION, MIN_METADATA_MS, type Retention } from "./retention.js";
import type { JSONWebKeySet } from "jose";
import { ConfigReader, type Env } from "./config.js";
import {
  assertAuthConfig,
  createDevTokenIssuer,
  type AuthConfig,
  type DevTokenIssuer,
} from "./http-auth.js";
import { loadIdentity, readAnchorKeys, readJsonFile, readSecretFile } from "./key-files.js";
import type { KeyHandle } from "./keys.js";
import type { Identity } from "./pipeline.js";
import type { NotifyConfig } from "./notifier.js";
import { readNotifyEnv, resolveNotifyConfig, type NotifyEnvConfig } from "./notify-config.js";
import { parseOrgId } from "./subjects.js";
import type { DeskOptions } from "./desk/session.js";
import type { PartyObserver } from "./observer.js";

export interface ServiceEnvConfig {
  org: string;
  natsUrl: string[];
  natsUser: string | undefined;
  natsPasswordFile: string | undefined;
  /** The organisation's NATS user nkey seed (SU…), from a 0600 file: nkey authentication. */
  natsNkeyFile: string | undefined;
  /** TLS to the broker: the CA its certificate chains to, and a client certificate and key for mutual TLS. */
  natsTlsCaFile: string | undefined;
  natsTlsCertFile: string | undefined;
  natsTlsKeyFile: string | undefined;
  /** The organisation's private signing keys (several during a rollover; comma-separated). */
  signingKeyFiles: string[];
  /** Its private encryption keys: the newest and every one still needed to open what it holds. */
  encryptionKeyFiles: string[];
  /** Own country's anchor public keys (file paths, comma-separated). */
  anchorsFile: string;
  stateDir: string;
  httpHost: string;
  httpPort: number;
  /** Where /metrics listens (its own address, not the API's); port 0: any free port. */
  metricsHost: string;
  metricsPort: number;
  /** How long before a key or a trust list expires the warnings start. */
  expiryWarningMs: number;
  /** How long a referral's personal part, and its metadata, are kept after its end here. */
  retention: Retention;
  /** How often retention is applied and the journal compacted. */
  retentionSweepMs: number;
  authJwksFile: string | undefined;
  authIssuer: string;
  authAudience: string;
  authDev: boolean;
  /** The officers' Desk: the organisation's OpenID provider (none: no Desk, unless in development mode). */
  deskOidcIssuer: string | undefined;
  deskOidcClientId: string | undefined;
  deskOidcClientSecretFile: string | undefined;
  /** The resource indicator (RFC 8707) the API's access tokens are issued for, when needed. */
  deskOidcResource: string | undefined;
  deskOidcScope: string | undefined;
  /** The origin people reach the Desk at (the sign-in callback is built on it). */
  deskPublicUrl: string | undefined;
  logLevel: string;
  /** Webhooks, e-mail alerts and their thresholds (notify-config.ts). */
  notify: NotifyEnvConfig;
}

/** The default warning time before a key or trust list expires: two weeks, time to re-sign. */
export const DEFAULT_EXPIRY_WARNING_MS = 14 * 86_400_000;

export function readServiceEnv(
  r: ConfigReader,
  defaults: { httpPort: number; metricsPort: number },
): ServiceEnvConfig {
  const org = r.string("STAFETT_ORG");
  if (org !== "") {
    try {
      parseOrgId(org);
    } catch {
      r.problem("STAFETT_ORG must be an organisation id such as se:municipality:0180");
    }
  }
  const authDev = r.oneOf("STAFETT_AUTH_DEV", ["0", "1", "true", "false"], "0");
  const authJwksFile = r.optional("STAFETT_AUTH_JWKS");
  const dev = authDev === "1" || authDev === "true";
  if (!dev && authJwksFile === undefined)
    r.problem("STAFETT_AUTH_JWKS is required (or STAFETT_AUTH_DEV=1 for development)");
  const natsTlsCaFile = r.optional("NATS_TLS_CA");
  const natsTlsCertFile = r.optional("NATS_TLS_CERT");
  const natsTlsKeyFile = r.optional("NATS_TLS_KEY");
  if ((natsTlsCertFile === undefined) !== (natsTlsKeyFile === undefined))
    r.problem("NATS_TLS_CERT and NATS_TLS_KEY go together (a client certificate and its key)");
  if (natsTlsCertFile !== undefined && natsTlsCaFile === undefined)
    r.problem("NATS_TLS_CA is required with a client certificate");
  const deskOidcIssuer = r.optional("STAFETT_DESK_OIDC_ISSUER");
  const deskOidcClientId = r.optional("STAFETT_DESK_OIDC_CLIENT_ID");
  const deskOidcClientSecretFile = r.optional("STAFETT_DESK_OIDC_CLIENT_SECRET_FILE");
  const deskPublicUrl = r.optional("STAFETT_DESK_PUBLIC_URL");
  if (
    deskOidcIssuer !== undefined &&
    (deskOidcClientId === undefined ||
      deskOidcClientSecretFile === undefined ||
      deskPublicUrl === undefined)
  )
    r.problem(
      "STAFETT_DESK_OIDC_ISSUER needs STAFETT_DESK_OIDC_CLIENT_ID, STAFETT_DESK_OIDC_CLIENT_SECRET_FILE and STAFETT_DESK_PUBLIC_URL",
    );
  if (deskOidcIssuer !== undefined && !deskOidcIssuer.startsWith("https://"))
    r.problem("STAFETT_DESK_OIDC_ISSUER must be an https:// URL");
  return {
    org,
    natsUrl: r.list("NATS_URL", ["nats://127.0.0.1:4222"]),
    natsUser: r.optional("NATS_USER"),
    natsPasswordFile: r.optional("NATS_PASSWORD_FILE"),
    natsNkeyFile: r.optional("NATS_NKEY_FILE"),
    natsTlsCaFile,
    natsTlsCertFile,
    natsTlsKeyFile,
    signingKeyFiles: keyFiles(r, "STAFETT_SIGNING_KEY"),
    encryptionKeyFiles: keyFiles(r, "STAFETT_ENCRYPTION_KEY"),
    anchorsFile: r.string("STAFETT_TRUST_ANCHORS"),
    stateDir: r.string("STAFETT_STATE_DIR"),
    httpHost: r.string("STAFETT_HTTP_HOST", "127.0.0.1"),
    httpPort: r.integer("STAFETT_HTTP_PORT", defaults.httpPort, 0),
    metricsHost: r.string("STAFETT_METRICS_HOST", "127.0.0.1"),
    metricsPort: r.integer("STAFETT_METRICS_PORT", defaults.metricsPort, 0),
    expiryWarningMs: r.duration("STAFETT_EXPIRY_WARNING", DEFAULT_EXPIRY_WARNING_MS),
    retention: readRetention(r),
    retentionSweepMs: r.duration("STAFETT_RETENTION_SWEEP", 3_600_000),
    authJwksFile,
    authIssuer: r.string("STAFETT_AUTH_ISSUER", dev ? "stafett-dev" : undefined),
    authAudience: r.string("STAFETT_AUTH_AUDIENCE", "stafett"),
    authDev: dev,
    deskOidcIssuer,
    deskOidcClientId,
    deskOidcClientSecretFile,
    deskOidcResource: r.optional("STAFETT_DESK_OIDC_RESOURCE"),
    deskOidcScope: r.optional("STAFETT_DESK_OIDC_SCOPE"),
    deskPublicUrl,
    logLevel: r.oneOf(
      "LOG_LEVEL",
      ["fatal", "error", "warn", "info", "debug", "trace", "silent"],
      "info",
    ),
    notify: readNotifyEnv(r),
  };
}

/** The retention periods (retention.ts), each checked against what the other rules need. */
function readRetention(r: ConfigReader): Retention {
  const personalMs = r.duration("STAFETT_RETENTION_PERSONAL", DEFAULT_RETENTION.personalMs);
  const metadataMs = r.duration("STAFETT_RETENTION_METADATA", DEFAULT_RETENTION.metadataMs);
  if (metadataMs < MIN_METADATA_MS)
    r.problem("STAFETT_RETENTION_METADATA must be at least 15d (events may be 14 days old)");
  if (metadataMs < personalMs)
    r.problem("STAFETT_RETENTION_METADATA must be at least STAFETT_RETENTION_PERSONAL");
  return { personalMs, metadataMs };
}

/** A comma-separated list of key files, at least one. */
function keyFiles(r: ConfigReader, name: string): string[] {
  const files = r.list(name);
  if (files.length === 0) r.problem(`${name} is required`);
  return files;
}

export function loadServiceConfig(
  env: Env,
  defaults: { httpPort: number; metricsPort: number },
): Readonly<ServiceEnvConfig> {
  const r = new ConfigReader(env);
  return r.done(readServiceEnv(r, defaults));
}

/** What a running service needs, with keys loaded: the shape tests and the demo build directly. */
export interface ServiceRuntime {
  identity: Identity;
  /** The own country's trust anchors. */
  anchors: KeyHandle[];
  nats: {
    servers: string[];
    user?: string;
    pass?: string;
    nkeySeed?: Uint8Array;
    /** TLS to the broker (nats.js `tls` options): the CA, and a client certificate for mutual TLS. */
    tls?: { caFile: string; certFile?: string; keyFile?: string };
  };
  stateDir: string;
  http: { host: string; port: number };
  /** Where /metrics listens; without it the service serves no metrics endpoint. */
  metrics?: { host: string; port: number };
  /** How long before a key or trust list expires the warnings start (default two weeks). */
  expiryWarningMs?: number;
  /** How long personal parts and metadata are kept (default `DEFAULT_RETENTION`). */
  retention?: Retention;
  /** How often retention is applied and the journal compacted (default 1 h). */
  sweepMs?: number;
  /** Told of journal appends, refusals and quarantine copies (set by the service's operations). */
  observer?: PartyObserver;
  auth: AuthConfig;
  /** Set in development mode: mints tokens for the local demo. */
  devTokens?: DevTokenIssuer;
  /** Webhooks, e-mail alerts and thresholds; none: notifications are only streamed (/v1/events). */
  notify?: NotifyConfig;
  /** The officers' Desk under /desk/ (docs/desk.md); without it the service serves none. */
  desk?: DeskOptions;
}

export async function resolveServiceRuntime(config: ServiceEnvConfig): Promise<ServiceRuntime> {
  const identity = await loadIdentity(
    config.org,
    config.signingKeyFiles,
    config.encryptionKeyFiles,
  );
  const anchors = await readAnchorKeys(config.anchorsFile);
  // The TLS client key is checked like every other secret: readable by its owner only.
  if (config.natsTlsKeyFile !== undefined) readSecretFile(config.natsTlsKeyFile);
  let auth: AuthConfig;
  let devTokens: DevTokenIssuer | undefined;
  if (config.authDev) {
    devTokens = await createDevTokenIssuer(config.authIssuer, config.authAudience);
    auth = devTokens.config;
  } else {
    const jwks: JSONWebKeySet = assertAuthConfig(readJsonFile(config.authJwksFile ?? ""));
    auth = { jwks, issuer: config.authIssuer, audience: config.authAudience };
  }
  const desk = deskOptions(config, devTokens);
  return {
    identity,
    anchors,
    nats: {
      servers: config.natsUrl,
      ...(config.natsUser === undefined ? {} : { user: config.natsUser }),
      ...(config.natsPasswordFile === undefined
        ? {}
        : { pass: new TextDecoder().decode(readSecretFile(config.natsPasswordFile)) }),
      ...(config.natsNkeyFile === undefined
        ? {}
        : { nkeySeed: readSecretFile(config.natsNkeyFile) }),
      ...(config.natsTlsCaFile === undefined
        ? {}
        : { tls: natsTls(config.natsTlsCaFile, config.natsTlsCertFile, config.natsTlsKeyFile) }),
    },
    stateDir: config.stateDir,
    http: { host: config.httpHost, port: config.httpPort },
    metrics: { host: config.metricsHost, port: config.metricsPort },
    expiryWarningMs: config.expiryWarningMs,
    retention: config.retention,
    sweepMs: config.retentionSweepMs,
    auth,
    ...(devTokens === undefined ? {} : { devTokens }),
    notify: resolveNotifyConfig(config.notify),
    ...(desk === undefined ? {} : { desk }),
  };
}

/**
 * The Desk's options: the organisation's OpenID provider when configured; in development mode
 * (STAFETT_AUTH_DEV) also the development sign-in, which production never has.
 */
function deskOptions(
  config: ServiceEnvConfig,
  devTokens: DevTokenIssuer | undefined,
): DeskOptions | undefined {
  const oidc =
    config.deskOidcIssuer === undefined ||
    config.deskOidcClientId === undefined ||
    config.deskOidcClientSecretFile === undefined
      ? undefined
      : {
          issuer: config.deskOidcIssuer,
          clientId: config.deskOidcClientId,
          clientSecret: new TextDecoder()
            .decode(readSecretFile(config.deskOidcClientSecretFile))
            .trim(),
          ...(config.deskOidcResource === undefined ? {} : { resource: config.deskOidcResource }),
          ...(config.deskOidcScope === undefined ? {} : { scope: config.deskOidcScope }),
        };
  if (oidc === undefined && devTokens === undefined) return undefined;
  return {
    ...(oidc === undefined ? {} : { oidc }),
    ...(devTokens === undefined ? {} : { devSignIn: devTokens }),
    ...(config.deskPublicUrl === undefined ? {} : { publicUrl: config.deskPublicUrl }),
  };
}

function natsTls(
  caFile: string,
  certFile: string | undefined,
  keyFile: string | undefined,
): { caFile: string; certFile?: string; keyFile?: string } {
  return {
    caFile,
    ...(certFile === undefined ? {} : { certFile }),
    ...(keyFile === undefined ? {} : { keyFile }),
  };
}
