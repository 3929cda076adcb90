/**
 * A partner's referral into a Swedish municipality, end to end, on two real nats-servers joined
 * by a federation link (Norway's contact point is the partner): Norway's liaison -> Sweden's
 * liaison (verifies, receipts) -> the hub of the municipality's region, or the contact point when
 * none is named -> the municipality -> its answer back to Norway, where it is verified with every
 * signature it carries.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalCountry } from "@stafett/devkit";
import {
  samplePersonal,
  startSwedenNorway,
  type SwedenNorway,
  waitFor,
  waitForValue,
  type Country,
} from "@stafett/devkit";
import type { ReferAbroad, SentAbroad } from "@stafett/liaison";
import {
  createLogger,
  decodeEvent,
  decodeSignedEvent,
  fromBase64,
  receive,
  TrustStore,
} from "@stafett/shared";

const log = createLogger({ service: "e2e-inbound", level: process.env.LOG_LEVEL ?? "silent" });

let pair: SwedenNorway;
let se: LocalCountry;
let no: LocalCountry;
let seCountry: Country;
let noCountry: Country;

// Malmö (Syd), Göteborg (Väst), Örebro (Bergslagen): three regions.
const MALMO = "1280";
const GOTEBORG = "1480";
const OREBRO = "1880";

beforeAll(async () => {
  pair = await startSwedenNorway({
    log,
    municipalities: [MALMO, GOTEBORG, OREBRO],
  });
  ({ se, no, seCountry, noCountry } = pair);
}, 60_000);

afterAll(async () => {
  await pair?.stop();
});

const noLiaison = () => {
  const l = no.liaison?.liaison;
  if (l === undefined) throw new Error("no Norwegian liaison");
  return l;
};
const seLiaison = () => {
  const l = se.liaison?.liaison;
  if (l === undefined) throw new Error("no Swedish liaison");
  return l;
};

/** Norway's contact point refers a child to Sweden (to `municipality`, when given). */
async function referToSweden(
  municipality: string | undefined,
  n: number,
  over: Partial<ReferAbroad> = {},
): Promise<string> {
  const sent = await noLiaison().referAbroad({
    partner: "se",
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_UNACCOMPANIED_MINOR",
    ...(municipality === undefined ? {} : { destination: { municipality } }),
    deadline: new Date(Date.now() + 3_600_000).toISOString(),
    personal: samplePersonal(n),
    ...over,
  });
  return sent.referralId;
}

const inboxAt = (code: string, referralId: string) =>
  waitForValue(() => se.gateway(code).gateway.inboxItem(referralId), {
    timeoutMs: 15_000,
    message: `the partner's referral in the inbox at ${code}`,
  });

/** What came back to Norway's contact point about its referral, once `done` holds. */
const backInNorway = (referralId: string, done: (s: SentAbroad) => boolean, what: string) =>
  waitForValue(
    () => {
      const s = noLiaison().state.sent.get(referralId);
      return s !== undefined && done(s) ? s : undefined;
    },
    { timeoutMs: 15_000, message: what },
  );

/** Norway checks an answer as its liaison's consumer did: every signature, with both lists. */
async function verifiedInNorway(bytes: string) {
  const checked = await receive(fromBase64(bytes), {
    identity: noCountry.identity("no:liaison"),
    trust: new TrustStore([noCountry.trustList, seCountry.trustList]),
    subject: `stafett.no.in.se.${decodeEvent(decodeSignedEvent(fromBase64(bytes)).event).type}`,
  });
  if (!checked.ok) throw checked.error;
  return checked;
}

