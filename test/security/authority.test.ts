/**
 * Only the right party moves the baton, against running services: each attack a participant
 * with valid credentials could try (a compromised municipality, a misbehaving partner), and
 * what a revocation must not do (strand a child). The rules themselves are decision tables
 * (services/*\/src/decide.test.ts); these prove them end to end.
 */
import { randomUUID, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  createCountry,
  LocalCountry,
  samplePersonal,
  spawnService,
  waitFor,
  waitForValue,
  type Country,
} from "@stafett/devkit";
import {
  buildTrustList,
  countersign,
  createLogger,
  dataschemaFor,
  decodeEvent,
  decodeSignedEvent,
  encodeEvent,
  encodeSignedEvent,
  eventHeaders,
  generateSigningKey,
  issue,
  keyObjectOf,
  listQuarantine,
  publishTrustList,
  seal,
  signDetached,
  signTrustList,
  subjectFor,
  type EventJson,
  type IssuedEvent,
  type TrustList,
} from "@stafett/shared";
import { stafett } from "../support/cli.js";
import { Api, type TimelineView } from "../e2e/api.js";

/** Every log line of every service, to search for what must never be logged. */
const logLines: string[] = [];
const log = createLogger(
  { service: "authority", level: "debug" },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      logLines.push(chunk.toString());
      done();
    },
  }),
);

const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
const BORAS = "se:municipality:1490";
const OREBRO = "se:municipality:1880";
/** A value no synthetic child has: a case system that mapped a child's name into a key. */
const LEAK = "Zyxwvut Qwertyson";

let se: LocalCountry;
let seCountry: Country;
let noCountry: Country;
let nc: NatsConnection;
let jsm: JetStreamManager;
const api = new Map<string, Api>();

beforeAll(async () => {
  const [seAnchor, noAnchor] = await Promise.all([generateSigningKey(), generateSigningKey()]);
  noCountry = await createCountry({
    code: "no",
    municipalities: [],
    regions: [],
    anchor: noAnchor,
    partnerAnchors: [{ country: "se", anchors: [seAnchor.publicJwk] }],
  });
  seCountry = await createCountry({
    code: "se",
    municipalities: ["0180", "1480", "1490", "1880"],
    anchor: seAnchor,
    partnerAnchors: [{ country: "no", anchors: [noAnchor.publicJwk] }],
  });
  se = await LocalCountry.start({
    country: seCountry,
    municipalities: [],
    partnerTrust: { no: noCountry.trustListJws },
    log,
    tickMs: 200,
  });
  for (const id of [STOCKHOLM, GOTEBORG, BORAS, OREBRO])
    api.set(id, await Api.for(se, id, se.gateway(id.slice(-4)).url));
  nc = await connect({ servers: se.natsUrl, ...se.admin });
  jsm = await jetstreamManager(nc);
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await se?.stop();
});

const client = (id: string): Api => {
  const a = api.get(id);
  if (a === undefined) throw new Error(`no API for ${id}`);
  return a;
};

function referral(destination: Record<string, string>, overrides: Record<string, unknown> = {}) {
  return {
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    destination: { country: "se", ...destination },
    personal: samplePersonal(2),
    ...overrides,
  };
}

async function open(from: string, destination: Record<string, string>, extra = {}) {
  const res = await client(from).post<{ referralId: string; eventId: string }>(
    "/v1/referrals",
    referral(destination, extra),
  );
  expect(res.status).toBe(202);
  return res.body.referralId;
}

const inboxOf = (code: string, id: string) => se.gateway(code).gateway.inboxItem(id);

async function inInbox(code: string, id: string): Promise<void> {
  await waitFor(() => inboxOf(code, id) !== undefined, {
    timeoutMs: 15_000,
    message: `referral in ${code}'s inbox`,
  });
}

async function timeline(from: string, id: string): Promise<TimelineView> {
  const res = await client(from).get<TimelineView>(`/v1/referrals/${id}`);
  return res.body;
}

async function quarantinedAs(eventId: string): Promise<{ code: string; reason: string }> {
  return waitForValue(
    async () => (await listQuarantine(jsm, "se")).find((q) => q.eventId === eventId),
    { timeoutMs: 15_000, message: `${eventId} in quarantine` },
  );
}

