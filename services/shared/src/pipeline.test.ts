import { beforeAll, describe, expect, it } from "vitest";
import {
  createCountry,
  type Country,
  sampleOpened,
  samplePersonal,
} from "@stafett/devkit/fixtures";
import { decodeEvent, decodeSignedEvent, encodeEvent, encodeSignedEvent } from "./codec.js";
import { generateSigningKey, importSigningKey, type KeyHandle } from "./keys.js";
import { signDetached } from "./jws.js";
import { countersign, issue, receive, type IssueInput, type ReceiveResult } from "./pipeline.js";
import { TrustStore, type TrustList } from "./trust.js";
import { dataschemaFor, type EventJson } from "./types.js";
import { toBase64 } from "./base64url.js";
import { randomUUID } from "node:crypto";
import type { ErrorCode } from "./errors.js";

const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
const MALMO = "se:municipality:1280";
const HUB_VAST = "se:hub:vast";
const HUB_STHLM = "se:hub:stockholm";

let se: Country;

beforeAll(async () => {
  se = await createCountry({ code: "se", municipalities: ["0180", "1480", "1280"] });
});

const openedInput = (overrides: Partial<IssueInput> = {}): IssueInput => sampleOpened(overrides);

async function openedBytes(overrides: Partial<IssueInput> = {}): Promise<Uint8Array> {
  return (
    await issue(openedInput(overrides), { identity: se.identity(STOCKHOLM), trust: se.trust })
  ).bytes;
}

function expectRejected(result: ReceiveResult, code: ErrorCode): void {
  if (result.ok) throw new Error(`expected ${code}, but the event was accepted`);
  expect(result.error.code).toBe(code);
}

/** Signs arbitrary event JSON the way a forger (or a buggy sender) would, skipping issue()'s checks. */
async function forge(event: EventJson, signer: KeyHandle): Promise<Uint8Array> {
  const bytes = encodeEvent(event);
  return encodeSignedEvent({ event: bytes, signatures: [await signDetached(bytes, signer)] });
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
  };
}

describe("issue and receive", () => {
  it("round-trips a referral to the hub, which can read the personal part", async () => {
    const input = openedInput();
    const issued = await issue(input, { identity: se.identity(STOCKHOLM), trust: se.trust });
    expect(issued.subject).toBe("stafett.se.vast.hub.opened");
    expect(issued.headers["Nats-Msg-Id"]).toBe(issued.id);
    expect(issued.headers["ce-source"]).toBe(STOCKHOLM);
    const result = await receive(issued.bytes, {
      identity: se.identity(HUB_VAST),
      trust: se.trust,
      subject: issued.subject,
    });
    if (!result.ok) throw result.error;
    expect(result.event.id).toBe(issued.id);
    expect(result.issuer.id).toBe(STOCKHOLM);
    expect(result.personal).toEqual(input.personal);
    expect(result.digest).toMatch(/^sha-256:[A-Za-z0-9_-]{43}$/);
  });

  it("never puts the personal part in clear on the wire", async () => {
    const bytes = await openedBytes();
    const text = Buffer.from(bytes).toString("latin1");
    expect(text).not.toContain("Noor");
    expect(text).not.toContain("Exempelberg");
  });

  it("a forwarded referral verifies both signatures and opens for the destination", async () => {
    const original = await openedBytes();
    const hub = await receive(original, { identity: se.identity(HUB_VAST), trust: se.trust });
    if (!hub.ok) throw hub.error;
    const fwd = await issue(
      {
        type: "forwarded",
        addressee: GOTEBORG,
        referralId: hub.event.referralId,
        body: { original: toBase64(original) },
      },
      { identity: se.identity(HUB_VAST), trust: se.trust },
    );
    expect(fwd.subject).toBe("stafett.se.vast.1480.forwarded");
    const dest = await receive(fwd.bytes, {
      identity: se.identity(GOTEBORG),
      trust: se.trust,
      subject: fwd.subject,
    });
    if (!dest.ok) throw dest.error;
    expect(dest.original?.issuer.id).toBe(STOCKHOLM);
    expect(dest.personal).toEqual(hub.personal);
  });

  it("refuses a forwarded referral to a party the personal part is not sealed to", async () => {
    const original = await openedBytes({ sealTo: [HUB_VAST] });
    const fwd = await issue(
      {
        type: "forwarded",
        addressee: GOTEBORG,
        referralId: decodeReferralId(original),
        body: { original: toBase64(original) },
      },
      { identity: se.identity(HUB_VAST), trust: se.trust },
    );
    expectRejected(
      await receive(fwd.bytes, { identity: se.identity(GOTEBORG), trust: se.trust }),
      "ERR_NOT_RECIPIENT",
    );
  });

  it("refuses to issue a personal part that violates its schema, naming the field", async () => {
    const personal = { ...samplePersonal(), legalBasis: undefined, extra: "x" };
    await expect(
      issue(openedInput({ personal }), { identity: se.identity(STOCKHOLM), trust: se.trust }),
    ).rejects.toMatchObject({
      code: "ERR_PERSONAL_INVALID",
    });
  });

  it("refuses to issue what the policy forbids", async () => {
    await expect(
      issue(
        {
          type: "forwarded",
          addressee: GOTEBORG,
          referralId: randomUUID(),
          body: { original: "AA==" },
        },
        { identity: se.identity(STOCKHOLM), trust: se.trust },
      ),
    ).rejects.toMatchObject({ code: "ERR_NOT_AUTHORISED" });
  });
});

