import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigReader } from "./config.js";
import { StafettError } from "./errors.js";
import { readNotifyEnv, resolveNotifyConfig } from "./notify-config.js";
import { DEFAULT_RETRY_MS } from "./notifier.js";

const dir = mkdtempSync(join(tmpdir(), "stafett-notify-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = `whsec_${Buffer.alloc(32, 7).toString("base64")}`;

function read(env: Record<string, string>) {
  const r = new ConfigReader(env);
  return r.done({ notify: readNotifyEnv(r) }).notify;
}

function problems(env: Record<string, string>): string[] {
  try {
    read(env);
    return [];
  } catch (err) {
    if (!(err instanceof StafettError)) throw err;
    return (err.issues ?? []).map((i) => i.message);
  }
}

describe("the notification settings", () => {
  it("default to no webhooks, no e-mail and Standard Webhooks' retry schedule", () => {
    const config = resolveNotifyConfig(read({}));
    expect(config).toEqual({
      webhooks: [],
      retryMs: [...DEFAULT_RETRY_MS],
      timeoutMs: 15_000,
      deadlineShare: 0.75,
      linkDownAfterMs: 300_000,
    });
    expect(DEFAULT_RETRY_MS).toEqual([
      5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
    ]);
  });

  it("read webhooks from a file, their secrets from 0600 files beside it, and SMTP from the URL", () => {
    writeFileSync(join(dir, "case.whsec"), SECRET, { mode: 0o600 });
    writeFileSync(join(dir, "smtp.pass"), "s3cret\n", { mode: 0o600 });
    writeFileSync(
      join(dir, "webhooks.json"),
      JSON.stringify([
        {
          name: "case-system",
          url: "https://cases.example.org/stafett",
          secretFile: "case.whsec",
          events: ["inbox.new", "referral.changed", "inbox.new"],
        },
      ]),
    );
    const config = resolveNotifyConfig(
      read({
        STAFETT_PUBLIC_URL: "https://stafett.goteborg.example.org",
        STAFETT_WEBHOOKS: join(dir, "webhooks.json"),
        STAFETT_WEBHOOK_RETRY: "1s,10s,2m",
        STAFETT_WEBHOOK_TIMEOUT: "5s",
        STAFETT_SMTP_URL: "smtp://mail.example.org:587",
        STAFETT_SMTP_USER: "stafett",
        STAFETT_SMTP_PASSWORD_FILE: join(dir, "smtp.pass"),
        STAFETT_SMTP_REQUIRE_TLS: "1",
        STAFETT_ALERT_FROM: "stafett@goteborg.example.org",
        STAFETT_ALERT_TO: "socialjour@goteborg.example.org, jour2@goteborg.example.org",
        STAFETT_ALERT_DEADLINE_SHARE: "0.5",
        STAFETT_ALERT_LINK_DOWN_AFTER: "10m",
      }),
    );
    expect(config).toEqual({
      publicUrl: "https://stafett.goteborg.example.org",
      webhooks: [
        {
          name: "case-system",
          url: "https://cases.example.org/stafett",
          secret: SECRET,
          events: ["inbox.new", "referral.changed"],
        },
      ],
      mail: {
        host: "mail.example.org",
        port: 587,
        secure: false,
        requireTls: true,
        user: "stafett",
        pass: "s3cret",
        from: "stafett@goteborg.example.org",
        to: ["socialjour@goteborg.example.org", "jour2@goteborg.example.org"],
      },
      retryMs: [1_000, 10_000, 120_000],
      timeoutMs: 5_000,
      deadlineShare: 0.5,
      linkDownAfterMs: 600_000,
    });
  });

  it("report every problem of the variables at once", () => {
    expect(
      problems({
        STAFETT_PUBLIC_URL: "ftp://x",
        STAFETT_WEBHOOK_RETRY: "5s,soon",
        STAFETT_SMTP_URL: "smtp://user:pw@mail.example.org",
        STAFETT_ALERT_DEADLINE_SHARE: "1.5",
      }),
    ).toEqual([
      "STAFETT_PUBLIC_URL must be an http(s) URL",
      "STAFETT_WEBHOOK_RETRY must be durations separated by commas, e.g. 5s,5m,30m",
      "STAFETT_SMTP_URL must not hold credentials (STAFETT_SMTP_USER, _PASSWORD_FILE)",
      "STAFETT_ALERT_TO is required with STAFETT_SMTP_URL",
      "STAFETT_ALERT_FROM is required",
      "STAFETT_ALERT_DEADLINE_SHARE must be a number between 0 and 1, e.g. 0.75",
    ]);
  });

  it.each<[string, number, Record<string, unknown>, string, string]>([
    ["a secret file others can read", 0o644, {}, "ERR_KEY_INVALID", "permissions"],
    ["an unknown event", 0o600, { events: ["inbox.nwe"] }, "ERR_CONFIG_INVALID", "invalid"],
    ["a name that is not a token", 0o600, { name: "Case System" }, "ERR_CONFIG_INVALID", "invalid"],
    ["a URL that is not http(s)", 0o600, { url: "file:///etc" }, "ERR_CONFIG_INVALID", "invalid"],
  ])("refuse %s in the webhooks file", (_what, mode, entry, code, reason) => {
    const secretFile = join(dir, `s-${Math.random().toString(36).slice(2)}.whsec`);
    writeFileSync(secretFile, SECRET, { mode });
    const webhooks = join(dir, `w-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(
      webhooks,
      JSON.stringify([
        { name: "case", url: "https://x.example.org", secretFile, events: ["inbox.new"], ...entry },
      ]),
    );
    let thrown: unknown;
    try {
      resolveNotifyConfig(read({ STAFETT_WEBHOOKS: webhooks }));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(StafettError);
    expect(thrown).toMatchObject({ code, reason });
  });
});