/** Publishes an event straight onto the bus, as a participant's own client could. */
async function publish(e: IssuedEvent | { subject: string; bytes: Uint8Array; id: string }) {
  await jetstream(nc).publish(e.subject, e.bytes, { msgID: e.id });
}

describe("a partner acts only on referrals that crossed with it", () => {
  it("a partner's acceptance of a referral pending at a Swedish municipality is refused and changes nothing", async () => {
    const id = await open(STOCKHOLM, { municipality: "1490" });
    await inInbox("1490", id);
    // Norway's contact point, signing as its own client would.
    const bytes = await forge(
      {
        type: "accepted",
        addressee: STOCKHOLM,
        referralId: id,
        accepted: { ofEventId: inboxOf("1490", id)?.openedId ?? "" },
      },
      noCountry,
      "no:liaison",
    );
    const countersigned = await countersign(bytes, noCountry.identity("no:liaison").signing);
    const eventId = idOf(bytes);
    await publish({ subject: "stafett.se.in.no.accepted", bytes: countersigned, id: eventId });
    expect(await quarantinedAs(eventId)).toMatchObject({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_crossed",
    });
    const t = await timeline(STOCKHOLM, id);
    expect(t.timeline.map((e) => e.type)).not.toContain("accepted");
    expect(t.status).not.toBe("closed");
    expect(inboxOf("1490", id)?.status).toBe("pending");
  });
});

