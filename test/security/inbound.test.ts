/**
 * A partner's referral into Sweden, attacked by hostile insiders on both sides of a real
 * federation link (two nats-servers): a partner contact point that names a Swedish municipality it
 * has no business with, acts on referrals it does not hold, forges a countersignature or replays;
 * and a Swedish insider who sends an acceptance over the border without the liaison. Each gets a
 * coded refusal (quarantined with its code, the sender answered), and the honest referral the
 * attacks aim at is still accepted and verified in Norway.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, headers, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import type { LocalCountry } from "@stafett/devkit";
import {
  samplePersonal,
  startSwedenNorway,
  type SwedenNorway,
  waitForValue,
  type Country,
  type Federation,
} from "@stafett/devkit";
import {
  createLogger,
  decodeEvent,
  decodeSignedEvent,
  fromBase64,
  issue,
  TrustStore,
  type IssueInput,
  type IssuedEvent,
} from "@stafett/shared";
import { withForgedSignature } from "../support/forgery.js";

const log = createLogger({ service: "security-inbound", level: process.env.LOG_LEVEL ?? "silent" });
let fed: Federation;
let pair: SwedenNorway;
let se: LocalCountry;
let no: LocalCountry;
let seCountry: Country;
let noCountry: Country;
let seNc: NatsConnection;
let noNc: NatsConnection;
let seAdmin: NatsConnection;
let noAdmin: NatsConnection;
const subs: Subscription[] = [];
/** Every refusal either country made, by the refused event's id. */
const refusals = new Map<string, { country: string; code: string; reason: string }>();

const MALMO = "1280";
const GOTEBORG = "1480";

beforeAll(async () => {
  pair = await startSwedenNorway({
    log,
    municipalities: [MALMO, GOTEBORG],
  });
  ({ fed, se, no, seCountry, noCountry } = pair);
  // The hostile insiders publish with the NATS credentials of each country's liaison, the only
  // account that reaches the link (a municipality's cannot: test/security/attacks.test.ts).
  seNc = await connect({ servers: fed.server("se").url, ...se.connectionOf("se:liaison") });
  noNc = await connect({ servers: fed.server("no").url, ...no.connectionOf("no:liaison") });
  // The refusals are watched by each country's provisioner, in the streams' account.
  seAdmin = await connect({ servers: fed.server("se").url, ...se.admin });
  noAdmin = await connect({ servers: fed.server("no").url, ...no.admin });
  for (const [cc, nc] of [
    ["se", seAdmin],
    ["no", noAdmin],
  ] as const) {
    const sub = nc.subscribe(`stafett-quarantine.${cc}.>`);
    subs.push(sub);
    void (async () => {
      for await (const m of sub)
        refusals.set(m.headers?.get("Stafett-Event-Id") ?? "", {
          country: cc,
          code: m.headers?.get("Stafett-Reject-Code") ?? "",
          reason: m.headers?.get("Stafett-Reject-Reason") ?? "",
        });
    })();
    await nc.flush();
  }
}, 60_000);