describe("receive refuses, with a code", () => {
  const reader = () => ({ identity: se.identity(HUB_VAST), trust: se.trust });

  it("tampered event bytes", async () => {
    const signed = decodeSignedEvent(await openedBytes());
    const event = Uint8Array.from(signed.event);
    event[20] = (event[20] ?? 0) ^ 0x01;
    const result = await receive(
      encodeSignedEvent({ event, signatures: signed.signatures }),
      reader(),
    );
    expectRejected(result, "ERR_SIGNATURE_INVALID");
  });

  it("a tampered signature", async () => {
    const signed = decodeSignedEvent(await openedBytes());
    const sig = signed.signatures[0] ?? "";
    const last = sig.at(-2) === "A" ? "B" : "A";
    const tampered = `${sig.slice(0, -2)}${last}${sig.slice(-1)}`;
    const result = await receive(
      encodeSignedEvent({ event: signed.event, signatures: [tampered] }),
      reader(),
    );
    expectRejected(result, "ERR_SIGNATURE_INVALID");
  });

  it("a signature by the wrong key under the issuer's kid", async () => {
    const signed = decodeSignedEvent(await openedBytes());
    const wrong = await importSigningKey((await generateSigningKey()).privateJwk);
    const sig = await signDetached(signed.event, {
      kid: se.identity(STOCKHOLM).signing.kid,
      key: wrong.key,
    });
    expectRejected(
      await receive(encodeSignedEvent({ event: signed.event, signatures: [sig] }), reader()),
      "ERR_SIGNATURE_INVALID",
    );
  });

  it("an unknown kid", async () => {
    const stranger = await importSigningKey((await generateSigningKey()).privateJwk);
    const signed = decodeSignedEvent(await openedBytes());
    const sig = await signDetached(signed.event, stranger);
    const result = await receive(
      encodeSignedEvent({ event: signed.event, signatures: [sig] }),
      reader(),
    );
    expectRejected(result, "ERR_UNKNOWN_KEY");
    if (!result.ok) expect(result.sender).toBeUndefined();
  });

  it("a missing signature", async () => {
    const signed = decodeSignedEvent(await openedBytes());
    expectRejected(
      await receive(encodeSignedEvent({ event: signed.event, signatures: [] }), reader()),
      "ERR_SIGNATURE_MISSING",
    );
  });

  it("a revoked key, whatever time the event claims", async () => {
    const bytes = await openedBytes();
    const kid = se.identity(STOCKHOLM).signing.kid;
    const revoked = withKey(se.trustList, kid, { revokedAt: new Date().toISOString() });
    expectRejected(
      await receive(bytes, { ...reader(), trust: new TrustStore([revoked]) }),
      "ERR_KEY_REVOKED",
    );
  });

  it("a key used outside its validity", async () => {
    const bytes = await openedBytes();
    const kid = se.identity(STOCKHOLM).signing.kid;
    const expired = withKey(se.trustList, kid, {
      notAfter: new Date(Date.now() - 60_000).toISOString(),
    });
    expectRejected(
      await receive(bytes, { ...reader(), trust: new TrustStore([expired]) }),
      "ERR_KEY_NOT_VALID",
    );
  });

  it("a role that may not send this type to this addressee", async () => {
    const event = {
      ...baseEvent("forwarded", STOCKHOLM, GOTEBORG),
      forwarded: { original: "AAAA" },
    };
    const bytes = await forge(event, se.identity(STOCKHOLM).signing);
    const result = await receive(bytes, { identity: se.identity(GOTEBORG), trust: se.trust });
    expectRejected(result, "ERR_NOT_AUTHORISED");
    if (!result.ok) expect(result.sender).toBe(STOCKHOLM);
  });

  it("an issuer in the event that is not the key's owner (0180 claiming to be 1480)", async () => {
    const input = openedInput();
    const issued = await issue(input, { identity: se.identity(STOCKHOLM), trust: se.trust });
    const event = { ...issued.event, source: GOTEBORG, id: randomUUID() };
    const result = await receive(await forge(event, se.identity(STOCKHOLM).signing), reader());
    expectRejected(result, "ERR_ISSUER_MISMATCH");
  });

  it.each([
    [
      "a missing deadline",
      (e: EventJson) => ({ ...e, opened: { ...e.opened, deadline: undefined } }),
      "/opened/deadline",
    ],
    [
      "an unknown urgency",
      (e: EventJson) => ({ ...e, opened: { ...e.opened, urgency: 7 } }),
      "/opened/urgency",
    ],
    ["a non-UUID id", (e: EventJson) => ({ ...e, id: "not-a-uuid" }), "/id"],
    [
      "a local (non-UTC) time",
      (e: EventJson) => ({ ...e, time: "2026-11-28T10:00:00+01:00" }),
      "/time",
    ],
    [
      "a wrong dataschema",
      (e: EventJson) => ({ ...e, dataschema: dataschemaFor("closed") }),
      "/dataschema",
    ],
    [
      "a body that does not match the type",
      (e: EventJson) => ({ ...e, type: "updated", dataschema: dataschemaFor("updated") }),
      "/updated",
    ],
  ])("a schema violation: %s", async (_name, mutate, field) => {
    const issued = await issue(openedInput(), {
      identity: se.identity(STOCKHOLM),
      trust: se.trust,
    });
    const event = mutate(issued.event) as EventJson;
    const result = await receive(await forge(event, se.identity(STOCKHOLM).signing), reader());
    expectRejected(result, "ERR_SCHEMA_INVALID");
    if (!result.ok) expect(result.error.issues?.map((i) => i.field)).toContain(field);
  });

  it("malformed protobuf", async () => {
    expectRejected(
      await receive(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]), reader()),
      "ERR_MALFORMED",
    );
    expectRejected(await receive(new Uint8Array(0), reader()), "ERR_MALFORMED");
  });

  it("oversize input", async () => {
    expectRejected(await receive(new Uint8Array(300 * 1024), reader()), "ERR_OVERSIZE");
    expectRejected(
      await receive(await openedBytes(), { ...reader(), maxBytes: 100 }),
      "ERR_OVERSIZE",
    );
  });

  it("an event for another addressee", async () => {
    expectRejected(
      await receive(await openedBytes(), { identity: se.identity(HUB_STHLM), trust: se.trust }),
      "ERR_NOT_ADDRESSEE",
    );
  });

  it("an event that arrived on another party's subject", async () => {
    const result = await receive(await openedBytes(), {
      ...reader(),
      subject: "stafett.se.syd.hub.opened",
    });
    expectRejected(result, "ERR_SUBJECT_MISMATCH");
  });

  it("an event from the future", async () => {
    const bytes = await openedBytes({ time: new Date(Date.now() + 3_600_000) });
    expectRejected(await receive(bytes, reader()), "ERR_STALE");
  });

  it("a personal part that the reader is not a recipient of", async () => {
    const bytes = await openedBytes({ sealTo: [GOTEBORG] });
    expectRejected(await receive(bytes, reader()), "ERR_NOT_RECIPIENT");
  });

  it("a personal part moved in from another referral", async () => {
    const donor = await issue(openedInput(), { identity: se.identity(STOCKHOLM), trust: se.trust });
    const issued = await issue(openedInput(), {
      identity: se.identity(STOCKHOLM),
      trust: se.trust,
    });
    const event = {
      ...issued.event,
      opened: { ...issued.event.opened!, personal: donor.event.opened!.personal },
    };
    expectRejected(
      await receive(await forge(event, se.identity(STOCKHOLM).signing), reader()),
      "ERR_DECRYPT_FAILED",
    );
  });

  it("never carries the child's data in a rejection", async () => {
    const personal = {
      ...samplePersonal(3),
      child: { ...(samplePersonal(3).child as object), sex: "Unique-Secret-Name" },
    };
    const error = await issue(openedInput({ personal }), {
      identity: se.identity(STOCKHOLM),
      trust: se.trust,
    }).catch((e: unknown) => e);
    expect(JSON.stringify(error)).not.toContain("Unique-Secret-Name");
    expect(JSON.stringify(error)).toContain("ERR_PERSONAL_INVALID");
  });
});

