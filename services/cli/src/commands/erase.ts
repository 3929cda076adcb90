/**
 * `stafett erase --referral ID --url URL --token-file FILE [--inbound]`: asks the service at URL
 * (a gateway or a hub; with `--inbound`, the liaison, for a partner's referral into the country)
 * to erase a referral's personal part from its own store, with the bearer token of a
 * person granted `eraser` (docs/data-protection.md, "Erasure on request"). The service records
 * the erasure in its access audit first; this command only carries the request, so the same
 * rules hold as for any API client: 403 without the right, 404 for an id it does not hold.
 */
import { readFileSync } from "node:fs";
import type { Io } from "../io.js";

export async function erase(
  args: { referral: string; url: string; tokenFile: string; inbound?: boolean },
  io: Io,
): Promise<number> {
  const token = readFileSync(args.tokenFile, "utf8").trim();
  const collection = args.inbound === true ? "inbound" : "referrals";
  const res = await fetch(
    `${args.url.replace(/\/+$/, "")}/v1/${collection}/${encodeURIComponent(args.referral)}/personal`,
    { method: "DELETE", headers: { authorization: `Bearer ${token}` } },
  );
  const body = (await res.json().catch(() => ({}))) as {
    code?: string;
    reason?: string;
    erasedAt?: string;
    cause?: string;
  };
  if (res.status === 200) {
    io.out(
      `erased: the personal part of ${args.referral} (${body.cause ?? "request"}) at ${body.erasedAt ?? "?"}\n`,
    );
    return 0;
  }
  io.err(
    `rejected: ${body.code ?? `HTTP ${res.status}`}${body.reason === undefined ? "" : ` (${body.reason})`}\n`,
  );
  return 1;
}
