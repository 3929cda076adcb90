/**
 * Rotating Göteborg's keys in the middle of the flow, as docs/operations.md ("Rotating an
 * organisation's keys") says: the new key files are installed first (the gateway holds both),
 * then the coordinator publishes a trust list naming the new keys, later one revoking the old.
 *
 * What was sealed to the old encryption key still opens; what is sent after the new list is
 * sealed to the new key; Göteborg signs with its new signing key once the list names it (its
 * acceptances still verify after the old key is revoked); after the revocation and a restart,
 * nothing is lost. A gateway started without the old key's file cannot open what was sealed to
 * it: the procedure keeps that file.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, samplePersonal, waitFor, waitForValue } from "@stafett/devkit";
import { start as startGateway, type RunningGateway } from "@stafett/gateway";
import {
  buildTrustList,
  Bus,
  createLogger,
  decodeEvent,
  decodeSignedEvent,
  fromBase64,
  generateEncryptionKey,
  generateSigningKey,
  importEncryptionKey,
  importSigningKey,
  Keyring,
  publishTrustList,
  recipientKids,
  signTrustList,
  type KeyHandle,
  type KeyPairJwk,
  type TrustKey,
  type TrustList,
} from "@stafett/shared";
import { Api } from "./api.js";

const log = createLogger({ service: "rotation", level: process.env.LOG_LEVEL ?? "silent" });
const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
let se: LocalCountry;
let stockholm: Api;

beforeAll(async () => {
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log });
  stockholm = await Api.for(se, STOCKHOLM, se.gateway("0180").url);
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

/** Restarts Göteborg's gateway on the same state directory with these keys. */
async function restartGoteborg(signing: KeyHandle[], encryption: KeyHandle[]): Promise<Api> {
  await se.gateways.get(GOTEBORG)?.stop();
  se.gateways.delete(GOTEBORG);
  const running: RunningGateway = await startGateway(
    { ...se.runtime(GOTEBORG), identity: new Keyring(GOTEBORG, signing, encryption) },
    log.child({ org: GOTEBORG }),
  );
  se.gateways.set(GOTEBORG, running);
  return Api.for(se, GOTEBORG, running.url);
}

/** A new trust list: Göteborg's keys replaced by `keys`, the rest as in version 1. */
async function publishVersion(version: number, keys: TrustKey[]): Promise<void> {
  const v1 = se.country.trustList;
  const list: TrustList = buildTrustList({
    country: "se",
    version,
    policy: v1.policy,
    organisations: v1.organisations.map((o) => (o.id === GOTEBORG ? { ...o, keys } : o)),
  });
  const bus = await Bus.connect(
    { servers: [se.natsUrl], name: "coordinator-desk", connection: se.admin },
    log,
  );
  try {
    await publishTrustList(bus.nc, "se", await signTrustList(list, se.country.anchor));
  } finally {
    await bus.close();
  }
  // Every running service has it in force.
  await waitFor(
    () =>
      [...se.gateways.values()].every((g) => g.gateway.trust.version === version) &&
      [...se.hubs.values()].every((h) => h.hub.trust.version === version),
    { timeoutMs: 10_000, message: `trust list version ${version} in force everywhere` },
  );
}

function trustKey(use: "sig" | "enc", pair: KeyPairJwk, notBefore: Date): TrustKey {
  return {
    use,
    kid: pair.publicJwk.kid,
    jwk: pair.publicJwk,
    notBefore: notBefore.toISOString(),
    notAfter: new Date(notBefore.getTime() + 365 * 86_400_000).toISOString(),
  };
}

async function send(): Promise<string> {
  const res = await stockholm.post<{ referralId: string }>("/v1/referrals", {
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    destination: { country: "se", municipality: "1480" },
    personal: samplePersonal(),
  });
  expect(res.status).toBe(202);
  return res.body.referralId;
}

/** Göteborg's inbox item, opened (waits for it to arrive). */
function inboxItem(api: Api, id: string): Promise<Record<string, unknown>> {
  return waitForValue(
    async () => {
      const res = await api.get<Record<string, unknown>>(`/v1/inbox/${id}`);
      return res.status === 200 ? res.body : undefined;
    },
    { timeoutMs: 10_000, message: `inbox item ${id} at Göteborg` },
  );
}

/** The key ids Göteborg's copy of a referral's personal part is sealed to, from its journal. */
function sealedTo(id: string): string[] {
  const running = se.gateways.get(GOTEBORG);
  const item = running?.gateway.inboxItem(id);
  if (running === undefined || item === undefined) throw new Error(`no inbox item ${id}`);
  const record = running.gateway.party.stored(item.stored);
  if (record.k !== "inbox") throw new Error("not an inbox record");
  const forwarded = decodeEvent(decodeSignedEvent(fromBase64(record.bytes)).event);
  const original = decodeEvent(
    decodeSignedEvent(fromBase64(forwarded.forwarded?.original ?? "")).event,
  );
  return recipientKids(forwarded.forwarded?.personal ?? original.opened?.personal ?? "");
}

