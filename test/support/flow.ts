/**
 * A referral flow from Stockholm (0180) to Göteborg (1480) for fault tests: a case system that
 * retries with the same Idempotency-Key until the gateway accepts, and the check that every
 * referral arrived, was receipted and forwarded exactly once; and a referral abroad, accepted
 * by the partner's liaison.
 */
import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type ConnectionOptions } from "@nats-io/transport-node";
import type { Gateway } from "@stafett/gateway";
import type { Hub } from "@stafett/hub";
import type { Liaison } from "@stafett/liaison";
import { samplePersonal } from "@stafett/devkit";
import { listQuarantine, StafettError, type QuarantineEntry } from "@stafett/shared";
import { waitFor, waitForValue } from "./wait.js";

/** Codes a case system retries (HTTP 503 with Retry-After). */
const RETRY_LATER = new Set(["ERR_UNAVAILABLE", "ERR_JOURNAL_WRITE", "ERR_CLOCK_SKEW"]);

/** The case system's own keys for `n` referrals (sent as Idempotency-Key). */
export function caseKeys(n: number): string[] {
  return Array.from({ length: n }, () => `case-${randomUUID()}`);
}

/**
 * Opens a referral from `origin` to the municipality `to` about synthetic child `i`, with a key
 * of its own; resolves with the id the gateway drew.
 */
export async function openTo(
  origin: Gateway,
  to: string,
  i: number,
  deadline?: string,
): Promise<string> {
  const opened = await origin.openReferral(
    {
      urgency: "URGENCY_NORMAL",
      reason: "REASON_CATEGORY_MOVED",
      destination: { country: "se", municipality: to },
      personal: samplePersonal(i),
      ...(deadline === undefined ? {} : { deadline }),
    },
    `case-${randomUUID()}`,
  );
  return opened.referralId;
}

/**
 * A referral from `origin` to the country `cc`: it reaches the partner's liaison, which accepts
 * it, and `origin` sees it closed. Resolves with the referral's timeline types at `origin`.
 */
export async function referAbroad(
  origin: Gateway,
  cc: string,
  partner: Liaison,
): Promise<string[]> {
  const { referralId } = await origin.openReferral({
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_TRAFFICKING_SUSPECTED",
    destination: { country: cc },
    personal: samplePersonal(5),
  } as never);
  await waitForValue(() => partner.state.inbound.get(referralId), {
    timeoutMs: 15_000,
    message: `the referral at ${cc}'s liaison`,
  });
  await partner.answer(referralId, "accepted");
  await waitFor(() => origin.referral(referralId)?.status === "closed", {
    timeoutMs: 10_000,
    message: `${cc}'s acceptance and the close at the origin`,
  });
  return origin.referral(referralId)?.timeline.map((e) => e.type) ?? [];
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
        if (err instanceof StafettError && !RETRY_LATER.has(err.code)) throw err;
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

/** Where a test's parties run: the bus (per country) and the in-process services to look into. */
export interface RefusalScope {
  /** Per country code: how to reach its NATS as the provisioner (servers and credentials). */
  countries: Record<string, ConnectionOptions>;
  gateways?: readonly Gateway[];
  hubs?: readonly Hub[];
}

/** Everything refused anywhere in scope: quarantine entries (ERR_REPLAY among them) and `rejected`. */
export async function refusals(scope: RefusalScope): Promise<{
  quarantined: (QuarantineEntry & { country: string })[];
  rejected: string[];
}> {
  const quarantined: (QuarantineEntry & { country: string })[] = [];
  for (const [country, opts] of Object.entries(scope.countries)) {
    const nc = await connect(opts);
    try {
      const jsm = await jetstreamManager(nc);
      for (const q of await listQuarantine(jsm, country)) quarantined.push({ ...q, country });
    } finally {
      await nc.close();
    }
  }
  const rejected: string[] = [];
  for (const g of scope.gateways ?? [])
    for (const r of g.state.sent.values())
      for (const e of r.timeline)
        if (e.type === "rejected") rejected.push(`${g.id} ${r.referralId} ${e.code ?? ""}`);
  for (const h of scope.hubs ?? [])
    for (const r of h.state.referrals.values())
      for (const e of r.history)
        if (e.type === "rejected" || e.type === "refused")
          rejected.push(`${h.id} ${r.referralId} ${e.code ?? ""}`);
  return { quarantined, rejected };
}

/**
 * The other half of "nothing doubled": receivers drop a repeat by design, so a doubled message
 * shows only as an ERR_REPLAY quarantine entry and a `rejected` to its sender. Asserts there is
 * no quarantine entry at all, and no `rejected` in any timeline or hub history in scope.
 */
export async function expectNoRefusals(scope: RefusalScope): Promise<void> {
  const r = await refusals(scope);
  expect(
    r.quarantined.map((q) => `${q.country} ${q.code} ${q.reason} ${q.consumer} ${q.subject}`),
    "quarantine entries",
  ).toEqual([]);
  expect(r.rejected, "rejected answers").toEqual([]);
}