describe("countersignatures", () => {
  it("a liaison's countersignature keeps the issuer's and verifies", async () => {
    const bytes = await openedBytes();
    const signed = await countersign(bytes, se.identity("se:liaison").signing);
    const parts = decodeSignedEvent(signed);
    expect(parts.signatures).toHaveLength(2);
    expect(parts.signatures[0]).toBe(decodeSignedEvent(bytes).signatures[0]);
    const result = await receive(signed, { identity: se.identity(HUB_VAST), trust: se.trust });
    if (!result.ok) throw result.error;
    expect(result.countersigners.map((o) => o.id)).toEqual(["se:liaison"]);
  });

  it("refuses a countersignature by a party that is not a liaison", async () => {
    const signed = await countersign(await openedBytes(), se.identity(HUB_STHLM).signing);
    const result = await receive(signed, { identity: se.identity(HUB_VAST), trust: se.trust });
    expectRejected(result, "ERR_COUNTERSIGNATURE_INVALID");
  });

  it("refuses a forged countersignature", async () => {
    const bytes = await openedBytes();
    const parts = decodeSignedEvent(bytes);
    const forger = await importSigningKey((await generateSigningKey()).privateJwk);
    const sig = await signDetached(parts.event, {
      kid: se.identity("se:liaison").signing.kid,
      key: forger.key,
    });
    const result = await receive(
      encodeSignedEvent({ event: parts.event, signatures: [...parts.signatures, sig] }),
      {
        identity: se.identity(HUB_VAST),
        trust: se.trust,
      },
    );
    expectRejected(result, "ERR_COUNTERSIGNATURE_INVALID");
  });

  it("requires the issuer's liaison's countersignature on an event from abroad", async () => {
    const no = await createCountry({
      code: "no",
      municipalities: [],
      regions: ["ost"],
      partners: [se.trustList],
    });
    const seWithNo = new TrustStore([se.trustList, no.trustList]);
    const issued = await issue(
      openedInput({
        addressee: "no:liaison",
        sealTo: ["no:liaison"],
        body: { ...openedInput().body, destination: { country: "no" } },
      }),
      { identity: se.identity(MALMO), trust: seWithNo },
    );
    expect(issued.subject).toBe("stafett.se.out.no.opened");
    const bare = await receive(issued.bytes, {
      identity: no.identity("no:liaison"),
      trust: no.trust,
    });
    expectRejected(bare, "ERR_COUNTERSIGNATURE_MISSING");
    const signed = await countersign(issued.bytes, se.identity("se:liaison").signing);
    const ok = await receive(signed, {
      identity: no.identity("no:liaison"),
      trust: no.trust,
      subject: "stafett.no.in.se.opened",
    });
    if (!ok.ok) throw ok.error;
    expect(ok.personal).toEqual(samplePersonal(1));
  });
});

