/**
 * The notification settings every service shares (README, "Configuration"): webhook endpoints
 * (a JSON file naming each endpoint, its URL, the file of its secret and the events it wants),
 * the SMTP server and the people on duty, the retry schedule and the alert thresholds. Read with
 * the other shared variables in readServiceEnv; files are read in resolveNotifyConfig.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Webhook } from "standardwebhooks";
import { parseDuration, type ConfigReader } from "./config.js";
import { StafettError } from "./errors.js";
import { readJsonFile, readSecretFile } from "./key-files.js";
import { isNotificationType, type NotificationType } from "./notifications.js";
import { DEFAULT_NOTIFY_CONFIG, DEFAULT_RETRY_MS, type NotifyConfig } from "./notifier.js";

/** The notification variables as read from the environment (files not yet read). */
export interface NotifyEnvConfig {
  publicUrl: string | undefined;
  webhooksFile: string | undefined;
  retryMs: number[];
  timeoutMs: number;
  smtp:
    | {
        url: URL;
        user: string | undefined;
        passwordFile: string | undefined;
        caFile: string | undefined;
        requireTls: boolean;
        from: string;
        to: string[];
      }
    | undefined;
  deadlineShare: number;
  linkDownAfterMs: number;
}

export function readNotifyEnv(r: ConfigReader): NotifyEnvConfig {
  const publicUrl = r.optional("STAFETT_PUBLIC_URL");
  if (publicUrl !== undefined && !isHttpUrl(publicUrl))
    r.problem("STAFETT_PUBLIC_URL must be an http(s) URL");
  const retryText = r.list("STAFETT_WEBHOOK_RETRY");
  const retryMs = retryText.map((t) => parseDuration(t) ?? NaN);
  if (retryMs.some((ms) => Number.isNaN(ms)))
    r.problem("STAFETT_WEBHOOK_RETRY must be durations separated by commas, e.g. 5s,5m,30m");
  const smtpText = r.optional("STAFETT_SMTP_URL");
  let smtp: NotifyEnvConfig["smtp"];
  if (smtpText !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(smtpText);
    } catch {
      url = undefined;
    }
    if (url === undefined || (url.protocol !== "smtp:" && url.protocol !== "smtps:"))
      r.problem("STAFETT_SMTP_URL must be smtp://host:port or smtps://host:port");
    else if (url.username !== "" || url.password !== "")
      r.problem("STAFETT_SMTP_URL must not hold credentials (STAFETT_SMTP_USER, _PASSWORD_FILE)");
    const to = r.list("STAFETT_ALERT_TO");
    if (to.length === 0) r.problem("STAFETT_ALERT_TO is required with STAFETT_SMTP_URL");
    smtp =
      url === undefined
        ? undefined
        : {
            url,
            user: r.optional("STAFETT_SMTP_USER"),
            passwordFile: r.optional("STAFETT_SMTP_PASSWORD_FILE"),
            caFile: r.optional("STAFETT_SMTP_CA"),
            requireTls: ["1", "true"].includes(
              r.oneOf("STAFETT_SMTP_REQUIRE_TLS", ["0", "1", "true", "false"], "0"),
            ),
            from: r.string("STAFETT_ALERT_FROM"),
            to,
          };
  }
  const shareText = r.optional("STAFETT_ALERT_DEADLINE_SHARE");
  const share = shareText === undefined ? DEFAULT_NOTIFY_CONFIG.deadlineShare : Number(shareText);
  if (!(share > 0 && share < 1))
    r.problem("STAFETT_ALERT_DEADLINE_SHARE must be a number between 0 and 1, e.g. 0.75");
  return {
    publicUrl,
    webhooksFile: r.optional("STAFETT_WEBHOOKS"),
    retryMs: retryText.length === 0 ? [...DEFAULT_RETRY_MS] : retryMs,
    timeoutMs: r.duration("STAFETT_WEBHOOK_TIMEOUT", DEFAULT_NOTIFY_CONFIG.timeoutMs),
    smtp,
    deadlineShare: share,
    linkDownAfterMs: r.duration(
      "STAFETT_ALERT_LINK_DOWN_AFTER",
      DEFAULT_NOTIFY_CONFIG.linkDownAfterMs,
    ),
  };
}

