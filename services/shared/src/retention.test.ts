import { describe, expect, it } from "vitest";
import type { KeptLine } from "./journal.js";
import { compactLines } from "./retention.js";

/** A role's records: a referral id and, for some, a personal part. */
type Rec = { referralId: string; k: string; personal?: string };
const holdings = {
  referralOf: (r: Rec) => r.referralId,
  strip: (r: Rec): Rec => ({ referralId: r.referralId, k: r.k }),
};
const compact = (lines: KeptLine<Record<string, unknown>>[]) =>
  compactLines<Rec>(() => lines, holdings);
const seen = (id: string, seq: number, referralId?: string) => ({
  id,
  seq,
  durable: "d",
  ...(referralId === undefined ? {} : { referralId }),
});
const out = [{ subject: "s", headers: {}, bytes: "AAAA" }];

describe("compactLines", () => {
  it("drops done lines and the events of the plans they mark, keeps unpublished plans whole", () => {
    expect(
      compact([
        { seq: 1, record: { seen: seen("e1", 1, "a"), rs: [{ referralId: "a", k: "x" }], out } },
        { seq: 2, record: { seen: seen("e2", 2, "b"), rs: [{ referralId: "b", k: "x" }], out } },
        { seq: 3, record: { done: 1 } },
      ]),
    ).toEqual([
      { seq: 1, record: { seen: seen("e1", 1, "a"), rs: [{ referralId: "a", k: "x" }] } },
      { seq: 2, record: { seen: seen("e2", 2, "b"), rs: [{ referralId: "b", k: "x" }], out } },
    ]);
  });

  it("strips an erased referral's records and keeps its erase line", () => {
    const erase = { erase: { referralId: "a", cause: "request", at: "t" } };
    expect(
      compact([
        { seq: 1, record: { rs: [{ referralId: "a", k: "inbox", personal: "JWE" }] } },
        { seq: 2, record: { rs: [{ referralId: "b", k: "inbox", personal: "JWE" }] } },
        { seq: 3, record: erase },
      ]),
    ).toEqual([
      { seq: 1, record: { rs: [{ referralId: "a", k: "inbox" }] } },
      { seq: 2, record: { rs: [{ referralId: "b", k: "inbox", personal: "JWE" }] } },
      { seq: 3, record: erase },
    ]);
  });

  it("drops a forgotten referral's lines, seen ids and erase and forget lines", () => {
    expect(
      compact([
        { seq: 1, record: { seen: seen("e1", 1, "a"), rs: [{ referralId: "a", k: "x" }] } },
        { seq: 2, record: { seen: seen("e2", 2, "a"), rs: [] } },
        { seq: 3, record: { erase: { referralId: "a", cause: "retention", at: "t" } } },
        { seq: 4, record: { forget: { referralId: "a", at: "t" } } },
        { seq: 5, record: { seen: seen("e3", 3, "b"), rs: [] } },
      ]),
    ).toEqual([{ seq: 5, record: { seen: seen("e3", 3, "b"), rs: [] } }]);
  });

  it("keeps the events of a forgotten referral's unpublished plan, without its records", () => {
    expect(
      compact([
        { seq: 1, record: { seen: seen("e1", 1, "a"), rs: [{ referralId: "a", k: "x" }], out } },
        { seq: 2, record: { forget: { referralId: "a", at: "t" } } },
      ]),
    ).toEqual([{ seq: 1, record: { seen: seen("e1", 1, "a"), rs: [], out } }]);
  });

  it("keeps a crash suspect only while no later line handled that delivery", () => {
    expect(
      compact([
        { seq: 1, record: { tried: { durable: "d", seq: 7 } } },
        { seq: 2, record: { tried: { durable: "d", seq: 8 } } },
        { seq: 3, record: { seen: seen("e7", 7, "a"), rs: [] } },
      ]),
    ).toEqual([
      { seq: 2, record: { tried: { durable: "d", seq: 8 } } },
      { seq: 3, record: { seen: seen("e7", 7, "a"), rs: [] } },
    ]);
  });
});