describe("referral ids are the origin's, and bound to it", () => {
  it("a request that names its own referral id is refused 400, and nothing is sent", async () => {
    const before = se.gateway("0180").gateway.state.sent.size;
    const res = await client(STOCKHOLM).post(
      "/v1/referrals",
      referral({ municipality: "1480" }, { referralId: "11111111-2222-4333-8444-555555555555" }),
    );
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "ERR_SCHEMA_INVALID" });
    expect(se.gateway("0180").gateway.state.sent.size).toBe(before);
  });

  it("the same Idempotency-Key at two municipalities gives two unrelated random ids", async () => {
    const key = "case-2026-00042";
    const a = await client(STOCKHOLM).post<{ referralId: string }>(
      "/v1/referrals",
      referral({ municipality: "1880" }),
      { "idempotency-key": key },
    );
    const b = await client(GOTEBORG).post<{ referralId: string }>(
      "/v1/referrals",
      referral({ municipality: "1880" }),
      { "idempotency-key": key },
    );
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(a.body.referralId).not.toBe(b.body.referralId);
    // Version 4: random, not derived from the key (a name-based id would be version 5).
    expect(a.body.referralId[14]).toBe("4");
    expect(b.body.referralId[14]).toBe("4");
  });

  it("a reused Idempotency-Key with a different body answers 422 and opens no second referral", async () => {
    const key = "case-2026-00043";
    const first = await client(STOCKHOLM).post<{ referralId: string }>(
      "/v1/referrals",
      referral({ municipality: "1880" }),
      { "idempotency-key": key },
    );
    expect(first.status).toBe(202);
    const before = se.gateway("0180").gateway.state.sent.size;
    const second = await client(STOCKHOLM).post(
      "/v1/referrals",
      referral({ municipality: "1880" }, { personal: samplePersonal(7) }),
      { "idempotency-key": key },
    );
    expect(second.status).toBe(422);
    expect(second.body).toMatchObject({
      code: "ERR_IDEMPOTENCY_MISMATCH",
      reason: "different_body",
    });
    expect(se.gateway("0180").gateway.state.sent.size).toBe(before);
    const again = await client(STOCKHOLM).post<{ referralId: string; replayed: boolean }>(
      "/v1/referrals",
      referral({ municipality: "1880" }),
      { "idempotency-key": key },
    );
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ referralId: first.body.referralId, replayed: true });
  });

  it("a former holder cannot take a referral over by opening one under its id", async () => {
    const id = await open(STOCKHOLM, { municipality: "1490" });
    await inInbox("1490", id);
    const declined = await client(BORAS).post(`/v1/inbox/${id}/decline`, {
      reason: "DECLINE_REASON_NOT_RESIDENT",
      suggested: { country: "se", municipality: "1880" },
    });
    expect(declined.status).toBe(200);
    await inInbox("1880", id);
    // Borås opens its own referral under the id it now knows, to the Väst hub.
    const takeover = await issue(
      {
        type: "opened",
        addressee: "se:hub:vast",
        referralId: id,
        body: {
          urgency: "URGENCY_NORMAL",
          reason: "REASON_CATEGORY_MOVED",
          destination: { country: "se", municipality: "1480" },
          deadline: new Date(Date.now() + 3_600_000).toISOString(),
        },
        personal: samplePersonal(1),
        sealTo: ["se:hub:vast", GOTEBORG],
      },
      { identity: seCountry.identity(BORAS), trust: seCountry.trust },
    );
    await publish(takeover);
    expect(await quarantinedAs(takeover.id)).toMatchObject({
      code: "ERR_REPLAY",
      reason: "duplicate_referral",
    });
    const held = se.hub("vast").hub.state.referrals.get(id);
    expect(held?.origin).toBe(STOCKHOLM);
    // The real origin is still the origin: its withdrawal is taken, not refused not_origin.
    const withdrawn = await client(STOCKHOLM).post(`/v1/referrals/${id}/withdraw`, {
      reason: "WITHDRAW_REASON_SENT_IN_ERROR",
    });
    expect(withdrawn.status).toBe(200);
    await waitFor(() => se.hub("vast").hub.state.referrals.get(id)?.status === "withdrawn", {
      timeoutMs: 10_000,
      message: "the Väst hub to take the origin's withdrawal",
    });
  });

  it("another organisation's 'rejected' with free text leaves a pending referral as it was", async () => {
    const id = await open(STOCKHOLM, { municipality: "1490" });
    await inInbox("1490", id);
    const statusBefore = await waitForValue(
      async () => {
        const t = await timeline(STOCKHOLM, id);
        return t.status === "forwarded" ? t.status : undefined;
      },
      { timeoutMs: 10_000, message: "Stockholm to see its referral forwarded" },
    );
    const forged = await issue(
      {
        type: "rejected",
        addressee: STOCKHOLM,
        referralId: id,
        body: { code: "ERR_OUTBOUND_POLICY", reason: "child_found_safe_case_closed" },
      },
      { identity: seCountry.identity("se:hub:stockholm"), trust: seCountry.trust },
    );
    await publish(forged);
    expect(await quarantinedAs(forged.id)).toMatchObject({
      code: "ERR_NOT_AUTHORISED",
      reason: "not_on_path",
    });
    const t = await timeline(STOCKHOLM, id);
    expect(t.status).toBe(statusBefore);
    expect(t.timeline.map((e) => e.type)).not.toContain("rejected");
  });

  it("a referral routed back to its origin lands in the origin's inbox", async () => {
    const id = await open(STOCKHOLM, { municipality: "1480" });
    await inInbox("1480", id);
    const declined = await client(GOTEBORG).post(`/v1/inbox/${id}/decline`, {
      reason: "DECLINE_REASON_WRONG_MUNICIPALITY",
      suggested: { country: "se", municipality: "0180" },
    });
    expect(declined.status).toBe(200);
    await inInbox("0180", id);
    expect(inboxOf("0180", id)).toMatchObject({ origin: STOCKHOLM, status: "pending" });
  });
});

