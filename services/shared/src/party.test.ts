import { describe, expect, it } from "vitest";
import { readJournalLine, type JournalLine } from "./party.js";

const at = { offset: 120, length: 80 };
const seen = { id: "6e0a2c9f-4b81-4d35-8f7e-3a9c1b5d2e60", seq: 7, durable: "se-hub-vast" };

describe("journal lines", () => {
  it("one line holds a handled message and every record it led to, each with its place", () => {
    const line: JournalLine<{ k: string }> = { seen, rs: [{ k: "received" }, { k: "forwarded" }] };
    expect(readJournalLine(line, at)).toEqual({
      seen,
      records: [
        { record: { k: "received" }, at: { ...at, index: 0 } },
        { record: { k: "forwarded" }, at: { ...at, index: 1 } },
      ],
    });
  });

  it("a step without a message (an API action) is records only", () => {
    expect(readJournalLine({ rs: [{ k: "triage" }] }, at)).toEqual({
      records: [{ record: { k: "triage" }, at: { ...at, index: 0 } }],
    });
  });

  it("still reads the lines of journals written one record per line", () => {
    expect(readJournalLine({ seen }, at)).toEqual({ seen, records: [] });
    expect(readJournalLine({ r: { k: "received" } }, at)).toEqual({
      records: [{ record: { k: "received" }, at }],
    });
  });
});
