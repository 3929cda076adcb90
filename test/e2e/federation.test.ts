import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  LocalCountry,
  startSwedenNorway,
  type SwedenNorway,
  startMailCatcher,
  type MailCatcher,
  waitFor,
  waitForValue,
  type Federation,
  samplePersonal,
  type Country,
} from "@stafett/devkit";
import {
  countersign,
  createLogger,
  decodeSignedEvent,
  digestOf,
  fromBase64,
  issue as issueEvent,
  quarantineStreamName,
  TrustStore,
  receive,
} from "@stafett/shared";
import { refusals } from "../support/flow.js";
import { withForgedSignature } from "../support/forgery.js";

const log = createLogger({ service: "e2e", level: process.env.LOG_LEVEL ?? "silent" });
let fed: Federation;
let pair: SwedenNorway;
let se: LocalCountry;
let no: LocalCountry;
let seCountry: Country;
let noCountry: Country;
/** Where the Swedish liaison's alerts go. */
let mail: MailCatcher;
const SE_LIAISON_DUTY = "kontaktpunkt-jour@example.org";
const MALMO = "se:municipality:1280";

beforeAll(async () => {
  mail = await startMailCatcher();
  pair = await startSwedenNorway({
    log,
    municipalities: ["1280", "0180"],
    extras: (cc) =>
      cc === "se"
        ? {
            notify: (id) =>
              id !== "se:liaison"
                ? undefined
                : {
                    webhooks: [],
                    mail: {
                      host: "127.0.0.1",
                      port: mail.port,
                      secure: false,
                      requireTls: false,
                      from: "stafett@example.org",
                      to: [SE_LIAISON_DUTY],
                    },
                    retryMs: [100, 200],
                    timeoutMs: 2_000,
                    deadlineShare: 0.75,
                    linkDownAfterMs: 500,
                  },
          }
        : {},
  });
  ({ fed, se, no, seCountry, noCountry } = pair);
}, 60_000);

afterAll(async () => {
  await pair?.stop();
  await mail?.stop();
});

const referral = (overrides: Record<string, unknown> = {}) => ({
  urgency: "URGENCY_HIGH",
  reason: "REASON_CATEGORY_TRAFFICKING_SUSPECTED",
  destination: { country: "no" },
  personal: samplePersonal(7),
  ...overrides,
});

const timeline = (id: string) => se.gateway("1280").gateway.referral(id);
const types = (id: string) => timeline(id)?.timeline.map((e) => e.type) ?? [];

