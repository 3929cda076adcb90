/**
 * Attacks on the regional reports (`reported`, docs/contract.md "The regional reports") that the
 * schema must stop before any party reads a time: RFC 3339 allows a leap second (23:59:60Z), the
 * date-time format admits it on any day, and JavaScript's Date cannot read it (NaN).
 */
import { describe, expect, it } from "vitest";
import { SCHEMA_IDS, validate } from "@stafett/shared";

const validateEvent = (type: "reported", json: unknown) => validate(SCHEMA_IDS.event(type), json);

const LEAP = "2026-12-31T23:59:60Z";

const reported = (time: string, nearestDeadline = "2026-12-01T09:30:00.000Z") => ({
  id: "0b6f3c52-6f2e-4c8e-9a51-2f0d7b1c9e11",
  type: "reported",
  source: "se:hub:vast",
  addressee: "se:coordinator",
  time,
  dataschema: "https://stafett.eu/schemas/v1/events/reported.schema.json",
  reported: { region: "vast", triage: 1, normal: 1, nearestDeadline },
});

describe("a time JavaScript cannot read is refused by the schema", () => {
  it("an ordinary report validates", () => {
    expect(() => validateEvent("reported", reported("2026-12-01T09:00:00.123Z"))).not.toThrow();
  });

  it("a report dated at a leap second: refused (it would pass every time check as NaN)", () => {
    expect(Number.isNaN(Date.parse(LEAP))).toBe(true);
    expect(() => validateEvent("reported", reported(LEAP))).toThrow(
      expect.objectContaining({ code: "ERR_SCHEMA_INVALID" }),
    );
  });

  it("a deadline at a leap second: refused (the hub's report would throw on it)", () => {
    // A municipality's referral with such a deadline made regionReport call
    // new Date(NaN).toISOString(): a RangeError out of the hub's reporting timer, every second.
    expect(() =>
      validateEvent("reported", reported("2026-12-01T09:00:00Z", "2026-06-30T23:59:60.5Z")),
    ).toThrow(expect.objectContaining({ code: "ERR_SCHEMA_INVALID" }));
  });
});
