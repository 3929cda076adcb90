import fc from "fast-check";
import { v5 } from "uuid";
import { describe, expect, it } from "vitest";
import { derivedId } from "./ids.js";

describe("derivedId", () => {
  it("gives the ids it always gave: a service after an upgrade republishes under the same id", () => {
    expect(derivedId("se:municipality:0180", "referral", "key-1")).toBe(
      "e02a13be-6ec6-5cd6-87be-22ed76aaa71a",
    );
    expect(derivedId("se:hub:vast", "forwarded", "Åsa ö")).toBe(
      "af62fef4-9b79-5c59-b0e6-488d32b77516",
    );
  });

  it("is uuid's v5 of the parts joined by U+001F, in the fixed namespace", () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "grapheme" }), { maxLength: 4 }), (parts) => {
        expect(derivedId(...parts)).toBe(
          v5(parts.join("\u001f"), "6f1c2b1e-4f7a-4a57-9d3e-5b8a0c2e9d41"),
        );
      }),
    );
  });
});
