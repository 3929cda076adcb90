/**
 * A partner in another language verifies and decodes Stafett messages with stock libraries only
 * (docs/contract.md, "Wire format"): interop/python/verify_stafett.py uses Python's jwcrypto,
 * protobuf (protoc-generated at run time) and jsonschema, nothing of ours. This file makes keys, a trust
 * list and events with our own library, runs the script on them, and checks that it accepts what
 * the reference receiver accepts, with the same canonical JSON, and refuses what it refuses,
 * with the same code. docs/interop.md explains the format to partners.
 *
 * Needs python3 with jwcrypto, protobuf and jsonschema >= 4, and protoc; on Debian the packages
 * python3-jwcrypto python3-protobuf python3-jsonschema protobuf-compiler (.ci/run installs them).
 * Set STAFETT_PYTHON or PROTOC to pick other binaries. When one is missing, the file is skipped
 * with a warning on a developer's machine, and every test in it fails in CI (env CI set, as
 * .ci/run does): CI must run the partner's view, not report it skipped.
 */
import { execFile, spawnSync } from "node:child_process";
import { randomUUID, sign } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createCountry, sampleOpened, type Country } from "@stafett/devkit";
import {
  countersign,
  dataschemaFor,
  decodeEvent,
  decodeSignedEvent,
  digestOf,
  encodeEvent,
  encodeSignedEvent,
  generateSigningKey,
  importSigningKey,
  keyObjectOf,
  issue,
  receive,
  signDetached,
  signTrustList,
  toBase64,
  TrustStore,
  type EventJson,
  type IssueInput,
  type PrivateJwk,
  type PublicJwk,
  type ReceiveContext,
  type TrustList,
} from "@stafett/shared";

const REPO = resolve(import.meta.dirname, "../..");
const SCRIPT = join(REPO, "interop/python/verify_stafett.py");

const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
const HUB_VAST = "se:hub:vast";
const HUB_STHLM = "se:hub:stockholm";
const LIAISON = "se:liaison";

const MODULES_PROBE =
  "import jwcrypto.jwe, jwcrypto.jws, google.protobuf.json_format, jsonschema\n" +
  "from jsonschema import Draft202012Validator";

/** The first python3 that has every module, and protoc; or why the file is skipped. */
function findTools(): { python: string; protoc: string } | { missing: string } {
  const candidates = [process.env.STAFETT_PYTHON, "python3", "/usr/bin/python3"].filter(
    (c): c is string => c !== undefined && c !== "",
  );
  const tried: string[] = [];
  let python: string | undefined;
  for (const candidate of new Set(candidates)) {
    const probe = spawnSync(candidate, ["-c", MODULES_PROBE], {
      encoding: "utf8",
      timeout: 30_000,
    });
    if (probe.status === 0) {
      python = candidate;
      break;
    }
    tried.push(
      probe.error === undefined
        ? `${candidate}: ${probe.stderr.trim().split("\n").pop() ?? "import failed"}`
        : `${candidate}: not found`,
    );
  }
  if (python === undefined) {
    return {
      missing: `no python3 with jwcrypto, protobuf and jsonschema>=4 (${tried.join("; ")})`,
    };
  }
  const protoc = process.env.PROTOC ?? "protoc";
  if (spawnSync(protoc, ["--version"], { encoding: "utf8", timeout: 30_000 }).status !== 0) {
    return { missing: `${protoc} (protobuf-compiler) not found` };
  }
  return { python, protoc };
}

/** CI systems set CI (GitHub Actions, GitLab and .ci/run: "true"); "0" or "false" means no. */
const inCi = !["", "0", "false"].includes((process.env.CI ?? "").trim().toLowerCase());

const tools = findTools();
const missing = "missing" in tools ? tools.missing : undefined;
/** Only outside CI may the file skip for a missing tool; in CI its tests fail instead. */
const skipped = missing !== undefined && !inCi;
if (skipped) {
  console.warn(
    [
      "",
      "!!! python-interop: SKIPPED, the partner's view of the wire format was NOT tested.",
      `!!! Missing: ${missing}.`,
      "!!! Install python3-jwcrypto python3-protobuf python3-jsonschema protobuf-compiler",
      "!!! (bash .ci/run does). In CI (env CI set) this is a failure, not a skip.",
      "",
    ].join("\n"),
  );
}

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

