import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { StafettError } from "./errors.js";
import { createLogger } from "./logger.js";
import { failing, logReadiness, passing, Readiness } from "./readiness.js";

describe("Readiness", () => {
  it("is ready when every registered and reported check passes, naming each", async () => {
    const r = new Readiness({ maxAgeMs: 0 });
    r.register("nats", () => passing());
    r.report("watcher", passing("a note"));
    expect(await r.evaluate()).toEqual({
      ready: true,
      failing: [],
      checks: { nats: { ok: true }, watcher: { ok: true, note: "a note" } },
    });
  });

  it("names every failing check with its code, reason and message", async () => {
    const r = new Readiness({ maxAgeMs: 0 });
    r.register("nats", () => failing("ERR_UNAVAILABLE", "disconnected", "not connected"));
    r.register("journal", () => passing());
    r.report("consumer", failing("ERR_NOT_FOUND", "consumer_missing", "gone"));
    const report = await r.evaluate();
    expect(report.ready).toBe(false);
    expect(report.failing).toEqual(["consumer", "nats"]);
    expect(report.checks.nats).toEqual({
      ok: false,
      code: "ERR_UNAVAILABLE",
      reason: "disconnected",
      message: "not connected",
    });
  });

  it("counts a check that hangs past its time limit, or throws, as failing", async () => {
    const r = new Readiness({ maxAgeMs: 0, checkTimeoutMs: 20 });
    r.register("slow", () => new Promise(() => undefined));
    r.register("thrower", () => {
      throw new TypeError("a library said something with a value in it");
    });
    r.register("coded", () => {
      throw new StafettError("ERR_NOT_FOUND", "no such consumer", { reason: "consumer_missing" });
    });
    const { checks } = await r.evaluate();
    expect(checks.slow).toMatchObject({ ok: false, code: "ERR_UNAVAILABLE", reason: "timeout" });
    // Only the class name of an uncoded error is shown, never its message.
    expect(checks.thrower).toEqual({
      ok: false,
      code: "ERR_UNAVAILABLE",
      reason: "check_failed",
      message: "the thrower check failed (TypeError)",
    });
    expect(checks.coded).toMatchObject({ code: "ERR_NOT_FOUND", reason: "consumer_missing" });
  });

  it("a reported state holds until reported again or cleared; a removed check is gone", async () => {
    const r = new Readiness({ maxAgeMs: 0 });
    const remove = r.register("nats", () => passing());
    r.report("watcher", failing("ERR_UNAVAILABLE", "stopped", "the watcher stopped"));
    expect((await r.evaluate()).failing).toEqual(["watcher"]);
    r.report("watcher", passing());
    expect((await r.evaluate()).ready).toBe(true);
    r.clear("watcher");
    remove();
    expect((await r.evaluate()).checks).toEqual({});
  });

  it("runs the checks once for a burst of probes within maxAgeMs", async () => {
    const r = new Readiness({ maxAgeMs: 60_000 });
    let runs = 0;
    r.register("counted", () => {
      runs += 1;
      return passing();
    });
    await Promise.all([r.evaluate(), r.evaluate(), r.evaluate()]);
    await r.evaluate();
    expect(runs).toBe(1);
  });

  it("refuses a name that is not a short lower-case label, and a name given twice", () => {
    const r = new Readiness();
    expect(() => r.register("Bad Name", () => passing())).toThrow(/not valid/);
    r.register("nats", () => passing());
    expect(() => r.register("nats", () => passing())).toThrow(/twice/);
    expect(() => r.report("nats", passing())).toThrow(/registered/);
  });
});

describe("logReadiness", () => {
  it("logs a check as it starts failing (code, reason) and once as it passes again", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    const log = createLogger({ service: "test" }, sink);
    const r = new Readiness({ maxAgeMs: 0 });
    let state = failing("ERR_EXPIRING", "trust_list", "the se trust list expires in 3 d");
    r.register("trust", () => state);
    logReadiness(r, log);
    await r.evaluate();
    await r.evaluate();
    state = passing();
    await r.evaluate();
    await r.evaluate();
    expect(lines.map((l) => [l.msg, l.check, l.code, l.reason])).toEqual([
      ["readiness check failing", "trust", "ERR_EXPIRING", "trust_list"],
      ["readiness check passes again", "trust", undefined, undefined],
    ]);
  });
});
