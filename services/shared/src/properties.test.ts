import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { decodeEvent, encodeEvent } from "./codec.js";
import { createCountry, type Country, samplePersonal } from "@stafett/devkit/fixtures";
import { open, seal } from "./jwe.js";
import { issue, receive } from "./pipeline.js";
import { dataschemaFor, EVENT_TYPES, type EventJson } from "./types.js";

let se: Country;
let opened: Uint8Array;
const HUB = "se:hub:vast";

beforeAll(async () => {
  se = await createCountry({ code: "se", municipalities: ["0180", "1480"] });
  opened = (
    await issue(
      {
        type: "opened",
        addressee: HUB,
        referralId: randomUUID(),
        body: {
          urgency: "URGENCY_NORMAL",
          reason: "REASON_CATEGORY_MOVED",
          destination: { country: "se", municipality: "1480" },
          deadline: new Date(Date.now() + 72 * 3_600_000).toISOString(),
        },
        personal: samplePersonal(),
        sealTo: [HUB, "se:municipality:1480"],
      },
      { identity: se.identity("se:municipality:0180"), trust: se.trust },
    )
  ).bytes;
});

describe("no altered byte goes unnoticed", () => {
  it(
    "every single-byte change of a SignedEvent is refused with a code",
    { timeout: 60_000 },
    async () => {
      const ctx = { identity: se.identity(HUB), trust: se.trust };
      expect((await receive(opened, ctx)).ok).toBe(true);
      const accepted: number[] = [];
      for (let i = 0; i < opened.length; i++) {
        for (const mask of [0x01, 0x80]) {
          const copy = Uint8Array.from(opened);
          copy[i] = (copy[i] ?? 0) ^ mask;
          const result = await receive(copy, ctx);
          if (result.ok) accepted.push(i);
          else expect(result.error.code).toMatch(/^ERR_[A-Z_]+$/);
        }
      }
      expect(accepted).toEqual([]);
    },
  );
});

describe("properties", () => {
  const text = fc.string({ minLength: 1, maxLength: 40 });
  const iso = fc
    .date({
      min: new Date("2020-01-01T00:00:00Z"),
      max: new Date("2035-01-01T00:00:00Z"),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString());
  const urgency = fc.constantFrom("URGENCY_IMMEDIATE", "URGENCY_HIGH", "URGENCY_NORMAL");
  const destination = fc.record(
    {
      country: fc.constantFrom("se", "no", "fi"),
      region: fc.constantFrom("vast", "syd"),
      municipality: fc.constantFrom("1480", "0180"),
    },
    { requiredKeys: ["country"] },
  );
  const bodies = {
    opened: fc.record({
      urgency,
      reason: fc.constant("REASON_CATEGORY_OTHER"),
      destination,
      deadline: iso,
      personal: text,
    }),
    received: fc.record({ ofEventId: fc.uuid(), digest: text }),
    rejected: fc.record(
      { ofEventId: fc.uuid(), code: text, reason: text, field: text },
      { requiredKeys: ["code", "reason"] },
    ),
    forwarded: fc.record(
      {
        original: fc
          .uint8Array({ minLength: 1, maxLength: 64 })
          .map((b) => Buffer.from(b).toString("base64")),
        personal: text,
        destination,
        deadline: iso,
      },
      { requiredKeys: ["original"] },
    ),
    accepted: fc.record({ ofEventId: fc.uuid() }),
    declined: fc.record(
      { ofEventId: fc.uuid(), reason: fc.constant("DECLINE_REASON_OTHER"), suggested: destination },
      { requiredKeys: ["ofEventId", "reason"] },
    ),
    updated: fc.record({ urgency, personal: text, deadline: iso }, { requiredKeys: [] }),
    withdrawn: fc.record({ reason: fc.constant("WITHDRAW_REASON_CHILD_FOUND") }),
    escalated: fc.record(
      { deadline: iso, urgency, holder: text, destination },
      { requiredKeys: ["deadline", "holder"] },
    ),
    closed: fc.record(
      { outcome: fc.constant("CLOSE_OUTCOME_ACCEPTED"), holder: text },
      { requiredKeys: ["outcome"] },
    ),
    reported: fc.record(
      {
        region: fc.constantFrom("vast", "syd"),
        triage: fc.integer({ min: 1, max: 4294967295 }),
        forwarded: fc.integer({ min: 1, max: 1000 }),
        overdue: fc.integer({ min: 1, max: 1000 }),
        nearestDeadline: iso,
      },
      { requiredKeys: ["region"] },
    ),
  };
  const event = fc.constantFrom(...EVENT_TYPES).chain((type) =>
    fc.record({
      id: fc.uuid(),
      type: fc.constant(type),
      source: text,
      addressee: text,
      time: iso,
      dataschema: fc.constant(dataschemaFor(type)),
      // A report belongs to no referral (schemas/events/reported.schema.json).
      ...(type === "reported" ? {} : { referralId: fc.uuid() }),
      [type]: bodies[type] as fc.Arbitrary<unknown>,
    }),
  );

  it("codec: canonical JSON -> protobuf -> canonical JSON is the identity", () => {
    fc.assert(
      fc.property(event, (json) => {
        expect(decodeEvent(encodeEvent(json as EventJson))).toEqual(json);
      }),
      { numRuns: 500 },
    );
  });

  it("seal/open: any JSON to any number of recipients opens to the same value for each", async () => {
    const recipients = [
      "se:hub:vast",
      "se:municipality:0180",
      "se:municipality:1480",
      "se:liaison",
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.json().map((j) => JSON.parse(j) as unknown),
        fc.integer({ min: 1, max: 4 }),
        fc.uuid(),
        async (value, n, referralId) => {
          const ids = recipients.slice(0, n);
          const sealed = await seal(
            value,
            await se.trust.encryptionKeys(ids, new Date()),
            referralId,
          );
          for (const id of ids) {
            expect(await open(sealed, se.identity(id).encryption, referralId)).toEqual(value);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it("receive: random bytes never crash it and are always refused with a code", async () => {
    const ctx = { identity: se.identity(HUB), trust: se.trust };
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        const result = await receive(bytes, ctx);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.error.code).toMatch(/^ERR_[A-Z_]+$/);
      }),
      { numRuns: 2_000 },
    );
  });
});
