/**
 * A party's own durable state: an append-only journal of JSON records, one per line, replayed
 * at start-up. Appends that arrive together are written and fsynced together (group commit),
 * and `append` resolves only once its record is on disk. A torn last line (a crash mid-write)
 * is dropped on replay; it was never acknowledged.
 */
import {
  closeSync,
  existsSync,
  fdatasync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  write,
} from "node:fs";
import { dirname } from "node:path";

export class Journal<R> {
  private readonly fd: number;
  private queue: { line: string; resolve: () => void; reject: (e: unknown) => void }[] = [];
  private flushing = false;
  private closed = false;
  private inFlight: Promise<void> = Promise.resolve();

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Opens (or creates) the journal at `path` and returns it with the records it holds. */
  static open<R>(path: string): { journal: Journal<R>; records: R[] } {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const records: R[] = [];
    let validBytes = 0;
    if (existsSync(path)) {
      const text = readFileSync(path, "utf8");
      // Only newline-terminated lines were ever acknowledged; the piece after the last newline
      // is empty or a torn write.
      for (const line of text.split("\n").slice(0, -1)) {
        try {
          records.push(JSON.parse(line) as R);
        } catch {
          break;
        }
        validBytes += Buffer.byteLength(line) + 1;
      }
    }
    const fd = openSync(path, "a+", 0o600);
    if (existsSync(path)) ftruncateSync(fd, validBytes);
    return { journal: new Journal<R>(fd), records };
  }

  append(record: R): Promise<void> {
    if (this.closed) return Promise.reject(new Error("journal is closed"));
    return new Promise((resolve, reject) => {
      this.queue.push({ line: `${JSON.stringify(record)}\n`, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
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
      const finish = (err: NodeJS.ErrnoException | null): void => {
        for (const b of batch) {
          if (err === null) b.resolve();
          else b.reject(err);
        }
        if (this.queue.length > 0) setImmediate(() => this.flush());
        else this.flushing = false;
        done();
      };
      write(this.fd, batch.map((b) => b.line).join(""), (err) => {
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