describe("from abroad: Norway's contact point to a Swedish municipality", () => {
  it("named municipality: receipted, routed to its region's hub, accepted, and the acceptance verified in Norway with the municipality's signature and the Swedish liaison's countersignature", async () => {
    const referralId = await referToSweden(GOTEBORG, 3);
    const item = await inboxAt(GOTEBORG, referralId);
    expect(item).toMatchObject({ origin: "no:liaison", via: "se:hub:vast", status: "pending" });
    // Sealed anew by Sweden's liaison to Väst's hub and Göteborg: Göteborg reads it.
    expect(await se.gateway(GOTEBORG).gateway.personalOf(item)).toEqual(samplePersonal(3));
    await waitFor(
      () => seLiaison().state.inbound.get(referralId)?.heldBy === `se:municipality:${GOTEBORG}`,
      { timeoutMs: 10_000, message: "Väst's hub to tell the liaison where it went" },
    );
    expect(seLiaison().state.inbound.get(referralId)).toMatchObject({
      status: "routed",
      routedTo: "se:hub:vast",
    });
    // Väst's receipt reached the liaison before its notice: the hub watches the deadline now.
    expect(seLiaison().state.watched.get(referralId)?.settled).toBe(true);

    await se.gateway(GOTEBORG).gateway.answer(referralId, "accepted");
    const sent = await backInNorway(
      referralId,
      (s) => s.status === "accepted",
      "the acceptance in Norway",
    );
    expect(sent.answers.map((a) => [a.type, a.by])).toEqual([
      ["received", "se:liaison"],
      ["accepted", `se:municipality:${GOTEBORG}`],
    ]);
    const accepted = sent.answers[1];
    if (accepted === undefined) throw new Error("no acceptance");
    const signed = decodeSignedEvent(fromBase64(accepted.bytes));
    // Väst's hub's relay, and the Swedish liaison's countersignature over the same bytes.
    expect(signed.signatures).toHaveLength(2);
    const checked = await verifiedInNorway(accepted.bytes);
    expect(checked.issuer.id).toBe("se:hub:vast");
    expect(checked.countersigners.map((o) => o.id)).toEqual(["se:liaison"]);
    expect(checked.original?.issuer.id).toBe(`se:municipality:${GOTEBORG}`);
    expect(checked.original?.event).toMatchObject({ type: "accepted", referralId });
    // The receipt is the Swedish liaison's own, verified in Norway too.
    const receipt = await verifiedInNorway(sent.answers[0]?.bytes ?? "");
    expect(receipt.issuer.id).toBe("se:liaison");
    // The referral is no longer watched at either border.
    expect(noLiaison().state.watched.get(referralId)?.settled).toBe(true);
  });

  it("a decline by the municipality goes back to the partner, verified there, and the hub holds the referral for triage", async () => {
    const referralId = await referToSweden(MALMO, 4);
    await inboxAt(MALMO, referralId);
    await se.gateway(MALMO).gateway.answer(referralId, "declined", {
      reason: "DECLINE_REASON_NOT_RESIDENT",
    });
    const sent = await backInNorway(
      referralId,
      (s) => s.status === "declined",
      "the decline in Norway",
    );
    const declined = sent.answers.find((a) => a.type === "declined");
    expect(declined?.by).toBe(`se:municipality:${MALMO}`);
    const checked = await verifiedInNorway(declined?.bytes ?? "");
    expect(checked.countersigners.map((o) => o.id)).toEqual(["se:liaison"]);
    expect(checked.original?.event.declined?.reason).toBe("DECLINE_REASON_NOT_RESIDENT");
    await waitFor(() => se.hub("syd").hub.state.referrals.get(referralId)?.status === "triage", {
      timeoutMs: 10_000,
      message: "the referral in triage at Syd's hub",
    });
  });

  it("re-routed on the way: declined with a suggestion in another region, accepted there, both answers verified in Norway", async () => {
    const referralId = await referToSweden(GOTEBORG, 5);
    await inboxAt(GOTEBORG, referralId);
    await se.gateway(GOTEBORG).gateway.answer(referralId, "declined", {
      reason: "DECLINE_REASON_WRONG_MUNICIPALITY",
      suggested: { country: "se", municipality: OREBRO },
    });
    const item = await inboxAt(OREBRO, referralId);
    expect(item).toMatchObject({ origin: "no:liaison", via: "se:hub:bergslagen" });
    expect(await se.gateway(OREBRO).gateway.personalOf(item)).toEqual(samplePersonal(5));
    // Väst told the liaison it re-routed: Bergslagen's hub is on the referral's path now.
    await waitFor(
      () => seLiaison().state.crossed.get(referralId)?.domestic.has("se:hub:bergslagen") === true,
      { timeoutMs: 10_000, message: "Väst's notice of the re-route at the liaison" },
    );
    await se.gateway(OREBRO).gateway.answer(referralId, "accepted");
    const sent = await backInNorway(
      referralId,
      (s) => s.status === "accepted",
      "the acceptance from Örebro in Norway",
    );
    expect(sent.answers.map((a) => [a.type, a.by])).toEqual([
      ["received", "se:liaison"],
      ["declined", `se:municipality:${GOTEBORG}`],
      ["accepted", `se:municipality:${OREBRO}`],
    ]);
    const checked = await verifiedInNorway(sent.answers[2]?.bytes ?? "");
    expect(checked.issuer.id).toBe("se:hub:bergslagen");
    expect(checked.countersigners.map((o) => o.id)).toEqual(["se:liaison"]);
  });

  it("a withdrawal by the partner reaches the municipality that holds the referral", async () => {
    const referralId = await referToSweden(MALMO, 6);
    await inboxAt(MALMO, referralId);
    await noLiaison().followAbroad(referralId, {
      type: "withdrawn",
      reason: "WITHDRAW_REASON_CHILD_FOUND",
    });
    await waitFor(() => se.gateway(MALMO).gateway.inboxItem(referralId)?.status === "withdrawn", {
      timeoutMs: 15_000,
      message: "the withdrawal at Malmö",
    });
    // Each relays first and records after: by now both have, or are about to.
    await waitFor(
      () =>
        seLiaison().state.inbound.get(referralId)?.status === "withdrawn" &&
        se.hub("syd").hub.state.referrals.get(referralId)?.status === "withdrawn",
      { timeoutMs: 10_000, message: "the withdrawal recorded at the liaison and Syd's hub" },
    );
    // Withdrawn: Malmö can no longer accept it.
    await expect(se.gateway(MALMO).gateway.answer(referralId, "accepted")).rejects.toMatchObject({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_pending",
    });
  });

  it("a withdrawal by the partner after a re-route follows the referral to the municipality that holds it now", async () => {
    const referralId = await referToSweden(GOTEBORG, 8);
    await inboxAt(GOTEBORG, referralId);
    await se.gateway(GOTEBORG).gateway.answer(referralId, "declined", {
      reason: "DECLINE_REASON_WRONG_MUNICIPALITY",
      suggested: { country: "se", municipality: OREBRO },
    });
    await inboxAt(OREBRO, referralId);
    await noLiaison().followAbroad(referralId, {
      type: "withdrawn",
      reason: "WITHDRAW_REASON_SENT_IN_ERROR",
    });
    // Sweden's liaison -> Väst's hub (where it routed it) -> Bergslagen's hub -> Örebro.
    await waitFor(() => se.gateway(OREBRO).gateway.inboxItem(referralId)?.status === "withdrawn", {
      timeoutMs: 15_000,
      message: "the withdrawal at Örebro",
    });
    expect(se.gateway(GOTEBORG).gateway.inboxItem(referralId)?.status).toBe("declined");
  });

  it("no municipality named: it waits for the contact point, which routes it; the municipality accepts and Norway hears", async () => {
    const referralId = await referToSweden(undefined, 7);
    const waiting = await waitForValue(() => seLiaison().state.inbound.get(referralId), {
      timeoutMs: 15_000,
      message: "the referral at Sweden's contact point",
    });
    expect(waiting.status).toBe("pending");
    expect(await seLiaison().personalOf(waiting)).toEqual(samplePersonal(7));
    await seLiaison().routeTo(referralId, OREBRO);
    const item = await inboxAt(OREBRO, referralId);
    expect(await se.gateway(OREBRO).gateway.personalOf(item)).toEqual(samplePersonal(7));
    await se.gateway(OREBRO).gateway.answer(referralId, "accepted");
    const sent = await backInNorway(
      referralId,
      (s) => s.status === "accepted",
      "the acceptance in Norway",
    );
    expect(sent.answers.at(-1)?.by).toBe(`se:municipality:${OREBRO}`);
    expect((await verifiedInNorway(sent.answers.at(-1)?.bytes ?? "")).countersigners).toHaveLength(
      1,
    );
  });
});
