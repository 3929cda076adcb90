import { headers } from "@nats-io/transport-node";
import { describe, expect, it } from "vitest";
import { natsHeadersOf } from "./bus.js";

describe("natsHeadersOf", () => {
  const record = {
    "ce-specversion": "1.0",
    "ce-id": "0b6f4e52-3c1d-4a8e-9f27-5d84c1e0a6b3",
    "ce-source": "se:municipality:0180",
    "Content-Type": "application/protobuf; messageType=stafett.v1.SignedEvent",
    "Stafett-Reject-Reason": "  padded  ",
  };

  it("builds the same header block as nats-core's own append", () => {
    const reference = headers();
    for (const [k, v] of Object.entries(record)) reference.append(k, v);
    const built = natsHeadersOf(record);
    expect(built.toString()).toBe(reference.toString());
    expect(built.get("ce-id")).toBe(record["ce-id"]);
    expect(built.get("Stafett-Reject-Reason")).toBe("padded");
  });

  it("refuses what nats-core refuses: a bad field name, CR or LF in a value", () => {
    for (const name of ["a:b", "a b", "é"]) {
      expect(() => natsHeadersOf({ [name]: "x" })).toThrow(/header name/);
      expect(() => headers().append(name, "x")).toThrow();
    }
    // Stricter than nats-core, which lets an empty name through.
    expect(() => natsHeadersOf({ "": "x" })).toThrow(/header name/);
    for (const value of ["a\r\nInjected: 1", "a\nb", "a\rb"]) {
      expect(() => natsHeadersOf({ "ce-id": value })).toThrow(/CR or LF/);
      expect(() => headers().append("ce-id", value)).toThrow();
    }
  });
});
