import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../../../test/support/wait.js";
import { createLogger } from "./logger.js";
import { deadlineWatch, notificationId, type Derived, type Notification } from "./notifications.js";
import { DEFAULT_NOTIFY_CONFIG, Notifier, type NotifyConfig } from "./notifier.js";

const ORG = "se:municipality:1480";
const log = createLogger({ service: "notifier-test", level: "silent" });
const dirs: string[] = [];
const open: Notifier[] = [];

function stateDir(): string {
  const d = mkdtempSync(join(tmpdir(), "stafett-notifier-"));
  dirs.push(d);
  return d;
}

function notifier(dir: string, config: Partial<NotifyConfig> = {}): Notifier {
  const n = Notifier.open(dir, ORG, { ...DEFAULT_NOTIFY_CONFIG, ...config }, log);
  open.push(n);
  return n;
}

afterEach(async () => {
  for (const n of open.splice(0)) await n.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const inboxNew = (referralId: string): Derived => ({
  notify: {
    id: notificationId(ORG, "inbox.new", referralId),
    type: "inbox.new",
    at: "2026-11-27T02:00:00.000Z",
    data: { org: ORG, referralId, urgency: "URGENCY_IMMEDIATE", path: `/v1/inbox/${referralId}` },
  },
});

const stored = (n: Notifier): string[] => [...n.since(0)].map(([, x]) => x.data.referralId ?? "");

describe("the notifier's outbox", () => {
  it("records what the history leads to as seen, not sent, when it is new", async () => {
    const dir = stateDir();
    const first = notifier(dir);
    first.observe([inboxNew("a"), inboxNew("b")]); // replayed from the journal
    first.replayed();
    first.observe([inboxNew("c")]); // live
    await waitFor(() => first.store.lastSeq === 1, { message: "the live one stored" });
    expect(stored(first)).toEqual(["c"]);
    await first.stop();
    open.splice(0);
    // After a restart the history is not taken for new either.
    const second = notifier(dir);
    second.observe([inboxNew("a"), inboxNew("b"), inboxNew("c")]);
    second.replayed();
    expect(second.store.fresh).toBe(false);
    expect(stored(second)).toEqual(["c"]);
  });

  it("stores on replay what a crash kept out of it, once, with the next seq", async () => {
    const dir = stateDir();
    const first = notifier(dir);
    first.replayed();
    first.observe([inboxNew("a")]);
    await waitFor(() => first.store.lastSeq === 1, { message: "stored" });
    await first.stop();
    open.splice(0);
    // The journal had "b" too, but the outbox never got it (a crash in between).
    const second = notifier(dir);
    second.observe([inboxNew("a"), inboxNew("b")]);
    second.replayed();
    await waitFor(() => second.store.lastSeq === 2, { message: "the missing one stored" });
    expect([...second.since(0)].map(([seq, x]) => [seq, x.data.referralId])).toEqual([
      [1, "a"],
      [2, "b"],
    ]);
    expect([...second.since(1)].map(([seq]) => seq)).toEqual([2]);
  });

  it("tells a subscriber each notification once it is on disk", async () => {
    const n = notifier(stateDir());
    n.replayed();
    const told: [number, Notification][] = [];
    n.subscribe((seq, x) => told.push([seq, x]));
    n.observe([inboxNew("a"), inboxNew("a"), inboxNew("b")]);
    await waitFor(() => told.length === 2, { message: "two told" });
    expect(told.map(([seq, x]) => [seq, x.data.referralId])).toEqual([
      [1, "a"],
      [2, "b"],
    ]);
    expect(n.store.lastSeq).toBe(2);
  });
});

describe("a deadline watch", () => {
  const watch = (referralId: string, startMs: number, deadlineMs: number): Derived =>
    deadlineWatch(
      ORG,
      "inbox",
      {
        referralId,
        urgency: "URGENCY_IMMEDIATE",
        start: new Date(startMs).toISOString(),
        deadline: new Date(deadlineMs).toISOString(),
      },
      `/v1/inbox/${referralId}`,
    );

  it("fires once at its share of the time, unless it was ended or the deadline has passed", async () => {
    const n = notifier(stateDir(), { deadlineShare: 0.5 });
    n.replayed();
    const now = Date.now();
    n.observe([
      watch("due", now, now + 400),
      watch("ended", now, now + 400),
      { unwatch: "inbox:ended" },
      watch("passed", now - 2_000, now - 1),
      watch("later", now, now + 3_600_000),
    ]);
    n.start("http://127.0.0.1");
    await waitFor(() => n.store.lastSeq >= 1, { message: "the watch to fire" });
    // Observed again (a replay, a second record): the same id is not stored twice.
    n.observe([watch("due", now, now + 400)]);
    expect(stored(n)).toEqual(["due"]);
    const [[, fired] = [0, undefined]] = [...n.since(0)];
    expect(fired?.type).toBe("referral.deadline");
    expect(fired?.data).toMatchObject({ scope: "inbox", urgency: "URGENCY_IMMEDIATE" });
  });
});

describe("a partner link", () => {
  it("alerts when down longer than the threshold, and tells when it is back", async () => {
    const n = notifier(stateDir(), { linkDownAfterMs: 50 });
    n.replayed();
    n.start("http://127.0.0.1");
    n.linkState("no", false);
    n.linkState("dk", false);
    n.linkState("dk", true); // back before the threshold: nothing
    await waitFor(() => n.store.lastSeq === 1, { message: "the link-down alert" });
    n.linkState("no", true);
    await waitFor(() => n.store.lastSeq === 2, { message: "the link-up notice" });
    expect([...n.since(0)].map(([, x]) => [x.type, x.data.partner])).toEqual([
      ["link.down", "no"],
      ["link.up", "no"],
    ]);
  });
});
