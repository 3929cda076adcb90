/**
 * A party's own durable state: an append-only journal of JSON records, one per line, replayed
 * at start-up. Appends that arrive together are written, durably, together (group commit), and
 * `append` resolves only once its record is on disk. A torn last line (a crash mid-write)
 * is dropped on replay; it was never acknowledged.
 *
 * Every record has a place in the file (`JournalRef`), given on replay and by `append`, and
 * `read` fetches it again: a service keeps large parts (signed bytes it may forward later) on
 * disk and only their place in memory.
 */
import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  write,
} from "node:fs";
import { dirname } from "node:path";

/** Where a record's line is in the journal file: byte offset and length (with its newline). */
export interface JournalRef {
  offset: number;
  length: number;
  /** Which record of that line, when a line holds several (the journal's user decides). */
  index?: number;
}

export class Journal<R> {
  private readonly fd: number;
  /** Bytes in the file: where the next line goes (the file is only appended to). */
  private size: number;
  private queue: {
    /** The record's JSON (one line, without its newline). */
    json: string;
    resolve: (at: JournalRef) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private flushing = false;
  /** Set when the file can no longer be trusted: every append is refused with it. */
  private broken: Error | undefined;
  private closed = false;
  private inFlight: Promise<void> = Promise.resolve();

  /**
   * The file was opened with O_DSYNC: each write returns once its data is on disk, as a write
   * followed by fdatasync would, in one system call and one trip to libuv's thread pool instead
   * of two (on a small VM, handing a job to the pool costs tens of microseconds of the event
   * loop's time). Where O_DSYNC does not exist (Windows), every write is followed by fdatasync.
   */
  private readonly dsync: boolean;

  /**
   * Told of every append once it settles: how long it took, in seconds, and whether it failed
   * (operations' metrics; set by the party).
   */
  onAppend: ((seconds: number, failed: boolean) => void) | undefined;

  /** Why every append is now refused (a failed sync: restart the service); undefined while it works. */
  get failure(): Error | undefined {
    return this.broken;
  }

  private constructor(fd: number, size: number, dsync: boolean) {
    this.fd = fd;
    this.size = size;
    this.dsync = dsync;
  }

  /** Opens (or creates) the journal at `path` and returns it with the records it holds. */
  static open<R>(path: string): { journal: Journal<R>; records: { record: R; at: JournalRef }[] } {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const records: { record: R; at: JournalRef }[] = [];
    let validBytes = 0;
    if (existsSync(path)) {
      const text = readFileSync(path, "utf8");
      // Only newline-terminated lines were ever acknowledged; the piece after the last newline
      // is empty or a torn write.
      for (const line of text.split("\n").slice(0, -1)) {
        const length = Buffer.byteLength(line) + 1;
        try {
          records.push({ record: JSON.parse(line) as R, at: { offset: validBytes, length } });
        } catch {
          break;
        }
        validBytes += length;
      }
    }
    const dsync = typeof constants.O_DSYNC === "number";
    const flags = constants.O_RDWR | constants.O_CREAT | constants.O_APPEND;
    const fd = openSync(path, dsync ? flags | constants.O_DSYNC : flags, 0o600);
    ftruncateSync(fd, validBytes);
    return { journal: new Journal<R>(fd, validBytes, dsync), records };
  }

  /** The record at `at` (from `open` or `append`), read back from the file. */
  read(at: JournalRef): R {
    if (this.closed) throw new Error("journal is closed");
    const buffer = Buffer.alloc(at.length);
    const n = readSync(this.fd, buffer, 0, at.length, at.offset);
    if (n !== at.length || buffer[at.length - 1] !== 0x0a)
      throw new Error(`no journal record at ${at.offset}`);
    return JSON.parse(buffer.toString("utf8", 0, at.length - 1)) as R;
  }

  /** Resolves, once the record is on disk, with where it is. */
  append(record: R): Promise<JournalRef> {
    const observe = this.onAppend;
    if (observe === undefined) return this.appendOnce(record);
    const started = performance.now();
    const appended = this.appendOnce(record);
    appended.then(
      () => observe((performance.now() - started) / 1_000, false),
      () => observe((performance.now() - started) / 1_000, true),
    );
    return appended;
  }

  private appendOnce(record: R): Promise<JournalRef> {
    if (this.closed) return Promise.reject(new Error("journal is closed"));
    if (this.broken !== undefined) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.queue.push({ json: JSON.stringify(record), resolve, reject });
      if (!this.flushing) {
        // Once the code that appended has run to its next await: the records it appended
        // together go in one write, and the disk starts while it goes on (sealing, signing).
        // What is appended while a write is under way goes in the next one (group commit).
        this.flushing = true;
        queueMicrotask(() => this.flush());
      }
    });
  }

  /**
   * Writes the queued records durably (O_DSYNC, or write and fdatasync) off the event loop
   * (libuv's thread pool): a service keeps handling messages while the disk works, and the next
   * batch collects meanwhile.
   *
   * A write that falls short is taken back (the file is cut to where it was), so that no later
   * record follows a fragment, which replay would stop at. A failed sync (or, with O_DSYNC, a
   * failed write) leaves what is on disk unknown: the journal then refuses everything, and the
   * service must restart.
   */
  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    this.inFlight = new Promise<void>((done) => {
      // Each record written as UTF-8 straight into one buffer, then its newline: no joined or
      // flattened copy of the lines on the JavaScript heap (a hub's line holds a whole event).
      const lines = batch.map((b) => ({ ...b, length: Buffer.byteLength(b.json) + 1 }));
      const bytes = Buffer.alloc(lines.reduce((n, l) => n + l.length, 0));
      let at = 0;
      for (const l of lines) {
        at += bytes.write(l.json, at);
        bytes[at++] = 0x0a;
      }
      const settle = (err: Error | null): void => {
        let offset = this.size;
        for (const l of lines) {
          if (err === null) l.resolve({ offset, length: l.length });
          else l.reject(err);
          offset += l.length;
        }
        if (err === null) this.size = offset;
        if (this.broken !== undefined) {
          for (const b of this.queue.splice(0)) b.reject(this.broken);
        }
        // The next batch starts now (not on a later turn): close() waits on it.
        if (this.queue.length > 0) this.flush();
        else this.flushing = false;
        done();
      };
      write(this.fd, bytes, 0, bytes.length, null, (err, written) => {
        const failed =
          err ??
          (written === bytes.length
            ? null
            : new Error(`journal write fell short: ${written} of ${bytes.length} bytes`));
        if (failed !== null) {
          try {
            ftruncateSync(this.fd, this.size);
          } catch (cause) {
            this.broken = new Error("journal cannot be repaired after a failed write", { cause });
          }
          // With O_DSYNC a failed write may be a failed sync: what is on disk is then unknown.
          if (err !== null && this.dsync)
            this.broken ??= new Error("journal write failed; restart the service", { cause: err });
          settle(failed);
          return;
        }
        if (this.dsync) {
          settle(null);
          return;
        }
        fdatasync(this.fd, (syncErr) => {
          if (syncErr !== null)
            this.broken = new Error("journal fsync failed; restart the service", {
              cause: syncErr,
            });
          settle(syncErr);
        });
      });
    });
  }

  /** Waits for what is being written, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing || this.queue.length > 0) {
      if (!this.flushing) this.flush();
      await this.inFlight;
    }
    closeSync(this.fd);
  }
}
