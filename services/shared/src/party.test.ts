import { describe, expect, it } from "vitest";
import { readJournalLine, type JournalLine } from "./party.js";

const at = { offset: 120, length: 80 };
const seen = { id: "6e0a2c9f-4b81-4d35-8f7e-3a9c1b5d2e60", seq: 7, durable: "se-hub-vast" };
const out = [
  { subject: "stafett.se.vast.hub.opened", headers: { "Nats-Msg-Id": "x" }, bytes: "AAEC" },
];

describe("journal lines", () => {
  it("one line holds a handled message, every record it led to, each with its place, and what it sends", () => {
    const line: JournalLine<{ k: string }> = {
      seen,
      rs: [{ k: "received" }, { k: "forwarded" }],
      out,
    };
    expect(readJournalLine(line, at)).toEqual({
      seen,
      records: [
        { record: { k: "received" }, at: { ...at, index: 0 } },
        { record: { k: "forwarded" }, at: { ...at, index: 1 } },
      ],
      out,
    });
  });

  it("a step without a message (an API action) is records, and what it sends", () => {
    expect(readJournalLine({ rs: [{ k: "triage" }] }, at)).toEqual({
      records: [{ record: { k: "triage" }, at: { ...at, index: 0 } }],
    });
    expect(readJournalLine({ rs: [], out }, at)).toEqual({ records: [], out });
  });

  it("a plan published, and a delivery tried alone, are lines of their own", () => {
    expect(readJournalLine({ done: 12 }, at)).toEqual({ records: [], done: 12 });
    const tried = { durable: "se-hub-vast", seq: 7 };
    expect(readJournalLine({ tried }, at)).toEqual({ records: [], tried });
  });

  it("still reads the lines of journals written one record per line", () => {
    expect(readJournalLine({ seen }, at)).toEqual({ seen, records: [] });
    expect(readJournalLine({ r: { k: "received" } }, at)).toEqual({
      records: [{ record: { k: "received" }, at }],
    });
  });
});