describe("across the border: Sweden to Norway through both liaisons", () => {
  it("Malmö -> Swedish liaison -> Norwegian liaison, receipt and acceptance back, both signatures verified by the partner", async () => {
    const malmo = se.gateway("1280").gateway;
    const { referralId } = await malmo.openReferral(referral() as never);
    const noLiaison = no.liaison?.liaison;
    if (noLiaison === undefined) throw new Error("no Norwegian liaison");
    const item = await waitForValue(() => noLiaison.state.inbound.get(referralId), {
      timeoutMs: 15_000,
      message: "the referral at the Norwegian liaison",
    });
    expect(item.origin).toBe(MALMO);
    expect(item.status).toBe("pending");

    // The partner verifies both the issuer's and the Swedish liaison's signatures.
    const bytes = fromBase64(item.opened);
    expect(decodeSignedEvent(bytes).signatures).toHaveLength(2);
    const checked = await receive(bytes, {
      identity: noCountry.identity("no:liaison"),
      trust: new TrustStore([noCountry.trustList, seCountry.trustList]),
      subject: "stafett.no.in.se.opened",
    });
    if (!checked.ok) throw checked.error;
    expect(checked.issuer.id).toBe(MALMO);
    expect(checked.countersigners.map((o) => o.id)).toEqual(["se:liaison"]);
    expect(checked.personal).toEqual(samplePersonal(7));

    await waitFor(() => types(referralId).includes("received"), {
      timeoutMs: 10_000,
      message: "the Norwegian receipt at Malmö",
    });
    await noLiaison.answer(referralId, "accepted");
    await waitFor(() => timeline(referralId)?.status === "closed", {
      timeoutMs: 10_000,
      message: "acceptance and close at Malmö",
    });
    expect(types(referralId)).toEqual(["opened", "forwarded", "received", "accepted", "closed"]);
    expect(timeline(referralId)?.timeline.find((e) => e.type === "accepted")?.by).toBe(
      "no:liaison",
    );
    expect(timeline(referralId)?.timeline.find((e) => e.type === "forwarded")?.to).toBe(
      "no:liaison",
    );
  });

  it("the outbound policy refuses a referral abroad without an accepted reason, and the sender sees why", async () => {
    const malmo = se.gateway("1280").gateway;
    const { referralId } = await malmo.openReferral(
      referral({ reason: "REASON_CATEGORY_OTHER" }) as never,
    );
    await waitFor(() => types(referralId).includes("rejected"), {
      timeoutMs: 10_000,
      message: "the refusal at Malmö",
    });
    const entry = timeline(referralId)?.timeline.find((e) => e.type === "rejected");
    expect(entry).toMatchObject({
      by: "se:liaison",
      code: "ERR_OUTBOUND_POLICY",
      reason: "reason_not_allowed",
    });
    expect(no.liaison?.liaison.state.inbound.has(referralId)).toBe(false);
  });

  it("the link carries only the pair's inbound subjects", async () => {
    const link = fed.links.get("se");
    if (link === undefined) throw new Error("no link credentials");
    // What reaches Norway from the link is what a connection in Norway's link account sees;
    // what reaches Sweden's streams is what Sweden's STAFETT account sees.
    const partner = await connect({
      servers: fed.server("no").url,
      user: link.user,
      pass: link.password,
    });
    const seAdmin = await connect({ servers: fed.server("se").url, ...se.admin });
    const seLiaison = await connect({
      servers: fed.server("se").url,
      ...se.connectionOf("se:liaison"),
    });
    try {
      const seen = async (
        watcher: NatsConnection,
        watch: string,
        from: NatsConnection,
        forbidden: string,
        allowedFrom: NatsConnection,
        allowed: string,
      ): Promise<string[]> => {
        const got: string[] = [];
        const sub = watcher.subscribe(watch, {
          callback: (_e, m) => {
            got.push(m.subject);
          },
        });
        await watcher.flush();
        // Give the subscription's interest time to cross the link, then publish forbidden before allowed:
        // once the allowed one arrives, the forbidden one would have arrived first had it crossed.
        await waitFor(
          async () => {
            allowedFrom.publish(allowed.replace(/\.[a-z]+$/, ".received"));
            await allowedFrom.flush();
            return got.length > 0;
          },
          { timeoutMs: 10_000, message: "interest to propagate over the link" },
        );
        got.length = 0;
        from.publish(forbidden);
        await from.flush();
        allowedFrom.publish(allowed);
        await allowedFrom.flush();
        await waitFor(() => got.includes(allowed), {
          timeoutMs: 5_000,
          message: `${allowed} to cross`,
        });
        sub.unsubscribe();
        return got;
      };
      // A Swedish domestic subject published in Sweden's streams' account never reaches Norway.
      const toNo = await seen(
        partner,
        ">",
        seAdmin,
        "stafett.se.syd.1280.opened",
        seLiaison,
        "stafett.no.in.se.withdrawn",
      );
      expect(toNo).toContain("stafett.no.in.se.withdrawn");
      expect(toNo).not.toContain("stafett.se.syd.1280.opened");
      // Replies (pulled messages, API answers) in Sweden never cross.
      const probe = await seen(
        partner,
        ">",
        seAdmin,
        "_INBOX.domestic-reply",
        seLiaison,
        "stafett.no.in.se.updated",
      );
      expect(probe).toContain("stafett.no.in.se.updated");
      expect(probe.filter((s) => s.startsWith("_INBOX"))).toEqual([]);
      // Norway cannot publish into Swedish domestic subjects.
      const toSe = await seen(
        seAdmin,
        "stafett.se.>",
        partner,
        "stafett.se.syd.1280.opened",
        partner,
        "stafett.se.in.no.withdrawn",
      );
      expect(toSe).toContain("stafett.se.in.no.withdrawn");
      expect(toSe).not.toContain("stafett.se.syd.1280.opened");
    } finally {
      await partner.close();
      await seAdmin.close();
      await seLiaison.close();
    }
  });

  it("refuses a partner message whose countersignature is missing, forged or not a liaison's", async () => {
    const malmo = seCountry.identity(MALMO);
    const issue = async (): Promise<Uint8Array> => {
      const issued = await issueEvent(
        {
          type: "opened",
          addressee: "no:liaison",
          referralId: randomUUID(),
          body: {
            urgency: "URGENCY_HIGH",
            reason: "REASON_CATEGORY_MISSING",
            destination: { country: "no" },
            deadline: new Date(Date.now() + 3_600_000).toISOString(),
          },
          personal: samplePersonal(),
          sealTo: ["no:liaison"],
        },
        { identity: malmo, trust: new TrustStore([seCountry.trustList, noCountry.trustList]) },
      );
      return issued.bytes;
    };
    const cases: [Uint8Array, string][] = [
      [await issue(), "ERR_COUNTERSIGNATURE_MISSING"],
      [
        await withForgedSignature(await issue(), seCountry.identity("se:liaison").signing.kid),
        "ERR_COUNTERSIGNATURE_INVALID",
      ],
      [
        await countersign(await issue(), seCountry.identity("se:hub:syd").signing),
        "ERR_COUNTERSIGNATURE_INVALID",
      ],
    ];
    // Sent as Sweden's liaison, the only Swedish party whose account reaches the link.
    const nc = await connect({ servers: fed.server("se").url, ...se.connectionOf("se:liaison") });
    try {
      const noNc = await connect({ servers: fed.server("no").url, ...no.admin });
      const jsm = await jetstreamManager(noNc);
      const before = (await jsm.streams.info(quarantineStreamName("no"))).state.messages;
      for (const [bytes] of cases) nc.publish("stafett.no.in.se.opened", bytes);
      await nc.flush();
      await waitFor(
        async () =>
          (await jsm.streams.info(quarantineStreamName("no"))).state.messages >=
          before + cases.length,
        { timeoutMs: 10_000, message: "three quarantined messages in Norway" },
      );
      const codes: string[] = [];
      for (let seq = before + 1; seq <= before + cases.length; seq++) {
        const m = await jsm.streams.getMessage(quarantineStreamName("no"), { seq });
        codes.push(m?.header.get("Stafett-Reject-Code") ?? "");
      }
      expect(codes.sort()).toEqual(cases.map(([, code]) => code).sort());
      await noNc.close();
    } finally {
      await nc.close();
    }
  });

  it("a message that the partner's stream would refuse for ever does not hold up what leaves after it", async () => {
    const malmo = se.gateway("1280").gateway;
    const noLiaison = no.liaison?.liaison;
    if (noLiaison === undefined) throw new Error("no Norwegian liaison");
    // Stockholm (hostile) sends an ordinary receipt to Norway's liaison, published with a
    // JetStream expectation that holds in Sweden's stream and fails in Norway's.
    const e = await issueEvent(
      {
        type: "received",
        addressee: "no:liaison",
        referralId: randomUUID(),
        body: { ofEventId: randomUUID(), digest: digestOf(new Uint8Array([1])) },
        partnerCountry: "no",
      },
      { identity: seCountry.identity("se:municipality:0180"), trust: seCountry.trust },
    );
    const nc = await connect({
      servers: fed.server("se").url,
      ...se.connectionOf("se:municipality:0180"),
    });
    try {
      await jetstream(nc).publish(e.subject, e.bytes, {
        msgID: e.id,
        expect: { streamName: "STAFETT_SE" },
      });
    } finally {
      await nc.close();
    }
    const { referralId } = await malmo.openReferral(referral() as never);
    await waitFor(() => noLiaison.state.inbound.has(referralId), {
      timeoutMs: 15_000,
      message: "the next referral in Norway",
    });
  });

  it("a referral abroad that the partner never answers is escalated once, to the coordinator and the sender, across a liaison restart", async () => {
    const malmo = se.gateway("1280").gateway;
    const { referralId } = await malmo.openReferral(
      referral({ deadline: new Date(Date.now() + 3_000).toISOString() }) as never,
    );
    await waitFor(() => se.liaison?.liaison.state.watched.has(referralId) === true, {
      timeoutMs: 10_000,
      message: "the Swedish liaison to watch the referral's deadline",
    });
    // Norway receipts it but never decides; the Swedish liaison restarts before the deadline.
    await se.liaison?.stop();
    await se.startLiaison();
    const escalations = () =>
      [...(se.coordinator?.coordinator.escalations.values() ?? [])].filter(
        (e) => e.referralId === referralId,
      );
    await waitFor(() => escalations().length > 0 && types(referralId).includes("escalated"), {
      timeoutMs: 15_000,
      message: "the escalation at the coordinator and at Malmö",
    });
    expect(escalations()).toMatchObject([{ from: "se:liaison", holder: "no:liaison" }]);
    // Later ticks, and a restart, do not escalate it again.
    expect(await se.liaison?.liaison.escalateOverdue()).toBe(0);
    await se.liaison?.stop();
    await se.startLiaison();
    expect(await se.liaison?.liaison.escalateOverdue()).toBe(0);
    expect(escalations()).toHaveLength(1);
    expect(types(referralId).filter((t) => t === "escalated")).toHaveLength(1);
  }, 30_000);

  it("while the link is down, referrals wait and the contact point is alerted; once it is back each is delivered exactly once, in order", async () => {
    const malmo = se.gateway("1280").gateway;
    const noLiaison = no.liaison?.liaison;
    if (noLiaison === undefined) throw new Error("no Norwegian liaison");
    const scope = () => ({
      countries: Object.fromEntries(
        (["se", "no"] as const).map((cc) => [
          cc,
          { servers: fed.server(cc).url, ...(cc === "se" ? se : no).admin },
        ]),
      ),
    });
    // Earlier tests here refuse on purpose: this one must add no refusal.
    const before = await refusals(scope());
    await no.stop();
    await fed.server("no").kill();
    // The fault happened: Norway's broker is down while Malmö sends.
    expect(fed.server("no").running).toBe(false);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push(
        (await malmo.openReferral(referral({ personal: samplePersonal(i) }) as never)).referralId,
      );
    // The liaison learns the link is down from its store and forward (the first publish to the
    // partner that fails), and alerts once it has been down longer than the threshold.
    const seLiaison = se.liaison?.liaison;
    if (seLiaison === undefined) throw new Error("no Swedish liaison");
    const told = () => [...seLiaison.notifier.since(0)].map(([, n]) => n);
    await waitFor(() => told().some((n) => n.type === "link.down"), {
      timeoutMs: 20_000,
      message: "the link-down alert at the Swedish liaison",
    });
    await waitFor(() => mail.mails.some((m) => m.headers["x-stafett-type"] === "link.down"), {
      timeoutMs: 10_000,
      message: "the link-down alert by e-mail",
    });
    const alert = mail.mails.find((m) => m.headers["x-stafett-type"] === "link.down");
    expect(alert?.to).toEqual([SE_LIAISON_DUTY]);
    expect(alert?.subject).toBe(
      "[Stafett] Förbindelsen till partnerlandet NO är nere / The link to partner country NO is down",
    );
    await fed.server("no").restart();
    no = await LocalCountry.start({
      country: noCountry,
      municipalities: [],
      natsUrl: fed.server("no").url,
      nkeys: fed.seeds("no"),
      partnerTrust: { se: seCountry.trustListJws },
      log,
    });
    const restarted = no.liaison?.liaison;
    if (restarted === undefined) throw new Error("no Norwegian liaison");
    await waitFor(() => ids.every((id) => restarted.state.inbound.has(id)), {
      timeoutMs: 30_000,
      message: "every referral at the Norwegian liaison after the link returned",
    });
    const arrived = [...restarted.state.inbound.values()]
      .filter((r) => ids.includes(r.referralId))
      .map((r) => r.referralId);
    expect(arrived).toEqual(ids);
    await waitFor(() => ids.every((id) => types(id).filter((t) => t === "received").length === 1), {
      timeoutMs: 10_000,
      message: "one receipt each at Malmö",
    });
    // Nothing doubled anywhere: no new quarantine entry (no ERR_REPLAY) and no rejected.
    const after = await refusals(scope());
    expect(after.quarantined.map((q) => `${q.country}:${q.seq}`)).toEqual(
      before.quarantined.map((q) => `${q.country}:${q.seq}`),
    );
    for (const id of ids) expect(types(id).filter((t) => t === "rejected")).toEqual([]);
    // Back up: told once, as a notification (not an alert); the down alert was one e-mail.
    expect(told().map((n) => [n.type, n.data.partner])).toEqual([
      ["link.down", "no"],
      ["link.up", "no"],
    ]);
    expect(mail.mails.filter((m) => m.headers["x-stafett-type"] === "link.down")).toHaveLength(1);
  }, 60_000);
});