describe("errors never carry a caller's key", () => {
  it("an unexpected key in the personal part appears in no answer, log line, quarantine header or event", async () => {
    const personal = { ...samplePersonal(3), [LEAK]: "x" };
    // 1. The gateway's API.
    const res = await client(STOCKHOLM).post("/v1/referrals", {
      ...referral({ municipality: "1480" }),
      personal,
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).not.toContain("Zyxwvut");
    // 2. The hub: a referral whose sealed personal part has the key (a buggy case system's
    // own client, bypassing the gateway's checks).
    const sent = await forgeOpened(STOCKHOLM, personal);
    // The signed `rejected` the hub sends back, as it crosses the bus.
    const sub = nc.subscribe(
      subjectFor({ type: "rejected", source: "se:hub:vast", addressee: STOCKHOLM }),
      { max: 1 },
    );
    const rejectedOnTheWire = (async () => {
      for await (const m of sub) return m.data;
      return new Uint8Array();
    })();
    await publish(sent);
    const q = await quarantinedAs(sent.id);
    expect(q).toMatchObject({ code: "ERR_PERSONAL_INVALID" });
    expect(JSON.stringify(q)).not.toContain("Zyxwvut");
    expect(Buffer.from(await rejectedOnTheWire).toString("latin1")).not.toContain("Zyxwvut");
    // 3. The CLI.
    const dir = mkdtempSync(join(tmpdir(), "stafett-cli-"));
    try {
      const keys = seCountry.keys.get(STOCKHOLM);
      writeFileSync(join(dir, "trust.jws"), seCountry.trustListJws);
      writeFileSync(join(dir, "anchor.pub.json"), JSON.stringify(seCountry.anchorPublicJwk));
      writeFileSync(join(dir, "key.json"), JSON.stringify(keys?.signing.privateJwk), {
        mode: 0o600,
      });
      writeFileSync(
        join(dir, "draft.json"),
        JSON.stringify({
          type: "opened",
          addressee: "se:hub:vast",
          referralId: "6f1c0d1e-8a8b-4b7e-9c55-0f7d0e2d9a11",
          opened: {
            urgency: "URGENCY_HIGH",
            reason: "REASON_CATEGORY_MISSING",
            destination: { country: "se", municipality: "1480" },
            deadline: new Date(Date.now() + 3_600_000).toISOString(),
            personal,
          },
        }),
      );
      const { code, text } = await stafett([
        "event",
        "seal",
        "--in",
        join(dir, "draft.json"),
        "--key",
        join(dir, "key.json"),
        "--org",
        STOCKHOLM,
        "--trust",
        join(dir, "trust.jws"),
        "--anchor",
        join(dir, "anchor.pub.json"),
        "--out",
        join(dir, "out.bin"),
      ]);
      expect(code).toBe(1);
      expect(text).toMatch(/^rejected: ERR_PERSONAL_INVALID \(additionalProperties\)/);
      expect(text).not.toContain("Zyxwvut");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // 4. Every service's log.
    expect(logLines.join("")).not.toContain("Zyxwvut");
  });
});

describe("one form of signature", () => {
  it("a running hub refuses an event signed with a b64:false header (no crit)", async () => {
    const event = baseEvent("opened", STOCKHOLM, "se:hub:vast");
    const bytes = encodeEvent(event);
    const header = Buffer.from(
      JSON.stringify({
        alg: "EdDSA",
        kid: seCountry.identity(STOCKHOLM).signing.kid,
        typ: "stafett-event+jws",
        b64: false,
      }),
    ).toString("base64url");
    const sig = sign(
      null,
      Buffer.concat([Buffer.from(`${header}.`), Buffer.from(bytes)]),
      keyObjectOf(seCountry.identity(STOCKHOLM).signing),
    ).toString("base64url");
    const signed = encodeSignedEvent({ event: bytes, signatures: [`${header}..${sig}`] });
    await publish({ subject: "stafett.se.vast.hub.opened", bytes: signed, id: event.id });
    await waitForValue(
      async () =>
        (await listQuarantine(jsm, "se")).find(
          (q) => q.code === "ERR_SIGNATURE_INVALID" && q.subject === "stafett.se.vast.hub.opened",
        ),
      { timeoutMs: 10_000, message: "the b64:false event in quarantine" },
    );
    expect(se.hub("vast").hub.state.referrals.has(event.referralId)).toBe(false);
  });
});

describe("a partner's trust list cannot roll back across a restart", () => {
  it("the liaison refuses an older Norwegian list after it held a newer one", async () => {
    const noV2 = await signTrustList({ ...noCountry.trustList, version: 2 }, noCountry.anchor);
    await publishTrustList(nc, "no", noV2);
    const liaisonTrust = () => se.liaison?.liaison.trust;
    await waitFor(() => liaisonTrust()?.lists.find((l) => l.country === "no")?.version === 2, {
      timeoutMs: 10_000,
      message: "the liaison to take Norway's v2",
    });
    await se.liaison?.stop();
    await publishTrustList(nc, "no", noCountry.trustListJws); // v1 again: a rollback
    await se.startLiaison();
    expect(liaisonTrust()?.lists.find((l) => l.country === "no")).toBeUndefined();
    await publishTrustList(nc, "no", noV2);
    await waitFor(() => liaisonTrust()?.lists.find((l) => l.country === "no")?.version === 2, {
      timeoutMs: 10_000,
      message: "the liaison to take Norway's v2 again",
    });
  });
});

describe("a partner's anchor rotated out of the own list", () => {
  it("the partner's list signed with the old anchor stops counting, without a restart", async () => {
    const liaisonTrust = () => se.liaison?.liaison.trust;
    const held = () => liaisonTrust()?.lists.find((l) => l.country === "no");
    await waitFor(() => held() !== undefined, {
      timeoutMs: 10_000,
      message: "the liaison to hold Norway's list",
    });
    const own = liaisonTrust()?.lists.find((l) => l.country === "se");
    if (own === undefined) throw new Error("no own list");
    const withPartnerAnchor = async (version: number, anchors: typeof noAnchors) =>
      signTrustList(
        buildTrustList({
          country: "se",
          version,
          policy: own.policy,
          partners: [{ country: "no", anchors }],
          organisations: own.organisations,
        }),
        seCountry.anchor,
      );
    const noAnchors = own.partners?.find((p) => p.country === "no")?.anchors ?? [];
    // Norway's anchor is replaced (a compromise): its list, signed by the old one, is dropped.
    const other = await generateSigningKey();
    await publishTrustList(nc, "se", await withPartnerAnchor(own.version + 1, [other.publicJwk]));
    await waitFor(() => held() === undefined, {
      timeoutMs: 10_000,
      message: "the liaison to drop Norway's list signed with the old anchor",
    });
    // The old anchor given back: Norway's list verifies and counts again.
    await publishTrustList(nc, "se", await withPartnerAnchor(own.version + 2, noAnchors));
    await waitFor(() => held() !== undefined, {
      timeoutMs: 15_000,
      message: "Norway's list to count again",
    });
  });
});

describe("a service that cannot start says why in one coded line", () => {
  it("a hub without its configuration exits 1 with no stack trace", async () => {
    const hub = spawnService("hub", {});
    let stderr = "";
    hub.child.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((r) => hub.child.once("exit", (c) => r(c)));
    expect(code).toBe(1);
    expect(stderr.trim()).toMatch(/^stafett-hub: rejected: ERR_CONFIG_INVALID \(/);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at /);
  });
});

describe("revoking a municipality's key strands none of its referrals", () => {
  it("every referral it opened is escalated or completed, and it signs nothing more", async () => {
    // At every stage when the key is revoked: pending at a municipality (A), about to be
    // declined and re-routed to another region (B), held for triage with a near deadline (C).
    const a = await open(STOCKHOLM, { municipality: "1480" });
    const b = await open(STOCKHOLM, { municipality: "1490" });
    const c = await open(
      STOCKHOLM,
      { region: "vast" },
      {
        deadline: new Date(Date.now() + 4_000).toISOString(),
      },
    );
    await inInbox("1480", a);
    await inInbox("1490", b);
    await waitFor(() => se.hub("vast").hub.state.referrals.get(c)?.status === "triage", {
      timeoutMs: 10_000,
      message: "C in triage",
    });
    await revoke(STOCKHOLM);

    // A: its holder accepts.
    expect((await client(GOTEBORG).post(`/v1/inbox/${a}/accept`)).status).toBe(200);
    // B: declined and re-routed; the next hub takes the original opened (signed before the
    // revocation) and Örebro accepts.
    await client(BORAS).post(`/v1/inbox/${b}/decline`, {
      reason: "DECLINE_REASON_NOT_RESIDENT",
      suggested: { country: "se", municipality: "1880" },
    });
    await inInbox("1880", b);
    expect((await client(OREBRO).post(`/v1/inbox/${b}/accept`)).status).toBe(200);
    await waitFor(
      () =>
        se.hub("vast").hub.state.referrals.get(a)?.status === "accepted" &&
        se.hub("bergslagen").hub.state.referrals.get(b)?.status === "accepted",
      { timeoutMs: 15_000, message: "A and B accepted at their hubs" },
    );
    // C: nobody acts; its deadline escalates it to the national coordinator.
    await waitFor(
      () =>
        [...(se.coordinator?.coordinator.escalations.values() ?? [])].some(
          (e) => e.referralId === c,
        ),
      { timeoutMs: 15_000, message: "C escalated" },
    );
    // And Stockholm's gateway signs nothing more.
    const refused = await client(STOCKHOLM).post(
      "/v1/referrals",
      referral({ municipality: "1480" }),
    );
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ code: "ERR_KEY_REVOKED" });
  });
});

