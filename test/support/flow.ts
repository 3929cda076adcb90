/**
 * A referral flow from Stockholm (0180) to Göteborg (1480) for fault tests: a case system that
 * retries with the same Idempotency-Key until the gateway accepts, and the check that every
 * referral arrived, was receipted and forwarded exactly once.
 */
import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import type { Gateway } from "@stafett/gateway";
import { samplePersonal } from "@stafett/devkit";
import { StafettError } from "@stafett/shared";
import { waitFor } from "./wait.js";

/** The case system's own keys for `n` referrals (sent as Idempotency-Key). */
export function caseKeys(n: number): string[] {
  return Array.from({ length: n }, () => `case-${randomUUID()}`);
}

/**
 * Sends a referral per key in turn, retrying a 503-like refusal with the same key; the ids the
 * gateway gave them are pushed to `ids` as they come.
 */
export async function sendReferrals(
  origin: Gateway,
  keys: readonly string[],
  ids: string[] = [],
): Promise<string[]> {
  for (const [i, key] of keys.entries()) {
    for (;;) {
      try {
        const opened = await origin.openReferral(
          {
            urgency: "URGENCY_NORMAL",
            reason: "REASON_CATEGORY_MOVED",
            destination: { country: "se", municipality: "1480" },
            personal: samplePersonal(i),
          },
          key,
        );
        ids.push(opened.referralId);
        break;
      } catch (err) {
        if (err instanceof StafettError && err.code !== "ERR_UNAVAILABLE") throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  return ids;
}

const types = (origin: Gateway, id: string): string[] =>
  origin.referral(id)?.timeline.map((e) => e.type) ?? [];

/** Waits until every referral is in the destination's inbox, receipted and forwarded at the origin; then asserts exactly once each. */
export async function expectEachOnce(
  origin: Gateway,
  destination: Gateway,
  ids: readonly string[],
  timeoutMs = 60_000,
): Promise<void> {
  const settled = (id: string): boolean =>
    destination.inboxItem(id) !== undefined &&
    types(origin, id).includes("received") &&
    types(origin, id).includes("forwarded");
  await waitFor(() => ids.every(settled), {
    timeoutMs,
    message: "every referral delivered, receipted and forwarded",
  }).catch((err: unknown) => {
    const missing = ids.filter((id) => !settled(id));
    const why = missing.map(
      (id) =>
        `${destination.inboxItem(id) === undefined ? "no-inbox" : "inbox"}/${types(origin, id).join("+")}`,
    );
    throw new Error(`${missing.length} unsettled: ${why.slice(0, 8).join(", ")}`, { cause: err });
  });
  for (const id of ids) {
    const t = types(origin, id);
    expect({
      id,
      opened: t.filter((x) => x === "opened").length,
      received: t.filter((x) => x === "received").length,
      forwarded: t.filter((x) => x === "forwarded").length,
    }).toEqual({ id, opened: 1, received: 1, forwarded: 1 });
  }
  expect(destination.state.inbox.size).toBe(ids.length);
}
