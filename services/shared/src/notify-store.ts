/**
 * A party's notifications and their delivery: a durable outbox in its own state directory
 * (`notifications.jsonl`, beside the journal, written the same way: append-only JSON lines,
 * O_DSYNC, a torn last line dropped; journal.ts).
 *
 * Lines:
 * - `{ seq, n, to }`: a notification, once, with its place in the live event stream (`seq`,
 *   1, 2, 3, ...: the SSE event id that Last-Event-ID resumes after) and who must get it (`to`:
 *   webhook endpoint names, and "mail" for an alert to the people on duty);
 * - `{ baseline }`: the ids of the notifications that the records already in the journal led to
 *   when this file was created: a party that starts notifying does not send its history;
 * - `{ retry, to, attempt, next, status }`: an attempt failed; the next is not before `next`;
 * - `{ ok, to, attempts }`: delivered; `{ dead, to, attempts }`: given up after the last retry;
 * - `{ off, url, status }`: an endpoint answered 410 Gone and gets nothing more.
 *
 * Replayed at start, the lines give back what is still to deliver and when, so deliveries
 * survive restarts with their ids and their back-off. Memory holds each notification's place in
 * the file, not the notification.
 */
import { join } from "node:path";
import { Journal, type JournalRef } from "./journal.js";
import type { Notification } from "./notifications.js";

export const NOTIFICATIONS_FILE = "notifications.jsonl";

/** Who a delivery goes to: a webhook endpoint's name, or `MAIL` for the e-mail alert. */
export const MAIL = "mail";

export type OutboxLine =
  | { seq: number; n: Notification; to: string[] }
  | { baseline: string[] }
  | { retry: string; to: string; attempt: number; next: string; status: string }
  | { ok: string; to: string; attempts: number }
  | { dead: string; to: string; attempts: number }
  | { off: string; url: string; status: number };

/** A delivery still to make: notification `id` to `to`, attempt `attempt` not before `due` (ms). */
export interface PendingDelivery {
  id: string;
  to: string;
  attempt: number;
  due: number;
}

const keyOf = (id: string, to: string): string => `${to}\u001f${id}`;

export class NotificationStore {
  private readonly journal: Journal<OutboxLine>;
  /** Notification id -> its seq. */
  private readonly seqOf = new Map<string, number>();
  /** Seq - 1 -> where the notification's line is. */
  private readonly places: JournalRef[] = [];
  /** Ids never to send (the history when the file was created). */
  private readonly baseline = new Set<string>();
  readonly pending = new Map<string, PendingDelivery>();
  /** Endpoint name -> the URL that answered 410. */
  readonly disabled = new Map<string, string>();
  /** Whether the file was created now (the party has not notified before). */
  readonly fresh: boolean;
  /** The seq of the last notification on disk. */
  private durable = 0;
  /** The seq given to the last notification accepted (on disk or being written). */
  private assigned = 0;

  private constructor(journal: Journal<OutboxLine>, fresh: boolean) {
    this.journal = journal;
    this.fresh = fresh;
  }

  static open(stateDir: string): NotificationStore {
    const { journal, records } = Journal.open<OutboxLine>(join(stateDir, NOTIFICATIONS_FILE));
    const store = new NotificationStore(journal, records.length === 0);
    for (const { record, at } of records) store.replay(record, at);
    return store;
  }

  private replay(line: OutboxLine, at: JournalRef): void {
    if ("seq" in line) {
      this.seqOf.set(line.n.id, line.seq);
      this.places[line.seq - 1] = at;
      this.durable = this.assigned = Math.max(this.durable, line.seq);
      for (const to of line.to)
        this.pending.set(keyOf(line.n.id, to), { id: line.n.id, to, attempt: 1, due: 0 });
    } else if ("baseline" in line) {
      for (const id of line.baseline) this.baseline.add(id);
    } else if ("retry" in line) {
      const p = this.pending.get(keyOf(line.retry, line.to));
      if (p !== undefined) {
        p.attempt = line.attempt + 1;
        p.due = Date.parse(line.next);
      }
    } else if ("ok" in line) {
      this.pending.delete(keyOf(line.ok, line.to));
    } else if ("dead" in line) {
      this.pending.delete(keyOf(line.dead, line.to));
    } else if ("off" in line) {
      this.disabled.set(line.off, line.url);
      for (const [k, p] of this.pending) if (p.to === line.off) this.pending.delete(k);
    }
  }

  /** Whether a notification with this id was stored (or is part of the baseline). */
  has(id: string): boolean {
    return this.seqOf.has(id) || this.baseline.has(id);
  }

  /** The seq of the last notification on disk: what a live stream has been able to see. */
  get lastSeq(): number {
    return this.durable;
  }

  /**
   * Stores a notification with the deliveries it needs; resolves with its seq once on disk.
   * The caller checked `has` first; a second call with the same id resolves with the first seq.
   */
  async add(n: Notification, to: readonly string[]): Promise<number> {
    const known = this.seqOf.get(n.id);
    if (known !== undefined) return known;
    const seq = ++this.assigned;
    this.seqOf.set(n.id, seq);
    const at = await this.journal.append({ seq, n, to: [...to] });
    this.places[seq - 1] = at;
    // Appends resolve in the order they were made: the stream's seqs stay contiguous.
    this.durable = Math.max(this.durable, seq);
    for (const t of to) this.pending.set(keyOf(n.id, t), { id: n.id, to: t, attempt: 1, due: 0 });
    return seq;
  }

  /**
   * Records the ids of notifications the history led to: never to be sent. A new outbox writes
   * the line even when there are none, so that it is never taken for new again.
   */
  async addBaseline(ids: readonly string[], always = false): Promise<void> {
    if (ids.length === 0 && !always) return;
    for (const id of ids) this.baseline.add(id);
    await this.journal.append({ baseline: [...ids] });
  }

  /** The notification with this seq, read back from the file. */
  bySeq(seq: number): Notification | undefined {
    const at = this.places[seq - 1];
    if (at === undefined) return undefined;
    const line = this.journal.read(at);
    return "seq" in line ? line.n : undefined;
  }

  byId(id: string): Notification | undefined {
    const seq = this.seqOf.get(id);
    return seq === undefined ? undefined : this.bySeq(seq);
  }

  async failed(d: PendingDelivery, next: number, status: string): Promise<void> {
    await this.journal.append({
      retry: d.id,
      to: d.to,
      attempt: d.attempt,
      next: new Date(next).toISOString(),
      status,
    });
    const p = this.pending.get(keyOf(d.id, d.to));
    if (p !== undefined) {
      p.attempt = d.attempt + 1;
      p.due = next;
    }
  }

  async delivered(d: PendingDelivery): Promise<void> {
    await this.journal.append({ ok: d.id, to: d.to, attempts: d.attempt });
    this.pending.delete(keyOf(d.id, d.to));
  }

  async gaveUp(d: PendingDelivery): Promise<void> {
    await this.journal.append({ dead: d.id, to: d.to, attempts: d.attempt });
    this.pending.delete(keyOf(d.id, d.to));
  }

  /** An endpoint answered 410: it gets nothing more (while its URL stays the same). */
  async disable(name: string, url: string, status: number): Promise<void> {
    await this.journal.append({ off: name, url, status });
    this.disabled.set(name, url);
    for (const [k, p] of this.pending) if (p.to === name) this.pending.delete(k);
  }

  close(): Promise<void> {
    return this.journal.close();
  }
}