interface VerifyOptions {
  /** Trust lists (compact JWS), own country's first; default the Swedish list. */
  trust?: readonly string[];
  /** The anchors of `trust`, pairwise; default the Swedish anchor. */
  anchors?: readonly PublicJwk[];
  encKey?: PrivateJwk;
}

let se: Country;
let dir: string;
let fileCount = 0;

function writeTemp(name: string, content: string | Uint8Array): string {
  const path = join(dir, `${++fileCount}-${name}`);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

function runVerifier(message: Uint8Array, options: VerifyOptions = {}): Promise<Run> {
  if ("missing" in tools) throw new Error(`python-interop: ${tools.missing}`);
  const args = [SCRIPT, "--message", writeTemp("event.bin", message), "--protoc", tools.protoc];
  for (const jws of options.trust ?? [se.trustListJws]) {
    args.push("--trust", writeTemp("trust-list.jws", jws));
  }
  for (const jwk of options.anchors ?? [se.anchorPublicJwk]) {
    args.push("--anchor", writeTemp("anchor.pub.jwk.json", JSON.stringify(jwk)));
  }
  if (options.encKey !== undefined) {
    args.push("--enc-key", writeTemp("enc.jwk.json", JSON.stringify(options.encKey)));
  }
  return new Promise((done) => {
    execFile(tools.python, args, { encoding: "utf8", timeout: 25_000 }, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      done({ status, stdout, stderr });
    });
  });
}

/** The verdict line of a refusal: "REFUSED <code> (<reason>) at <field>: <message>". */
function refusal(run: Run): { code: string; reason: string } {
  const m = /^REFUSED (ERR_[A-Z_]+) \(([a-z_A-Z]+)\)/m.exec(run.stderr);
  if (m === null) throw new Error(`no refusal line in: ${run.stderr}`);
  return { code: m[1] ?? "", reason: m[2] ?? "" };
}

function expectRefused(run: Run, code: string, reason?: string): void {
  expect(run.status, run.stderr).toBe(1);
  expect(run.stdout).toBe("");
  const got = refusal(run);
  expect(got.code).toBe(code);
  if (reason !== undefined) expect(got.reason).toBe(reason);
}

function expectVerified(run: Run, event: EventJson): void {
  expect(run.status, run.stderr).toBe(0);
  expect(JSON.parse(run.stdout)).toEqual(event);
}

/** The reference receiver's verdict, as a partner's relay (no addressee or recipient checks). */
async function referenceCode(bytes: Uint8Array, ctx?: Partial<ReceiveContext>): Promise<string> {
  const result = await receive(bytes, {
    identity: { id: HUB_VAST },
    trust: se.trust,
    mode: "relay",
    ...ctx,
  });
  return result.ok ? "ok" : result.error.code;
}

const openedInput = (overrides: Partial<IssueInput> = {}): IssueInput => sampleOpened(overrides);

/** Every string in a JSON value, at any depth. */
function leafStrings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (value === null || typeof value !== "object") return [];
  return Object.values(value).flatMap(leafStrings);
}

function encKeyOf(country: Country, id: string): PrivateJwk {
  const keys = country.keys.get(id);
  if (keys === undefined) throw new Error(`no keys for ${id}`);
  return keys.encryption.privateJwk;
}

/** Signs event bytes the way a forger or a buggy sender would, skipping issue()'s checks. */
async function signBytes(event: Uint8Array, by: string): Promise<Uint8Array> {
  return encodeSignedEvent({
    event,
    signatures: [await signDetached(event, se.identity(by).signing)],
  });
}

function baseEvent(type: EventJson["type"]): EventJson {
  return {
    id: randomUUID(),
    type,
    source: STOCKHOLM,
    addressee: HUB_VAST,
    time: new Date().toISOString(),
    dataschema: dataschemaFor(type),
    referralId: randomUUID(),
  };
}