function decodeReferralId(bytes: Uint8Array): string {
  return decodeEvent(decodeSignedEvent(bytes).event).referralId;
}

function withKey(list: TrustList, kid: string, patch: Record<string, string>): TrustList {
  return {
    ...list,
    organisations: list.organisations.map((o) => ({
      ...o,
      keys: o.keys.map((k) => (k.kid === kid ? { ...k, ...patch } : k)),
    })),
  };
}

describe("a revocation judged as the first receiver judged it", () => {
  /** Stockholm's referral, taken by the Väst hub, and the hub's hand-on of it to Göteborg. */
  async function handOn(): Promise<{ fwd: Uint8Array; openedAt: number }> {
    const original = await openedBytes();
    const openedAt = Date.parse(decodeEvent(decodeSignedEvent(original).event).time);
    const hub = await receive(original, { identity: se.identity(HUB_VAST), trust: se.trust });
    if (!hub.ok) throw hub.error;
    const fwd = await issue(
      {
        type: "forwarded",
        addressee: GOTEBORG,
        referralId: hub.event.referralId,
        body: { original: toBase64(original) },
      },
      { identity: se.identity(HUB_VAST), trust: se.trust },
    );
    return { fwd: fwd.bytes, openedAt };
  }
  const atGoteborg = (bytes: Uint8Array, trust: TrustStore) =>
    receive(bytes, { identity: se.identity(GOTEBORG), trust });

  it("a referral a hub took before its origin's key was revoked is still handed on", async () => {
    const { fwd, openedAt } = await handOn();
    const kid = se.identity(STOCKHOLM).signing.kid;
    const later = withKey(se.trustList, kid, {
      revokedAt: new Date(openedAt + 1_000).toISOString(),
    });
    const r = await atGoteborg(fwd, new TrustStore([later]));
    if (!r.ok) throw r.error;
    expect(r.original?.issuer.id).toBe(STOCKHOLM);
  });

  it("one that claims a time after the revocation is refused ERR_KEY_REVOKED", async () => {
    const { fwd, openedAt } = await handOn();
    const kid = se.identity(STOCKHOLM).signing.kid;
    const before = withKey(se.trustList, kid, { revokedAt: new Date(openedAt - 1).toISOString() });
    expectRejected(await atGoteborg(fwd, new TrustStore([before])), "ERR_KEY_REVOKED");
  });

  it("the same event sent straight to a reader is refused whatever time it claims", async () => {
    const bytes = await openedBytes();
    const openedAt = Date.parse(decodeEvent(decodeSignedEvent(bytes).event).time);
    const kid = se.identity(STOCKHOLM).signing.kid;
    const later = withKey(se.trustList, kid, {
      revokedAt: new Date(openedAt + 1_000).toISOString(),
    });
    expectRejected(
      await receive(bytes, { identity: se.identity(HUB_VAST), trust: new TrustStore([later]) }),
      "ERR_KEY_REVOKED",
    );
  });

  it("a party whose own key the trust list no longer holds (rotated out) refuses to sign", async () => {
    const kid = se.identity(STOCKHOLM).signing.kid;
    const rotated: TrustList = {
      ...se.trustList,
      organisations: se.trustList.organisations.map((o) => ({
        ...o,
        keys: o.keys.filter((k) => k.kid !== kid),
      })),
    };
    await expect(
      issue(openedInput(), { identity: se.identity(STOCKHOLM), trust: new TrustStore([rotated]) }),
    ).rejects.toMatchObject({ code: "ERR_UNKNOWN_KEY", reason: "not_in_trust_list" });
  });

  it("a party whose own key was revoked refuses to sign at all", async () => {
    const kid = se.identity(STOCKHOLM).signing.kid;
    const revoked = withKey(se.trustList, kid, { revokedAt: new Date().toISOString() });
    await expect(
      issue(openedInput(), { identity: se.identity(STOCKHOLM), trust: new TrustStore([revoked]) }),
    ).rejects.toMatchObject({ code: "ERR_KEY_REVOKED" });
  });
});

