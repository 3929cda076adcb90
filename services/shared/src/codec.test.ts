import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stafett } from "./gen/stafett.js";
import {
  decodeEvent,
  decodeSignedEvent,
  encodeEvent,
  encodeSignedEvent,
  peekReferralId,
} from "./codec.js";
import { dataschemaFor, type EventJson } from "./types.js";

const event: EventJson = {
  id: "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3",
  type: "accepted",
  source: "se:municipality:1480",
  addressee: "se:hub:vast",
  time: "2026-11-27T09:15:00Z",
  dataschema: dataschemaFor("accepted"),
  referralId: "4f0c2b7e-9a41-4c55-8d2e-6b1f3a9c7d10",
  accepted: { ofEventId: "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3" },
};

describe("codec", () => {
  it("refuses an Event with a field the contract does not define", () => {
    const bytes = encodeEvent(event);
    // field 99, wire type 2 (length-delimited), 3 bytes: an unknown top-level field
    const unknownTop = Uint8Array.from([...bytes, 0x9a, 0x06, 0x03, 0x61, 0x62, 0x63]);
    expect(() => decodeEvent(unknownTop)).toThrow(
      expect.objectContaining({ code: "ERR_MALFORMED", reason: "unknown_field" }),
    );
    expect(decodeEvent(bytes)).toEqual(event);
  });

  it("refuses a SignedEvent with an unknown field", () => {
    const signed = encodeSignedEvent({ event: encodeEvent(event), signatures: ["a..b"] });
    const withUnknown = Uint8Array.from([...signed, 0x18, 0x01]); // field 3, varint 1
    expect(() => decodeSignedEvent(withUnknown)).toThrow(
      expect.objectContaining({ code: "ERR_MALFORMED", reason: "unknown_field" }),
    );
  });

  it("peeks the referral id (for ordering only) without judging the bytes", () => {
    const signed = encodeSignedEvent({ event: encodeEvent(event), signatures: ["a..b"] });
    expect(peekReferralId(signed)).toBe(event.referralId);
    // A message the receive path will refuse still has its referral id read, so that it is
    // handled in order with the others about that referral.
    const unknownInside = encodeSignedEvent({
      event: Uint8Array.from([...encodeEvent(event), 0x9a, 0x06, 0x01, 0x61]),
      signatures: [],
    });
    expect(peekReferralId(unknownInside)).toBe(event.referralId);
    for (const garbage of [Uint8Array.from([0xff, 0xff, 0xff]), new Uint8Array(0)]) {
      expect(peekReferralId(garbage)).toBeUndefined();
    }
    const noReferral = encodeSignedEvent({
      event: encodeEvent({ ...event, referralId: "" }),
      signatures: ["a..b"],
    });
    expect(peekReferralId(noReferral)).toBeUndefined();
  });

  it("maps forwarded.original to the same base64 as protobufjs, both ways", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 3_000 }), (original) => {
        const forwarded: EventJson = {
          ...event,
          type: "forwarded",
          forwarded: { original: Buffer.from(original).toString("base64") },
        };
        delete forwarded.accepted;
        const bytes = encodeEvent(forwarded);
        // protobufjs's own conversion is the reference the wire format was defined with.
        const reference = stafett.v1.Event.toObject(stafett.v1.Event.decode(bytes), {
          enums: String,
          bytes: String,
          longs: String,
          json: true,
        });
        expect(decodeEvent(bytes)).toEqual(reference);
        expect(decodeEvent(bytes).forwarded?.original).toBe(forwarded.forwarded?.original);
        expect(Buffer.from(stafett.v1.Event.decode(bytes).forwarded?.original ?? [])).toEqual(
          Buffer.from(original),
        );
      }),
      { numRuns: 200 },
    );
  });
});