/** Revokes an organisation's signing key in a new version of Sweden's list, in force everywhere. */
async function revoke(id: string): Promise<void> {
  const kid = seCountry.identity(id).signing.kid;
  const list = seCountry.trustList;
  const current = se.gateway("1480").gateway.trust.version;
  const revoked: TrustList = buildTrustList({
    country: "se",
    version: current + 1,
    policy: list.policy,
    ...(list.partners === undefined ? {} : { partners: list.partners }),
    organisations: list.organisations.map((o) => ({
      ...o,
      keys: o.keys.map((k) => (k.kid === kid ? { ...k, revokedAt: new Date().toISOString() } : k)),
    })),
  });
  await publishTrustList(nc, "se", await signTrustList(revoked, seCountry.anchor));
  await waitFor(
    () =>
      [...se.gateways.values(), ...se.hubs.values()].every(
        (s) => ("gateway" in s ? s.gateway.trust : s.hub.trust).version === current + 1,
      ),
    { timeoutMs: 10_000, message: "every service to hold the revocation" },
  );
}

function baseEvent(type: EventJson["type"], source: string, addressee: string): EventJson {
  return {
    id: randomUUID(),
    type,
    source,
    addressee,
    time: new Date().toISOString(),
    dataschema: dataschemaFor(type),
    referralId: randomUUID(),
    ...(type === "opened"
      ? {
          opened: {
            urgency: "URGENCY_HIGH",
            reason: "REASON_CATEGORY_MISSING",
            destination: { country: "se", municipality: "1480" },
            deadline: new Date(Date.now() + 3_600_000).toISOString(),
            personal: "{}",
          },
        }
      : {}),
  } as EventJson;
}