describe("one form of signature header", () => {
  /** Re-signs an event's bytes under a protected header of the caller's choosing. */
  async function signedWithHeader(header: Record<string, unknown>): Promise<Uint8Array> {
    const event = decodeSignedEvent(await openedBytes()).event;
    const { sign } = await import("node:crypto");
    const protectedB64 = Buffer.from(JSON.stringify(header)).toString("base64url");
    const input = Buffer.from(`${protectedB64}.${Buffer.from(event).toString("base64url")}`);
    const signer = se.identity(STOCKHOLM).signing;
    const { keyObjectOf } = await import("./keys.js");
    const sig = sign(null, input, keyObjectOf(signer)).toString("base64url");
    return encodeSignedEvent({ event, signatures: [`${protectedB64}..${sig}`] });
  }
  const kid = () => se.identity(STOCKHOLM).signing.kid;
  const reader = () => ({ identity: se.identity(HUB_VAST), trust: se.trust });

  it("verifies the header every signer writes", async () => {
    const r = await receive(
      await signedWithHeader({ alg: "EdDSA", kid: kid(), typ: "stafett-event+jws" }),
      reader(),
    );
    expect(r.ok).toBe(true);
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["b64: false without crit", { b64: false }, "header_member"],
    ["b64: false with crit", { b64: false, crit: ["b64"] }, "header_member"],
    ["crit alone", { crit: ["exp"] }, "crit"],
    ["any other member", { x5u: "https://example.invalid/" }, "header_member"],
  ])("refuses %s ERR_SIGNATURE_INVALID", async (_name, extra, reason) => {
    const r = await receive(
      await signedWithHeader({ alg: "EdDSA", kid: kid(), typ: "stafett-event+jws", ...extra }),
      reader(),
    );
    if (r.ok) throw new Error("accepted");
    expect(r.error).toMatchObject({ code: "ERR_SIGNATURE_INVALID" });
    expect([reason, "crit"]).toContain(r.error.reason);
  });

  it.each<[string, Record<string, unknown>]>([
    ["no typ", { alg: "EdDSA" }],
    ["the trust list's typ", { alg: "EdDSA", typ: "stafett-trust+jws" }],
  ])("refuses an event signature with %s", async (_name, header) => {
    const r = await receive(await signedWithHeader({ ...header, kid: kid() }), reader());
    if (r.ok) throw new Error("accepted");
    expect(r.error).toMatchObject({ code: "ERR_SIGNATURE_INVALID", reason: "typ" });
  });
});

describe("a schema error never names the caller's keys", () => {
  it("an unexpected key inside the personal part is reported by its parent's path only", async () => {
    const personal = { ...samplePersonal(), "Anna Zyxwvut, född 2013-04-05": "x" };
    const error = await issue(openedInput({ personal }), {
      identity: se.identity(STOCKHOLM),
      trust: se.trust,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "ERR_PERSONAL_INVALID", reason: "additionalProperties" });
    const all = JSON.stringify({ error, issues: (error as { issues?: unknown }).issues });
    expect(all).not.toContain("Zyxwvut");
    expect(String((error as Error).message)).not.toContain("Zyxwvut");
  });
});