async function readyz(url: string): Promise<number> {
  return (await fetch(`${url}/readyz`)).status;
}

describe("rotating Göteborg's keys mid-flow", () => {
  it("loses nothing: old parts open with the old key, new ones are sealed to the new", async () => {
    const s1 = se.country.identity(GOTEBORG).signing;
    const e1 = se.country.identity(GOTEBORG).encryption;
    const [sig2, enc2] = await Promise.all([generateSigningKey(), generateEncryptionKey()]);
    const [s2, e2] = await Promise.all([
      importSigningKey(sig2.privateJwk),
      importEncryptionKey(enc2.privateJwk),
    ]);
    const before = await send();
    let goteborg = await Api.for(se, GOTEBORG, se.gateway("1480").url);
    await inboxItem(goteborg, before);
    expect(sealedTo(before)).toContain(e1.kid);

    // 1. The new key files are installed beside the old ones; the list does not name them yet.
    goteborg = await restartGoteborg([s1, s2], [e1, e2]);
    expect(await readyz(se.gateway("1480").url)).toBe(200);

    // 2. The coordinator publishes a list naming the new keys (a later notBefore: the newest).
    const v1Keys = se.country.trustList.organisations.find((o) => o.id === GOTEBORG)?.keys ?? [];
    const now = new Date(Date.now() - 1_000);
    await publishVersion(2, [...v1Keys, trustKey("sig", sig2, now), trustKey("enc", enc2, now)]);
    expect(se.gateway("1480").gateway.party.identity.signing.kid).toBe(s2.kid);
    const during = await send();
    await inboxItem(goteborg, during);
    expect(sealedTo(during)).toContain(e2.kid);
    expect(sealedTo(during)).not.toContain(e1.kid);
    for (const id of [before, during])
      expect((await inboxItem(goteborg, id)).personal).toEqual(samplePersonal());
    // Signed with the new key, the acceptance verifies at the hub and reaches Stockholm.
    expect((await goteborg.post(`/v1/inbox/${during}/accept`)).status).toBe(200);

    // 3. The old keys are retired: revoked in the next list.
    const revokedAt = new Date().toISOString();
    await publishVersion(3, [
      ...v1Keys.map((k) => ({ ...k, revokedAt })),
      trustKey("sig", sig2, now),
      trustKey("enc", enc2, now),
    ]);
    const after = await send();
    await inboxItem(goteborg, after);
    expect(sealedTo(after)).toEqual(expect.arrayContaining([e2.kid]));
    expect(sealedTo(after)).not.toContain(e1.kid);
    expect(await readyz(se.gateway("1480").url)).toBe(200);

    // 4. Restarted with the old key's file still configured: every part opens, every one can be
    // accepted (signed with the new key; the revoked old one could not sign any more).
    goteborg = await restartGoteborg([s1, s2], [e1, e2]);
    for (const id of [before, during, after])
      expect((await inboxItem(goteborg, id)).personal).toEqual(samplePersonal());
    for (const id of [before, after])
      expect((await goteborg.post(`/v1/inbox/${id}/accept`)).status).toBe(200);
    for (const id of [before, during, after])
      await waitFor(
        async () =>
          (await stockholm.get<{ status: string }>(`/v1/referrals/${id}`)).body.status === "closed",
        { timeoutMs: 10_000, message: `${id} accepted by Göteborg and closed by Stockholm` },
      );
  });

  it("without the old key's file, what was sealed to it cannot be opened (so the file stays)", async () => {
    const current = se.gateway("1480").gateway.party.identity as Keyring;
    const [s1, s2] = current.signingKeys;
    const e2 = current.decryption[1];
    if (s1 === undefined || s2 === undefined || e2 === undefined) throw new Error("keys");
    const goteborg = await restartGoteborg([s2], [e2]);
    const all = (await goteborg.get<{ referralId: string }[]>("/v1/inbox")).body;
    const sealedToOld = all.filter((i) => sealedTo(i.referralId).every((kid) => kid !== e2.kid));
    expect(sealedToOld).toHaveLength(1);
    const res = await goteborg.get<{ code: string }>(`/v1/inbox/${sealedToOld[0]?.referralId}`);
    expect(res.status).toBe(500);
    expect(res.body.code).toBe("ERR_NOT_RECIPIENT");
    // Put back, it opens again.
    const restored = await restartGoteborg([s1, s2], current.decryption.slice());
    expect(
      (await restored.get<{ personal: unknown }>(`/v1/inbox/${sealedToOld[0]?.referralId}`)).body
        .personal,
    ).toEqual(samplePersonal());
  });
});