describe.skipIf(skipped)("a Python partner with stock libraries", () => {
  // Only in CI does a missing tool get here: then each test fails, with the reason.
  beforeEach(() => {
    if (missing !== undefined) {
      throw new Error(
        `python-interop: ${missing}. In CI (CI=${process.env.CI ?? ""}) a missing tool fails ` +
          "the run instead of skipping it; .ci/run installs python3-jwcrypto python3-protobuf " +
          "python3-jsonschema protobuf-compiler.",
      );
    }
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "stafett-interop-"));
    se = await createCountry({ code: "se", municipalities: ["0180", "1480"] });
  });

  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  describe("accepts what the reference accepts, with the same canonical JSON", () => {
    it("verifies an opened referral and decrypts its personal part, printing keys only", async () => {
      const input = openedInput();
      const issued = await issue(input, { identity: se.identity(STOCKHOLM), trust: se.trust });
      const run = await runVerifier(issued.bytes, { encKey: encKeyOf(se, HUB_VAST) });
      expectVerified(run, issued.event);
      expect(run.stderr).toContain(`signature 0 (issuer) verifies with kid`);
      expect(run.stderr).toContain(
        "top-level keys: child, lastKnown, asylumStatus, guardianship, riskIndicators, " +
          "childViewsHeard, legalBasis, contact",
      );
      // The personal part stays sealed on stdout, and no value of it is printed anywhere.
      const values = leafStrings(input.personal).filter((v) => v.length >= 8);
      expect(values.length).toBeGreaterThan(3);
      for (const value of values) expect(run.stdout + run.stderr).not.toContain(value);
      expect(await referenceCode(issued.bytes)).toBe("ok");
    });

    it("decrypts for every recipient of a multi-recipient JWE", async () => {
      const issued = await issue(openedInput(), {
        identity: se.identity(STOCKHOLM),
        trust: se.trust,
      });
      const run = await runVerifier(issued.bytes, { encKey: encKeyOf(se, GOTEBORG) });
      expectVerified(run, issued.event);
      expect(run.stderr).toContain(`decrypts for kid ${se.identity(GOTEBORG).encryption.kid}`);
    });

    it("verifies events without a personal part", async () => {
      const issued = await issue(
        {
          type: "received",
          addressee: STOCKHOLM,
          referralId: randomUUID(),
          body: { ofEventId: randomUUID(), digest: digestOf(new Uint8Array([1, 2, 3])) },
        },
        { identity: se.identity(HUB_VAST), trust: se.trust },
      );
      expectVerified(await runVerifier(issued.bytes), issued.event);
    });

    it("verifies a forwarded event and the relayed original inside it", async () => {
      const original = await issue(openedInput(), {
        identity: se.identity(STOCKHOLM),
        trust: se.trust,
      });
      const fwd = await issue(
        {
          type: "forwarded",
          addressee: GOTEBORG,
          referralId: original.event.referralId,
          body: { original: toBase64(original.bytes) },
        },
        { identity: se.identity(HUB_VAST), trust: se.trust },
      );
      const run = await runVerifier(fwd.bytes, { encKey: encKeyOf(se, GOTEBORG) });
      expectVerified(run, fwd.event);
      expect(run.stderr).toContain(`relayed event: signature 0 (issuer) verifies`);
      expect(run.stderr).toContain("top-level keys: child,");
      expect(await referenceCode(fwd.bytes)).toBe("ok");
    });

    it("verifies a liaison's countersignature next to the issuer's", async () => {
      const issued = await issue(openedInput(), {
        identity: se.identity(STOCKHOLM),
        trust: se.trust,
      });
      const signed = await countersign(issued.bytes, se.identity(LIAISON).signing);
      const run = await runVerifier(signed);
      expectVerified(run, issued.event);
      expect(run.stderr).toContain(`signature 1 (countersignature) verifies, by ${LIAISON}`);
      expect(await referenceCode(signed)).toBe("ok");
    });

    it("verifies an event from abroad against the partner's trust list, as the reference does", async () => {
      const no = await createCountry({
        code: "no",
        municipalities: [],
        regions: ["ost"],
        partners: [se.trustList],
      });
      const issued = await issue(
        openedInput({
          addressee: "no:liaison",
          sealTo: ["no:liaison"],
          body: { ...openedInput().body, destination: { country: "no" } },
        }),
        { identity: se.identity(STOCKHOLM), trust: new TrustStore([se.trustList, no.trustList]) },
      );
      const asNorway = {
        trust: [no.trustListJws, se.trustListJws],
        anchors: [no.anchorPublicJwk, se.anchorPublicJwk],
        encKey: encKeyOf(no, "no:liaison"),
      };
      const reference = { identity: { id: "no:liaison" }, trust: no.trust };
      expectRefused(await runVerifier(issued.bytes, asNorway), "ERR_COUNTERSIGNATURE_MISSING");
      expect(await referenceCode(issued.bytes, reference)).toBe("ERR_COUNTERSIGNATURE_MISSING");
      const signed = await countersign(issued.bytes, se.identity(LIAISON).signing);
      expectVerified(await runVerifier(signed, asNorway), issued.event);
      expect(await referenceCode(signed, reference)).toBe("ok");
    });
  });

  describe("refuses what the reference refuses, with the same code", () => {
    let issuedBytes: Uint8Array;
    let issuedEvent: EventJson;

    beforeAll(async () => {
      const issued = await issue(openedInput(), {
        identity: se.identity(STOCKHOLM),
        trust: se.trust,
      });
      issuedBytes = issued.bytes;
      issuedEvent = issued.event;
    });

    it("a flipped byte in the event", async () => {
      const parts = decodeSignedEvent(issuedBytes);
      const event = Uint8Array.from(parts.event);
      event[20] = (event[20] ?? 0) ^ 0x01; // inside the id string
      const bytes = encodeSignedEvent({ event, signatures: parts.signatures });
      expectRefused(await runVerifier(bytes), "ERR_SIGNATURE_INVALID", "check_failed");
      expect(await referenceCode(bytes)).toBe("ERR_SIGNATURE_INVALID");
    });

    it("a flipped byte anywhere in the message body", async () => {
      // Byte 30 of the body is inside the Event bytes (after the tag and length of field 1).
      const bytes = Uint8Array.from(issuedBytes);
      bytes[30] = (bytes[30] ?? 0) ^ 0x40;
      expectRefused(await runVerifier(bytes), "ERR_SIGNATURE_INVALID", "check_failed");
      expect(await referenceCode(bytes)).toBe("ERR_SIGNATURE_INVALID");
    });

    it("a tampered signature", async () => {
      const parts = decodeSignedEvent(issuedBytes);
      const [protectedHeader = "", , signature = ""] = (parts.signatures[0] ?? "").split(".");
      const i = 10;
      const swapped = signature[i] === "A" ? "B" : "A";
      const tampered = `${protectedHeader}..${signature.slice(0, i)}${swapped}${signature.slice(i + 1)}`;
      const bytes = encodeSignedEvent({ event: parts.event, signatures: [tampered] });
      expectRefused(await runVerifier(bytes), "ERR_SIGNATURE_INVALID", "check_failed");
      expect(await referenceCode(bytes)).toBe("ERR_SIGNATURE_INVALID");
    });

    it("a signature respelled in non-canonical base64url (same bytes to a lenient decoder)", async () => {
      const parts = decodeSignedEvent(issuedBytes);
      const jws = parts.signatures[0] ?? "";
      // The last of 86 characters carries 4 bits of the signature and 2 unused bits.
      const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
      const last = alphabet.indexOf(jws.slice(-1));
      const respelled = jws.slice(0, -1) + (alphabet[last ^ 0x01] ?? "");
      const bytes = encodeSignedEvent({ event: parts.event, signatures: [respelled] });
      expectRefused(await runVerifier(bytes), "ERR_SIGNATURE_INVALID", "format");
      expect(await referenceCode(bytes)).toBe("ERR_SIGNATURE_INVALID");
    });

    it("a trust list checked with the wrong anchor", async () => {
      const other = (await generateSigningKey()).publicJwk;
      const run = await runVerifier(issuedBytes, { anchors: [other] });
      expectRefused(run, "ERR_TRUST_LIST_INVALID", "unknown_anchor");
    });

    it("an anchor key that did not sign the trust list, under the signer's kid", async () => {
      const impostor = (await generateSigningKey()).publicJwk;
      const run = await runVerifier(issuedBytes, {
        anchors: [{ ...impostor, kid: se.anchorPublicJwk.kid }],
      });
      expectRefused(run, "ERR_TRUST_LIST_INVALID", "signature");
    });

    it("a countersignature by a party that is not a liaison", async () => {
      const signed = await countersign(issuedBytes, se.identity(HUB_STHLM).signing);
      expectRefused(await runVerifier(signed), "ERR_COUNTERSIGNATURE_INVALID", "not_liaison");
      expect(await referenceCode(signed)).toBe("ERR_COUNTERSIGNATURE_INVALID");
    });

    it("a signer whose key is not in the trust list", async () => {
      const stranger = await generateSigningKey();
      const parts = decodeSignedEvent(issuedBytes);
      const sig = await signDetached(parts.event, await importSigningKey(stranger.privateJwk));
      const bytes = encodeSignedEvent({ event: parts.event, signatures: [sig] });
      expectRefused(await runVerifier(bytes), "ERR_UNKNOWN_KEY");
      expect(await referenceCode(bytes)).toBe("ERR_UNKNOWN_KEY");
    });

    it("an event whose source is not the signing key's owner", async () => {
      const event = { ...issuedEvent, id: randomUUID(), source: GOTEBORG };
      const bytes = await signBytes(encodeEvent(event), STOCKHOLM);
      expectRefused(await runVerifier(bytes), "ERR_ISSUER_MISMATCH");
      expect(await referenceCode(bytes)).toBe("ERR_ISSUER_MISMATCH");
    });

    it("a key that the trust list has revoked", async () => {
      const kid = se.identity(STOCKHOLM).signing.kid;
      const revoked: TrustList = {
        ...se.trustList,
        version: se.trustList.version + 1,
        organisations: se.trustList.organisations.map((o) => ({
          ...o,
          keys: o.keys.map((k) =>
            k.kid === kid ? { ...k, revokedAt: new Date().toISOString() } : k,
          ),
        })),
      };
      const run = await runVerifier(issuedBytes, {
        trust: [await signTrustList(revoked, se.anchor)],
      });
      expectRefused(run, "ERR_KEY_REVOKED");
      expect(await referenceCode(issuedBytes, { trust: new TrustStore([revoked]) })).toBe(
        "ERR_KEY_REVOKED",
      );
    });

    it("an event that breaks its schema", async () => {
      const event = {
        ...issuedEvent,
        id: randomUUID(),
        opened: { ...issuedEvent.opened, deadline: "tomorrow" },
      };
      const bytes = await signBytes(encodeEvent(event as EventJson), STOCKHOLM);
      const run = await runVerifier(bytes);
      expectRefused(run, "ERR_SCHEMA_INVALID", "pattern");
      expect(run.stderr).toContain("at /opened/deadline");
      expect(await referenceCode(bytes)).toBe("ERR_SCHEMA_INVALID");
    });

    it("fields that the contract does not define", async () => {
      const event = Uint8Array.from([
        ...encodeEvent({
          ...baseEvent("withdrawn"),
          withdrawn: { reason: "WITHDRAW_REASON_OTHER" },
        }),
        0xa0,
        0x06,
        0x01,
      ]);
      const bytes = await signBytes(event, STOCKHOLM);
      expectRefused(await runVerifier(bytes), "ERR_MALFORMED", "unknown_field");
      const reference = await receive(bytes, { identity: se.identity(HUB_VAST), trust: se.trust });
      expect(reference.ok ? "ok" : reference.error.code).toBe("ERR_MALFORMED");
    });

    it("a signature header with b64: false and no crit (one verdict on both sides)", async () => {
      const event = encodeEvent({
        ...baseEvent("withdrawn"),
        withdrawn: { reason: "WITHDRAW_REASON_OTHER" },
      });
      const signer = se.identity(STOCKHOLM).signing;
      const header = Buffer.from(
        JSON.stringify({ alg: "EdDSA", kid: signer.kid, typ: "stafett-event+jws", b64: false }),
      ).toString("base64url");
      const signature = sign(
        null,
        Buffer.concat([Buffer.from(`${header}.`), Buffer.from(event)]),
        keyObjectOf(signer),
      ).toString("base64url");
      const bytes = encodeSignedEvent({ event, signatures: [`${header}..${signature}`] });
      expectRefused(await runVerifier(bytes), "ERR_SIGNATURE_INVALID", "header_member");
      const reference = await receive(bytes, { identity: se.identity(HUB_VAST), trust: se.trust });
      expect(reference.ok ? "ok" : reference.error.reason).toBe("header_member");
    });

    it("a personal part for another recipient", async () => {
      const run = await runVerifier(issuedBytes, { encKey: encKeyOf(se, STOCKHOLM) });
      expectRefused(run, "ERR_NOT_RECIPIENT");
    });

    it("a personal part moved into another referral (AAD)", async () => {
      const event = { ...issuedEvent, id: randomUUID(), referralId: randomUUID() };
      const bytes = await signBytes(encodeEvent(event), STOCKHOLM);
      const run = await runVerifier(bytes, { encKey: encKeyOf(se, HUB_VAST) });
      expectRefused(run, "ERR_DECRYPT_FAILED", "aad_mismatch");
      const reference = await receive(bytes, { identity: se.identity(HUB_VAST), trust: se.trust });
      expect(reference.ok ? "ok" : reference.error.code).toBe("ERR_DECRYPT_FAILED");
    });
  });

  describe("reads non-canonical protobuf encodings as the reference does", () => {
    // Proto3 parsers are lenient in the same ways (last oneof member wins, explicit defaults
    // vanish, repeated embedded messages merge); what matters is that both sides derive the
    // same canonical JSON from the signed bytes, so they validate the same thing.
    const cases: { name: string; event: () => EventJson; extra: number[] }[] = [
      {
        name: "two oneof members on the wire (the last wins)",
        event: () => ({ ...baseEvent("accepted"), accepted: { ofEventId: randomUUID() } }),
        extra: [],
      },
      {
        name: "an explicit empty string in a repeated body occurrence",
        event: () => ({
          ...baseEvent("rejected"),
          rejected: { code: "ERR_MALFORMED", reason: "format" },
        }),
        extra: [0x62, 0x02, 0x22, 0x00],
      },
      {
        name: "an explicit zero enum",
        event: () => ({
          ...baseEvent("declined"),
          declined: { ofEventId: randomUUID(), reason: "DECLINE_REASON_OTHER" },
        }),
        extra: [0x7a, 0x02, 0x10, 0x00],
      },
      {
        name: "an enum number the contract does not name",
        event: () => ({
          ...baseEvent("withdrawn"),
          withdrawn: { reason: "WITHDRAW_REASON_OTHER" },
        }),
        extra: [0x8a, 0x01, 0x02, 0x08, 0x09],
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const json = c.event();
        const encoded = encodeEvent(json);
        // For the oneof case: an empty Received (field 11) before the real body.
        const event =
          c.extra.length === 0
            ? Uint8Array.from([0x5a, 0x00, ...encoded])
            : Uint8Array.from([...encoded, ...c.extra]);
        const bytes = await signBytes(event, STOCKHOLM);
        const code = await referenceCode(bytes);
        const run = await runVerifier(bytes);
        if (code === "ok") {
          expectVerified(run, decodeEvent(event));
        } else {
          expect(run.status, run.stderr).toBe(1);
          expect(refusal(run).code).toBe(code);
        }
      });
    }
  });
});
