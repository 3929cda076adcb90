/**
 * Where the demo's and the tests' notifications go: a local mail catcher (a real SMTP server,
 * `smtp-server`, offering STARTTLS when given a certificate) and a webhook receiver (a real HTTP
 * server that checks every delivery's signature with the Standard Webhooks reference code and
 * answers as it is told: 2xx, another status, or never).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { Webhook } from "standardwebhooks";

export interface CaughtMail {
  /** The envelope's recipients. */
  to: string[];
  messageId: string;
  /** Headers and body decoded (RFC 2047 words, quoted-printable, base64). */
  subject: string;
  text: string;
  /** The message as it arrived. */
  raw: string;
  /** Whether it came over TLS (STARTTLS or implicit). */
  secure: boolean;
  headers: Record<string, string>;
}

export interface MailCatcher {
  /** `smtp://127.0.0.1:<port>` */
  url: string;
  port: number;
  mails: CaughtMail[];
  stop(): Promise<void>;
}

/** Starts a mail catcher on a port the OS picks; with `tls`, it offers STARTTLS with that certificate. */
export async function startMailCatcher(
  options: {
    tls?: { certFile: string; keyFile: string };
    /** Called with each mail as it arrives (the demo prints it). */
    onMail?: (mail: CaughtMail) => void;
  } = {},
): Promise<MailCatcher> {
  const mails: CaughtMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    logger: false,
    banner: "stafett mail catcher",
    // No reverse DNS of the client: on a machine without a resolver it takes seconds.
    disableReverseLookup: true,
    ...(options.tls === undefined
      ? { disabledCommands: ["STARTTLS"] }
      : { key: readFileSync(options.tls.keyFile), cert: readFileSync(options.tls.certFile) }),
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const mail: CaughtMail = {
          ...parseMail(raw),
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          secure: session.secure,
        };
        mails.push(mail);
        options.onMail?.(mail);
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    port,
    mails,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Headers (unfolded, RFC 2047 decoded) and the decoded text of a single-part message. */
function parseMail(raw: string): Pick<CaughtMail, "subject" | "text" | "messageId" | "headers"> {
  const split = raw.indexOf("\r\n\r\n");
  const head = (split < 0 ? raw : raw.slice(0, split)).replace(/\r\n[ \t]+/g, " ");
  const body = split < 0 ? "" : raw.slice(split + 4);
  const headers: Record<string, string> = {};
  for (const line of head.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0)
      headers[line.slice(0, colon).toLowerCase()] = decodeWords(line.slice(colon + 1).trim());
  }
  const cte = (headers["content-transfer-encoding"] ?? "").toLowerCase();
  const text =
    cte === "quoted-printable"
      ? decodeQuotedPrintable(body)
      : cte === "base64"
        ? Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8")
        : body;
  return {
    subject: headers.subject ?? "",
    text,
    messageId: headers["message-id"] ?? "",
    headers,
  };
}

function decodeQuotedPrintable(text: string): string {
  const bytes = text
    .replace(/=\r?\n/g, "")
    .replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => `%${hex}`)
    .replace(/%(?![0-9A-F]{2})/gi, "%25");
  try {
    return decodeURIComponent(bytes);
  } catch {
    return text;
  }
}

/** RFC 2047 encoded words (=?UTF-8?Q?...?= and =?UTF-8?B?...?=) in a header value. */
function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, "?==?")
    .replace(
      /=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g,
      (_m, _charset: string, enc: string, word: string) =>
        enc.toUpperCase() === "B"
          ? Buffer.from(word, "base64").toString("utf8")
          : decodeQuotedPrintable(word.replace(/_/g, " ")),
    );
}

export interface WebhookDelivery {
  id: string;
  timestamp: string;
  /** The raw body. */
  body: string;
  /** Whether the signature verified (standardwebhooks' `verify`). */
  verified: boolean;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** What the receiver answered (a status, or "hang" when it never answered). */
  answered: number | "hang";
}

/** What the receiver answers a delivery: a status, or "hang" (never answers). */
export type WebhookAnswer = number | "hang";

export interface WebhookReceiver {
  url: string;
  /** A fresh Standard Webhooks secret the receiver verifies with. */
  secret: string;
  /** Every delivery, in the order they arrived. */
  deliveries: WebhookDelivery[];
  /** How to answer the next deliveries (default 204). */
  answer: (d: { id: string; attempt: number }) => WebhookAnswer;
  /** The deliveries de-duplicated by webhook-id, as a receiver would keep them. */
  unique(): Map<string, WebhookDelivery>;
  stop(): Promise<void>;
}

/** A new Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64")}`;
}

/** Starts a webhook receiver on a port the OS picks. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const secret = newWebhookSecret();
  const verifier = new Webhook(secret);
  const deliveries: WebhookDelivery[] = [];
  const hanging = new Set<() => void>();
  const receiver: WebhookReceiver = {
    url: "",
    secret,
    deliveries,
    answer: () => 204,
    unique() {
      const out = new Map<string, WebhookDelivery>();
      for (const d of deliveries) if (d.verified && !out.has(d.id)) out.set(d.id, d);
      return out;
    },
    stop: async () => {
      for (const release of hanging) release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const headers = plain(req.headers);
      let verified = false;
      try {
        verifier.verify(body, headers);
        verified = true;
      } catch {
        verified = false;
      }
      const id = headers["webhook-id"] ?? "";
      const attempt = deliveries.filter((d) => d.id === id).length + 1;
      const answer = receiver.answer({ id, attempt });
      deliveries.push({
        id,
        timestamp: headers["webhook-timestamp"] ?? "",
        body,
        verified,
        at: Date.now(),
        answered: answer,
      });
      if (answer === "hang") {
        const release = (): void => {
          res.destroy();
        };
        hanging.add(release);
        res.on("close", () => hanging.delete(release));
        return;
      }
      res.writeHead(answer).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

function plain(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (typeof v === "string") out[k] = v;
  return out;
}