afterAll(async () => {
  for (const s of subs) s.unsubscribe();
  await seNc?.close();
  await noNc?.close();
  await seAdmin?.close();
  await noAdmin?.close();
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
const bothLists = () => new TrustStore([noCountry.trustList, seCountry.trustList]);

/** An event signed with a Norwegian organisation's real key (a hostile insider holds it). */
const asNorway = (input: IssueInput, from = "no:liaison"): Promise<IssuedEvent> =>
  issue(input, { identity: noCountry.identity(from), trust: bothLists() });

/**
 * Publishes as `nc` under the message id `msgId` and waits for the refusal of `eventId`. A plain
 * publish: across the link a JetStream publish gets no acknowledgement back (only the liaisons'
 * own reply subjects cross), and the stream's duplicate window keys on the header all the same.
 */
async function sendAs(
  nc: NatsConnection,
  subject: string,
  bytes: Uint8Array,
  msgId: string,
): Promise<void> {
  const h = headers();
  h.set("Nats-Msg-Id", msgId);
  nc.publish(subject, bytes, { headers: h });
  await nc.flush();
}

async function refusedAs(
  nc: NatsConnection,
  subject: string,
  bytes: Uint8Array,
  eventId: string,
  msgId = eventId,
): Promise<{ country: string; code: string; reason: string }> {
  refusals.delete(eventId);
  await sendAs(nc, subject, bytes, msgId);
  return waitForValue(() => refusals.get(eventId), {
    timeoutMs: 10_000,
    message: "the refusal in quarantine",
  });
}

/** Norway's honest referral to `municipality`, in its inbox there. */
async function honestReferral(municipality: string, n: number) {
  const sent = await noLiaison().referAbroad({
    partner: "se",
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    destination: { municipality },
    deadline: new Date(Date.now() + 3_600_000).toISOString(),
    personal: samplePersonal(n),
  });
  const item = await waitForValue(
    () => se.gateway(municipality).gateway.inboxItem(sent.referralId),
    { timeoutMs: 15_000, message: "the honest referral in the inbox" },
  );
  return { referralId: sent.referralId, item };
}

/** The honest referral still goes through: accepted, and the acceptance verified in Norway. */
async function stillAccepted(municipality: string, referralId: string): Promise<void> {
  await se.gateway(municipality).gateway.answer(referralId, "accepted");
  const sent = await waitForValue(
    () => {
      const s = noLiaison().state.sent.get(referralId);
      return s?.status === "accepted" ? s : undefined;
    },
    { timeoutMs: 15_000, message: "the honest acceptance in Norway" },
  );
  const accepted = sent.answers.find((a) => a.type === "accepted");
  expect(accepted?.by).toBe(`se:municipality:${municipality}`);
}

describe("a hostile partner contact point, against a partner's referral into Sweden", () => {
  it("names a Swedish municipality it has no business with: refused not_crossed, and a referral bound elsewhere destination_country; nothing reaches the municipality", async () => {
    const { referralId } = await honestReferral(GOTEBORG, 11);
    // A forward of its own referral straight to Malmö, past the contact point and the hub.
    const own = await asNorway({
      type: "opened",
      addressee: "se:liaison",
      referralId: randomUUID(),
      body: {
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "se", municipality: MALMO },
        deadline: new Date(Date.now() + 3_600_000).toISOString(),
      },
      personal: samplePersonal(12),
      sealTo: ["se:liaison", `se:municipality:${MALMO}`],
    });
    const direct = await asNorway({
      type: "forwarded",
      addressee: `se:municipality:${MALMO}`,
      referralId: own.event.referralId,
      body: { original: Buffer.from(own.bytes).toString("base64") },
    });
    expect(await refusedAs(noNc, direct.subject, direct.bytes, direct.id)).toMatchObject({
      country: "se",
      code: "ERR_NOT_AUTHORISED",
      reason: "not_crossed",
    });
    expect(se.gateway(MALMO).gateway.inboxItem(own.event.referralId)).toBeUndefined();
    // An acceptance addressed to Malmö about the honest referral, which Malmö is not on.
    const toMalmo = await asNorway({
      type: "accepted",
      addressee: `se:municipality:${MALMO}`,
      referralId,
      body: { ofEventId: randomUUID() },
    });
    expect(await refusedAs(noNc, toMalmo.subject, toMalmo.bytes, toMalmo.id)).toMatchObject({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_crossed",
    });
    // A referral for another country, sent to Sweden's contact point.
    const elsewhere = await asNorway({
      type: "opened",
      addressee: "se:liaison",
      referralId: randomUUID(),
      body: {
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "dk" },
        deadline: new Date(Date.now() + 3_600_000).toISOString(),
      },
      personal: samplePersonal(13),
      sealTo: ["se:liaison"],
    });
    expect(await refusedAs(noNc, elsewhere.subject, elsewhere.bytes, elsewhere.id)).toMatchObject({
      code: "ERR_NOT_ADDRESSEE",
      reason: "destination_country",
    });
    expect(seLiaison().state.inbound.has(elsewhere.event.referralId)).toBe(false);
    await stillAccepted(GOTEBORG, referralId);
  });

  it("accepts its own referral, which a Swedish municipality holds, and one that never crossed: refused not_holder and not_crossed, and told so", async () => {
    const { referralId } = await honestReferral(GOTEBORG, 14);
    const own = await asNorway({
      type: "accepted",
      addressee: "se:liaison",
      referralId,
      body: { ofEventId: randomUUID() },
    });
    expect(await refusedAs(noNc, own.subject, own.bytes, own.id)).toMatchObject({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_holder",
    });
    // Sweden answered with a signed refusal, which Norway's contact point holds.
    const rejected = await waitForValue(
      () =>
        noLiaison()
          .state.sent.get(referralId)
          ?.answers.find((a) => a.type === "rejected"),
      { timeoutMs: 10_000, message: "the signed refusal in Norway" },
    );
    const body = decodeEvent(decodeSignedEvent(fromBase64(rejected.bytes)).event).rejected;
    expect(body).toMatchObject({ code: "ERR_NOT_AUTHORISED", reason: "not_holder" });
    const stranger = await asNorway({
      type: "accepted",
      addressee: "se:liaison",
      referralId: randomUUID(),
      body: { ofEventId: randomUUID() },
    });
    expect(await refusedAs(noNc, stranger.subject, stranger.bytes, stranger.id)).toMatchObject({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_crossed",
    });
    expect(se.gateway(GOTEBORG).gateway.inboxItem(referralId)?.status).toBe("pending");
    await stillAccepted(GOTEBORG, referralId);
  });

  it("replays its referral, under a new message id or a new event id, and its withdrawal: each refused ERR_REPLAY, the referral held once", async () => {
    const referralId = randomUUID();
    const opened = (id?: string) =>
      asNorway({
        type: "opened",
        addressee: "se:liaison",
        referralId,
        ...(id === undefined ? {} : { id }),
        body: {
          urgency: "URGENCY_HIGH",
          reason: "REASON_CATEGORY_MISSING",
          destination: { country: "se", municipality: MALMO },
          deadline: new Date(Date.now() + 3_600_000).toISOString(),
        },
        personal: samplePersonal(15),
        sealTo: ["se:liaison"],
      });
    const first = await opened();
    await sendAs(noNc, first.subject, first.bytes, first.id);
    await waitForValue(() => se.gateway(MALMO).gateway.inboxItem(referralId), {
      timeoutMs: 15_000,
      message: "the referral at Malmö",
    });
    const same = await refusedAs(noNc, first.subject, first.bytes, first.id, randomUUID());
    expect(same).toMatchObject({ country: "se", code: "ERR_REPLAY" });
    const again = await opened();
    expect(await refusedAs(noNc, again.subject, again.bytes, again.id)).toMatchObject({
      code: "ERR_REPLAY",
      reason: "duplicate_referral",
    });
    await waitForValue(
      () =>
        se.hub("syd").hub.state.referrals.get(referralId)?.status === "forwarded"
          ? true
          : undefined,
      { timeoutMs: 10_000, message: "the referral held once, forwarded to Malmö" },
    );
    // Forwarded to Malmö once: one receipt of the hand-in, one hand-on.
    expect(
      se
        .hub("syd")
        .hub.state.referrals.get(referralId)
        ?.history.map((h) => h.type),
    ).toEqual(["received", "forwarded"]);
    // A captured withdrawal, sent once, then again under a new message id.
    const withdrawn = await asNorway({
      type: "withdrawn",
      addressee: "se:liaison",
      referralId,
      body: { reason: "WITHDRAW_REASON_CHILD_FOUND" },
    });
    await sendAs(noNc, withdrawn.subject, withdrawn.bytes, withdrawn.id);
    await waitForValue(
      () =>
        se.gateway(MALMO).gateway.inboxItem(referralId)?.status === "withdrawn" ? true : undefined,
      { timeoutMs: 15_000, message: "the withdrawal at Malmö" },
    );
    expect(
      await refusedAs(noNc, withdrawn.subject, withdrawn.bytes, withdrawn.id, randomUUID()),
    ).toMatchObject({ code: "ERR_REPLAY" });
  });

  it("forges the Swedish liaison's countersignature on its own withdrawal: refused ERR_COUNTERSIGNATURE_INVALID, the referral still pending", async () => {
    const { referralId } = await honestReferral(MALMO, 16);
    const w = await asNorway({
      type: "withdrawn",
      addressee: "se:liaison",
      referralId,
      body: { reason: "WITHDRAW_REASON_SENT_IN_ERROR" },
    });
    const forged = await withForgedSignature(w.bytes, seCountry.identity("se:liaison").signing.kid);
    expect(await refusedAs(noNc, w.subject, forged, w.id)).toMatchObject({
      country: "se",
      code: "ERR_COUNTERSIGNATURE_INVALID",
    });
    expect(se.gateway(MALMO).gateway.inboxItem(referralId)?.status).toBe("pending");
    await stillAccepted(MALMO, referralId);
  });
});