function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

function invalid(message: string, field: string): StafettError {
  return new StafettError("ERR_CONFIG_INVALID", message, { reason: "invalid", field });
}

/**
 * One endpoint in the webhooks file: `{ "name", "url", "secretFile", "events": [...] }`; the
 * secret file (0600, relative to the webhooks file) holds a Standard Webhooks secret (`whsec_`
 * and base64 of 24 to 64 random bytes).
 */
interface EndpointFileEntry {
  name?: unknown;
  url?: unknown;
  secretFile?: unknown;
  events?: unknown;
}

/** Reads the files the notification settings name: the webhooks, their secrets, SMTP's. */
export function resolveNotifyConfig(env: NotifyEnvConfig): NotifyConfig {
  const webhooks: NotifyConfig["webhooks"][number][] = [];
  if (env.webhooksFile !== undefined) {
    const file = env.webhooksFile;
    const list = readJsonFile(file);
    if (!Array.isArray(list)) throw invalid("the webhooks file must hold a JSON array", file);
    for (const [i, raw] of (list as EndpointFileEntry[]).entries()) {
      const at = `${file}#/${i}`;
      const { name, url, secretFile, events } = raw ?? {};
      if (typeof name !== "string" || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(name) || name === "mail")
        throw invalid("a webhook's name must be 1-63 of a-z, 0-9 and - (not 'mail')", `${at}/name`);
      if (webhooks.some((w) => w.name === name))
        throw invalid("two webhooks have the same name", `${at}/name`);
      if (typeof url !== "string" || !isHttpUrl(url))
        throw invalid("a webhook's url must be an http(s) URL", `${at}/url`);
      if (
        !Array.isArray(events) ||
        events.length === 0 ||
        !events.every((e): e is NotificationType => typeof e === "string" && isNotificationType(e))
      )
        throw invalid("a webhook's events must be notification types", `${at}/events`);
      if (typeof secretFile !== "string")
        throw invalid("a webhook needs a secretFile", `${at}/secretFile`);
      const secret = new TextDecoder().decode(readSecretFile(resolve(dirname(file), secretFile)));
      try {
        new Webhook(secret);
      } catch {
        throw invalid("a webhook secret must be whsec_ and base64", `${at}/secretFile`);
      }
      webhooks.push({ name, url, secret, events: [...new Set(events)] });
    }
  }
  const s = env.smtp;
  return {
    ...(env.publicUrl === undefined ? {} : { publicUrl: env.publicUrl }),
    webhooks,
    ...(s === undefined
      ? {}
      : {
          mail: {
            host: s.url.hostname.replace(/^\[|\]$/g, ""),
            port: s.url.port === "" ? (s.url.protocol === "smtps:" ? 465 : 25) : Number(s.url.port),
            secure: s.url.protocol === "smtps:",
            requireTls: s.requireTls,
            ...(s.user === undefined ? {} : { user: s.user }),
            ...(s.passwordFile === undefined
              ? {}
              : { pass: new TextDecoder().decode(readSecretFile(s.passwordFile)) }),
            ...(s.caFile === undefined ? {} : { ca: readCa(s.caFile) }),
            from: s.from,
            to: s.to,
          },
        }),
    retryMs: env.retryMs,
    timeoutMs: env.timeoutMs,
    deadlineShare: env.deadlineShare,
    linkDownAfterMs: env.linkDownAfterMs,
  };
}

function readCa(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new StafettError("ERR_CONFIG_INVALID", `cannot read ${path}`, {
      reason: "unreadable",
      field: path,
      cause,
    });
  }
}
