import fc from "fast-check";
import { v5 } from "uuid";
import { describe, expect, it } from "vitest";
import { derivedId, keyedIds } from "./ids.js";

describe("derivedId", () => {
  it("gives the ids it always gave: a service after an upgrade republishes under the same id", () => {
    expect(derivedId("se:municipality:0180", "referral", "key-1")).toBe(
      "e02a13be-6ec6-5cd6-87be-22ed76aaa71a",
    );
    expect(derivedId("se:hub:vast", "forwarded", "Åsa ö")).toBe(
      "af62fef4-9b79-5c59-b0e6-488d32b77516",
    );
  });

  /** Characters, and now and then half of a surrogate pair on its own. */
  const characterOrHalf = fc.oneof(
    { weight: 9, arbitrary: fc.string({ unit: "grapheme", minLength: 1, maxLength: 1 }) },
    {
      weight: 1,
      arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
    },
  );

  it("is uuid's v5 of the parts joined by U+001F, in the fixed namespace, and throws where it threw", () => {
    const namespace = "6f1c2b1e-4f7a-4a57-9d3e-5b8a0c2e9d41";
    fc.assert(
      fc.property(fc.array(fc.string({ unit: characterOrHalf }), { maxLength: 4 }), (parts) => {
        let expected: string | undefined;
        try {
          expected = v5(parts.join("\u001f"), namespace);
        } catch {
          // uuid refuses a lone surrogate (URIError); so must derivedId
          expect(() => derivedId(...parts)).toThrow(TypeError);
          return;
        }
        expect(derivedId(...parts)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });

  it("refuses a lone surrogate rather than derive the id of its replacement character", () => {
    expect(() => derivedId("se:hub:vast", "a\uD800")).toThrow(TypeError);
    expect(() => derivedId("se:hub:vast", "\uDC00b")).toThrow(TypeError);
    // A pair is one character: no refusal.
    expect(derivedId("se:hub:vast", "a\u{1F600}")).toBe(
      v5("se:hub:vast\u001fa\u{1F600}", "6f1c2b1e-4f7a-4a57-9d3e-5b8a0c2e9d41"),
    );
  });
});

describe("keyedIds: derived ids nobody else can compute", () => {
  const secret = new Uint8Array(32).fill(7);
  const other = new Uint8Array(32).fill(8);

  it("gives the same id for the same parts, so a repeated step publishes the same id", () => {
    expect(keyedIds(secret)("forwarded", "o1", "se:municipality:1480")).toBe(
      keyedIds(secret)("forwarded", "o1", "se:municipality:1480"),
    );
  });

  it("gives another id under another party's secret, and for other parts", () => {
    const id = keyedIds(secret)("escalated", "r1", "2026-12-01T10:00:00.000Z");
    expect(keyedIds(other)("escalated", "r1", "2026-12-01T10:00:00.000Z")).not.toBe(id);
    expect(keyedIds(secret)("escalated", "r1", "2026-12-01T10:00:00.001Z")).not.toBe(id);
    // Nor the public, name-based id anyone could compute from the same parts.
    expect(derivedId("se:hub:vast", "escalated", "r1", "2026-12-01T10:00:00.000Z")).not.toBe(id);
  });

  it("is a canonical RFC 9562 UUID of version 8", () => {
    const id = keyedIds(secret)("received", "e1");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("refuses a short secret", () => {
    expect(() => keyedIds(new Uint8Array(16))).toThrow(TypeError);
  });
});