describe("a hostile Swedish insider, against the answer going back to the partner", () => {
  it("an acceptance sent over the border by the municipality itself, with a forged liaison countersignature or none: refused in Norway, the real answer still verified", async () => {
    const { referralId, item } = await honestReferral(GOTEBORG, 17);
    const goteborg = seCountry.identity(`se:municipality:${GOTEBORG}`);
    // Göteborg's own, real signature; the border and the hub bypassed by an insider holding the
    // liaison's NATS credentials (not its signing key).
    const accepted = await issue(
      {
        type: "accepted",
        addressee: "no:liaison",
        referralId,
        body: { ofEventId: item.openedId },
        partnerCountry: "no",
      },
      { identity: goteborg, trust: new TrustStore([seCountry.trustList, noCountry.trustList]) },
    );
    const subject = "stafett.no.in.se.accepted";
    expect(await refusedAs(seNc, subject, accepted.bytes, accepted.id)).toMatchObject({
      country: "no",
      code: "ERR_COUNTERSIGNATURE_MISSING",
    });
    const forged = await withForgedSignature(
      accepted.bytes,
      seCountry.identity("se:liaison").signing.kid,
    );
    expect(await refusedAs(seNc, subject, forged, accepted.id, randomUUID())).toMatchObject({
      country: "no",
      code: "ERR_COUNTERSIGNATURE_INVALID",
    });
    expect(noLiaison().state.sent.get(referralId)?.status).toBe("sent");
    await stillAccepted(GOTEBORG, referralId);
    // Replaying the real, countersigned acceptance to Norway is refused too, and counted once.
    const real = noLiaison()
      .state.sent.get(referralId)
      ?.answers.find((a) => a.type === "accepted");
    if (real === undefined) throw new Error("no acceptance");
    const bytes = fromBase64(real.bytes);
    expect(
      await refusedAs(seNc, "stafett.no.in.se.forwarded", bytes, real.eventId, randomUUID()),
    ).toMatchObject({ country: "no", code: "ERR_REPLAY" });
    expect(
      noLiaison()
        .state.sent.get(referralId)
        ?.answers.filter((a) => a.type === "accepted"),
    ).toHaveLength(1);
  });
});
