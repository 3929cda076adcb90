/**
 * A party's own durable state: an append-only journal of JSON records, one per line, replayed
 * at start-up. Appends that arrive together are written and fsynced together (group commit),
 * and `append` resolves only once its record is on disk. A torn last line (a crash mid-write)
 * is dropped on replay; it was never acknowledged.
 *
 * Every record has a place in the file (`JournalRef`), given on replay and by `append`, and
 * `read` fetches it again: a service keeps large parts (signed bytes it may forward later) on
 * disk and only their place in memory.
 */
import {
  closeSync,
  existsSync,
  fdatasync,
  ftruncateSync,
  mkdirSync,
  openSync,
  fstatSync,
  readFileSync,
  readSync,
  write,
} from "node:fs";
import { dirname } from "node:path";

/** Where a record's line is in the journal file: byte offset and length (with its newline). */
export interface JournalRef {
  offset: number;
  length: number;
}

export class Journal<R> {
  private readonly fd: number;
  /** Bytes in the file: where the next line goes (the file is only appended to). */
  private size: number;
  private queue: {
    line: string;
    resolve: (at: JournalRef) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private flushing = false;
  private closed = false;
  private inFlight: Promise<void> = Promise.resolve();

  private constructor(fd: number, size: number) {
    this.fd = fd;
    this.size = size;
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
    const fd = openSync(path, "a+", 0o600);
    if (existsSync(path)) ftruncateSync(fd, validBytes);
    return { journal: new Journal<R>(fd, validBytes), records };
  }

  /** The record at `at` (from `open` or `append`), read back from the file. */
  read(at: JournalRef): R {
    const buffer = Buffer.alloc(at.length);
    const n = readSync(this.fd, buffer, 0, at.length, at.offset);
    if (n !== at.length || buffer[at.length - 1] !== 0x0a)
      throw new Error(`no journal record at ${at.offset}`);
    return JSON.parse(buffer.toString("utf8", 0, at.length - 1)) as R;
  }

  /** Resolves, once the record is on disk, with where it is. */
  append(record: R): Promise<JournalRef> {
    if (this.closed) return Promise.reject(new Error("journal is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ line: `${JSON.stringify(record)}\n`, resolve, reject });
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
   * Writes and fsyncs the queued records off the event loop (libuv's thread pool): a service
   * keeps handling messages while the disk works, and the next batch collects meanwhile.
   */
  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    this.inFlight = new Promise<void>((done) => {
      const text = batch.map((b) => b.line).join("");
      const finish = (err: NodeJS.ErrnoException | null): void => {
        let offset = this.size;
        for (const b of batch) {
          const length = Buffer.byteLength(b.line);
          if (err === null) b.resolve({ offset, length });
          else b.reject(err);
          offset += length;
        }
        // After a failed write the file may hold part of the batch: go on from its real end.
        this.size = err === null ? offset : fstatSync(this.fd).size;
        if (this.queue.length > 0) setImmediate(() => this.flush());
        else this.flushing = false;
        done();
      };
      write(this.fd, text, (err) => {
        if (err !== null) finish(err);
        else fdatasync(this.fd, finish);
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
