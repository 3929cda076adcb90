import { describe, expect, it } from "vitest";
import { Turns } from "./mutex.js";

/** A promise and its resolver, to hold a turn open. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

describe("Turns", () => {
  it("runs shared turns side by side, an exclusive one alone, before shared ones asked for after it", async () => {
    const turns = new Turns();
    const log: string[] = [];
    const a = gate();
    const b = gate();
    const s1 = turns.run(false, async () => {
      log.push("s1 in");
      await a.opened;
      log.push("s1 out");
    });
    const s2 = turns.run(false, async () => {
      log.push("s2 in");
      await b.opened;
      log.push("s2 out");
    });
    const x = turns.run(true, async () => {
      log.push("x in");
      await Promise.resolve();
      log.push("x out");
      return 7;
    });
    const s3 = turns.run(false, async () => {
      log.push("s3");
    });
    await new Promise((r) => setImmediate(r));
    expect(log).toEqual(["s1 in", "s2 in"]);
    a.open();
    await s1;
    expect(log).toEqual(["s1 in", "s2 in", "s1 out"]);
    b.open();
    expect(await x).toBe(7);
    await Promise.all([s2, s3]);
    expect(log).toEqual(["s1 in", "s2 in", "s1 out", "s2 out", "x in", "x out", "s3"]);
  });

  it("frees the turn when the work throws", async () => {
    const turns = new Turns();
    await expect(
      turns.run(true, async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await turns.run(false, async () => "next")).toBe("next");
  });
});