/** Signs event JSON as a participant's own client would, skipping issue()'s checks. */
async function forge(
  partial: Partial<EventJson>,
  country: Country,
  signer: string,
): Promise<Uint8Array> {
  const event = { ...baseEvent(partial.type ?? "accepted", signer, ""), ...partial } as EventJson;
  const bytes = encodeEvent(event);
  return encodeSignedEvent({
    event: bytes,
    signatures: [await signDetached(bytes, country.identity(signer).signing)],
  });
}

/** An opened to the Väst hub whose sealed personal part is `personal`, unchecked. */
async function forgeOpened(from: string, personal: unknown) {
  const event = baseEvent("opened", from, "se:hub:vast");
  const keys = await seCountry.trust.encryptionKeys(["se:hub:vast", GOTEBORG], new Date());
  if (event.opened !== undefined)
    event.opened.personal = await seal(personal, keys, event.referralId);
  const bytes = encodeEvent(event);
  const signed = encodeSignedEvent({
    event: bytes,
    signatures: [await signDetached(bytes, seCountry.identity(from).signing)],
  });
  return {
    id: event.id,
    referralId: event.referralId,
    subject: subjectFor({ type: "opened", source: from, addressee: "se:hub:vast" }),
    bytes: signed,
    headers: eventHeaders(event),
  };
}

function idOf(signedBytes: Uint8Array): string {
  return decodeEvent(decodeSignedEvent(signedBytes).event).id;
}
