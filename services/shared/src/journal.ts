/**
 * A party's own durable state: an append-only journal of JSON records, one per line, replayed
 * at start-up. Appends that arrive together are written, durably, together (group commit), and
 * `append` resolves only once its record is on disk.
 *
 * Every line carries a sequence number and a CRC-32 of its content:
 *
 *     <seq> <crc32, 8 hex digits> <JSON object>\n
 *
 * (the checksum covers the sequence number's digits and the JSON bytes). Start-up verifies
 * every line. A journal is never silently shortened:
 * - a torn tail (a crash mid-write: damaged or unterminated lines with no good line after them)
 *   was never acknowledged; it is cut off, and its bytes are kept aside in
 *   `<journal>.torn-<time>` (reported, so the caller can log it);
 * - damage in the middle (a bad checksum, an unparsable line, a line that is not an object, a
 *   sequence number out of order) stops the start with `ERR_JOURNAL_DAMAGED`, naming the file
 *   and the byte offset; `Journal.check` and `Journal.repair` (`stafett journal check|repair`)
 *   examine it and, on an operator's word, keep the damaged lines aside and the rest in place;
 * - a line repeated under the same sequence number (a duplicated record) is replayed once.
 * Lines written before checksums existed (a JSON object per line, no prefix) still replay, as
 * long as they all come before the first checksummed line.
 *
 * A write that fails (a full disk, an I/O error) is taken back (the file is cut to where it
 * was), the appends in it are refused with `ERR_JOURNAL_WRITE` and the journal reports itself
 * unhealthy, refusing appends at once, while it probes the disk every `probeMs`: once a probe
 * line as large as the failed write (and at least PROBE_HEADROOM) is durably written it is
 * healthy again, by itself. If the file cannot even be cut back,
 * the journal is "broken" until a probe manages to.
 *
 * Every record has a place in the file (`JournalRef`), given on replay and by `append`, and
 * `read` fetches it again (verifying its checksum): a service keeps large parts (signed bytes
 * it may forward later) on disk and only their place in memory.
 */
import {
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  write,
  writeFileSync,
  writeSync,
} from "node:fs";
import { dirname } from "node:path";
import { crc32 } from "node:zlib";
import { StafettError } from "./errors.js";
import { crashPoint } from "./faults.js";

/** Where a record's line is in the journal file: byte offset and length (with its newline). */
export interface JournalRef {
  offset: number;
  length: number;
  /** Which record of that line, when a line holds several (the journal's user decides). */
  index?: number;
}

/** Where an appended record went, and the sequence number its line carries. */
export interface Appended extends JournalRef {
  seq: number;
}

/** A record read at start-up: where it is, and its sequence number (none for an old line). */
export interface Replayed<R> {
  record: R;
  at: JournalRef;
  seq?: number;
}

/** Why appends are refused. */
export type JournalFault = "disk_full" | "io_error" | "broken";

export interface JournalHealth {
  ok: boolean;
  /** Why not, while not ok. */
  reason?: JournalFault;
  /** Since when (ISO time), while not ok. */
  since?: string;
}

/** What opening found besides the records: a torn tail cut off, repeated lines skipped. */
export interface OpenReport {
  /** The torn tail that was cut off, where it began, how long it was, and where it was kept. */
  torn?: { offset: number; bytes: number; keptIn: string };
  /** Lines repeated under a sequence number already replayed (skipped). */
  duplicates: number;
  /** Lines without checksums (written before they existed). */
  legacy: number;
}

export interface JournalOptions {
  /** Told when the journal becomes unhealthy or healthy again. */
  onHealth?: (health: JournalHealth, cause?: unknown) => void;
  /** How often an unhealthy journal probes the disk (default 1 000 ms). */
  probeMs?: number;
}

/** One damaged line, as `check` reports it. */
export interface Damage {
  offset: number;
  length: number;
  reason: DamageReason;
}

export type DamageReason =
  | "checksum"
  | "unparsable"
  | "not_an_object"
  | "out_of_order"
  | "unchecked_after_checked"
  | "unterminated";

/** What `Journal.check` found. */
export interface CheckReport {
  path: string;
  bytes: number;
  /** Good lines (records replayed), repeated lines not counted. */
  records: number;
  legacy: number;
  duplicates: number;
  /** Damaged lines followed by good ones: start-up refuses such a journal. */
  damaged: Damage[];
  /** Damaged or unterminated lines at the end, with no good line after them: dropped at start-up. */
  tornTail?: { offset: number; bytes: number };
}

/** What `Journal.repair` did. */
export interface RepairReport extends CheckReport {
  /** Where the damaged lines (and torn tail) were kept, when there were any. */
  keptIn?: string;
  /** A copy of the journal as it was before the repair. */
  backup?: string;
}

/**
 * Beside a compacted journal: `{ through }`, the sequence number of the marker line that ended
 * the compacted part. A journal that does not reach it (its tail lost, or the file gone) is
 * refused at start-up rather than replayed short or empty.
 */
export const COMPACTED_SUFFIX = ".compacted";
/** Where a compaction writes the new journal before it replaces the old one. */
const COMPACT_TMP_SUFFIX = ".compact-tmp";

/** A line as a compaction keeps it: its sequence number (kept) and its record. */
export interface KeptLine<R> {
  seq: number;
  record: R;
}

/** What a compaction did. */
export interface CompactReport<R> {
  bytesBefore: number;
  bytesAfter: number;
  linesBefore: number;
  linesAfter: number;
  /** The records of the compacted journal, with their places, to replay. */
  records: Replayed<R>[];
}

/** The least room a probe must find before an unhealthy journal takes appends again. */
export const PROBE_HEADROOM = 64 * 1_024;

/** Records written by the journal itself (a probe after a fault) carry this key; never replayed. */
const INTERNAL_KEY = "~";

const NEWLINE = 0x0a;
const SPACE = 0x20;
const OPEN_BRACE = 0x7b;

interface ScannedLine {
  offset: number;
  /** Length with the newline (or to the end of the file, for an unterminated piece). */
  length: number;
  ok: boolean;
  reason?: DamageReason;
  record?: unknown;
  /** Written by the journal itself (a probe, a compaction's marker): never replayed. */
  internal?: boolean;
  seq?: number;
  duplicate?: boolean;
}

/**
 * Reads every line of a journal file and judges it (no side effects). Without `keep`, the
 * records are parsed to judge them but not kept (replay parses them again, one at a time).
 */
function scan(bytes: Buffer, keep = true): ScannedLine[] {
  const lines: ScannedLine[] = [];
  /** CRC of each sequence number seen (index = seq), to recognise a repeated line. */
  let crcs = new Float64Array(1024);
  let maxSeq = 0;
  let checked = false;
  let offset = 0;
  while (offset < bytes.length) {
    const nl = bytes.indexOf(NEWLINE, offset);
    if (nl === -1) {
      lines.push({ offset, length: bytes.length - offset, ok: false, reason: "unterminated" });
      break;
    }
    const line: ScannedLine = { offset, length: nl - offset + 1, ok: false };
    lines.push(line);
    const first = bytes[offset];
    if (first !== undefined && first >= 0x30 && first <= 0x39) {
      const framed = parseFramed(bytes, offset, nl);
      if (typeof framed === "string") line.reason = framed;
      else {
        checked = true;
        if (framed.seq <= maxSeq) {
          if (framed.seq < crcs.length && crcs[framed.seq] === framed.crc + 1) {
            line.ok = true;
            line.duplicate = true;
            line.seq = framed.seq;
          } else line.reason = "out_of_order";
        } else {
          while (framed.seq >= crcs.length) {
            const bigger = new Float64Array(crcs.length * 2);
            bigger.set(crcs);
            crcs = bigger;
          }
          crcs[framed.seq] = framed.crc + 1;
          maxSeq = framed.seq;
          line.ok = true;
          line.internal = isInternal(framed.record);
          if (keep) line.record = framed.record;
          line.seq = framed.seq;
        }
      }
    } else if (first === OPEN_BRACE) {
      if (checked) line.reason = "unchecked_after_checked";
      else {
        const record = parseObject(bytes, offset, nl);
        if (typeof record === "string") line.reason = record;
        else {
          line.ok = true;
          line.internal = isInternal(record);
          if (keep) line.record = record;
        }
      }
    } else line.reason = "unparsable";
    offset = nl + 1;
  }
  return lines;
}

/** `<seq> <crc> <json>` between `start` and the newline at `end`, or why it is not one. */
function parseFramed(
  bytes: Buffer,
  start: number,
  end: number,
): { seq: number; crc: number; record: unknown } | DamageReason {
  const firstSpace = bytes.indexOf(SPACE, start);
  if (firstSpace === -1 || firstSpace > end || firstSpace - start > 15) return "unparsable";
  const crcEnd = firstSpace + 9;
  if (crcEnd >= end || bytes[crcEnd] !== SPACE) return "unparsable";
  const seqText = bytes.toString("latin1", start, firstSpace);
  const crcText = bytes.toString("latin1", firstSpace + 1, crcEnd);
  if (!/^[1-9][0-9]*$/.test(seqText) || !/^[0-9a-f]{8}$/.test(crcText)) return "unparsable";
  const crc = Number.parseInt(crcText, 16);
  if (checksum(seqText, bytes.subarray(crcEnd + 1, end)) !== crc) return "checksum";
  const record = parseObject(bytes, crcEnd + 1, end);
  if (typeof record === "string") return record;
  return { seq: Number(seqText), crc, record };
}

function parseObject(bytes: Buffer, start: number, end: number): object | DamageReason {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString("utf8", start, end));
  } catch {
    return "unparsable";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "not_an_object";
  return value;
}

/** The checksum of a line: CRC-32 of its sequence number's digits, then of its JSON bytes. */
function checksum(seq: string, json: Uint8Array): number {
  return crc32(json, crc32(seq));
}

/** Splits scanned lines into good ones, damage in the middle, and a torn tail. */
function judge(lines: readonly ScannedLine[]): {
  good: ScannedLine[];
  damaged: ScannedLine[];
  tail: ScannedLine[];
} {
  let lastGood = -1;
  lines.forEach((l, i) => {
    if (l.ok) lastGood = i;
  });
  return {
    good: lines.filter((l) => l.ok),
    damaged: lines.slice(0, lastGood + 1).filter((l) => !l.ok),
    tail: lines.slice(lastGood + 1),
  };
}

/** The records of good lines, parsed again one at a time (they were judged already). */
function* replayLines<R>(bytes: Buffer, lines: readonly ScannedLine[]): Generator<Replayed<R>> {
  for (const l of lines) {
    const end = l.offset + l.length - 1;
    const parsed =
      l.seq === undefined ? parseObject(bytes, l.offset, end) : parseFramed(bytes, l.offset, end);
    if (typeof parsed === "string") throw new Error(`journal line at ${l.offset} changed`);
    const record = l.seq === undefined ? parsed : (parsed as { record: unknown }).record;
    yield {
      record: record as R,
      at: { offset: l.offset, length: l.length },
      ...(l.seq === undefined ? {} : { seq: l.seq }),
    };
  }
}

/** The `through` a compaction left beside the journal, if one did. */
function compactedThrough(path: string): number | undefined {
  const file = `${path}${COMPACTED_SUFFIX}`;
  if (!existsSync(file)) return undefined;
  let through: unknown;
  try {
    through = (JSON.parse(readFileSync(file, "utf8")) as { through?: unknown }).through;
  } catch {
    through = undefined;
  }
  if (typeof through !== "number" || !Number.isSafeInteger(through) || through < 1)
    throw new StafettError(
      "ERR_JOURNAL_DAMAGED",
      `${file} is unreadable: the compacted journal cannot be checked; nothing was changed`,
      { reason: "compacted_marker", field: file },
    );
  return through;
}

function incompleteCompaction(path: string, through: number, reached: number): StafettError {
  return new StafettError(
    "ERR_JOURNAL_DAMAGED",
    `journal ${path} ends before its compacted part does (line ${reached} of ${through}): refused rather than replayed short; nothing was changed`,
    { reason: "compacted_incomplete", field: `${path}@${reached}` },
  );
}

/** Makes a rename in `dir` durable. */
function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-");
}

function isInternal(record: unknown): boolean {
  return typeof record === "object" && record !== null && INTERNAL_KEY in record;
}

/** How a failed write is reported: a full disk, an I/O error. */
function faultOf(err: unknown): JournalFault {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === "ENOSPC" || code === "EDQUOT" ? "disk_full" : "io_error";
}

const FAULT_TEXT: Record<JournalFault, string> = {
  disk_full: "the disk is full",
  io_error: "an I/O error",
  broken: "the journal could not be cut back after a failed write",
};

export class Journal<R> {
  private fd: number;
  readonly path: string;
  /** Bytes in the file: where the next line goes (the file is only appended to). */
  private size: number;
  /** The sequence number of the next line written. */
  private nextSeq: number;
  /** The last line written, to check after a fault that the file still ends with it. */
  private last: JournalRef | undefined;
  private queue: {
    /** The record's JSON (one line, without its prefix and newline). */
    json: string;
    resolve: (at: Appended) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private flushing = false;
  /** Set while writes fail: appends are refused with it, and the disk is probed. */
  private fault: { reason: JournalFault; since: Date; cause: unknown } | undefined;
  /** The size of the write that failed: a probe writes as much, or a small one could fit in a block's slack. */
  private failedBytes = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private inFlight: Promise<void> = Promise.resolve();
  private readonly options: JournalOptions;

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

  private constructor(
    path: string,
    fd: number,
    size: number,
    nextSeq: number,
    last: JournalRef | undefined,
    dsync: boolean,
    options: JournalOptions,
  ) {
    this.path = path;
    this.fd = fd;
    this.size = size;
    this.nextSeq = nextSeq;
    this.last = last;
    this.dsync = dsync;
    this.options = options;
  }

  /**
   * Opens (or creates) the journal at `path` and returns it with the records it holds. Throws
   * `ERR_JOURNAL_DAMAGED` (naming the file and the offset) when a line in the middle is damaged.
   */
  static open<R>(
    path: string,
    options: JournalOptions = {},
  ): { journal: Journal<R>; records: Replayed<R>[]; report: OpenReport } {
    const opened = Journal.openForReplay<R>(path, options);
    return { ...opened, records: [...opened.records] };
  }

  /**
   * As `open`, but the records come one at a time as they are iterated (each line parsed again
   * then), so that replaying a large journal never holds all of its records at once: a
   * service's memory depends on what its state keeps, not on the journal's size. Iterate once,
   * before appending.
   */
  static openForReplay<R>(
    path: string,
    options: JournalOptions = {},
  ): { journal: Journal<R>; records: Iterable<Replayed<R>>; report: OpenReport } {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    let replayable: { bytes: Buffer; lines: ScannedLine[] } = {
      bytes: Buffer.alloc(0),
      lines: [],
    };
    const report: OpenReport = { duplicates: 0, legacy: 0 };
    let validBytes = 0;
    let maxSeq = 0;
    let last: JournalRef | undefined;
    // A compaction killed before its rename left its new file: never used, and it may hold
    // what the old journal held, so it goes.
    rmSync(`${path}${COMPACT_TMP_SUFFIX}`, { force: true });
    const through = compactedThrough(path);
    if (through !== undefined && !existsSync(path)) throw incompleteCompaction(path, through, 0);
    if (existsSync(path)) {
      const bytes = readFileSync(path);
      const { good, damaged, tail } = judge(scan(bytes, false));
      if (through !== undefined) {
        const reached = good.reduce((m, l) => Math.max(m, l.seq ?? 0), 0);
        if (reached < through) throw incompleteCompaction(path, through, reached);
      }
      const first = damaged[0];
      if (first !== undefined) {
        throw new StafettError(
          "ERR_JOURNAL_DAMAGED",
          `journal ${path} is damaged at byte ${first.offset} (${first.reason}; ${damaged.length} damaged line(s) before good ones); nothing was changed: see \`stafett journal check --state ${dirname(path)}\``,
          { reason: first.reason, field: `${path}@${first.offset}` },
        );
      }
      for (const l of good) {
        if (l.duplicate === true) {
          report.duplicates += 1;
          continue;
        }
        last = { offset: l.offset, length: l.length };
        if (l.seq === undefined) report.legacy += 1;
        else maxSeq = l.seq;
      }
      replayable = { bytes, lines: good.filter((l) => l.duplicate !== true && !l.internal) };
      const tailStart = tail[0]?.offset;
      validBytes = tailStart ?? bytes.length;
      if (tailStart !== undefined) {
        const keptIn = `${path}.torn-${stamp()}`;
        writeFileSync(keptIn, bytes.subarray(tailStart), { mode: 0o600 });
        report.torn = { offset: tailStart, bytes: bytes.length - tailStart, keptIn };
      }
    }
    const dsync = typeof constants.O_DSYNC === "number";
    const flags = constants.O_RDWR | constants.O_CREAT | constants.O_APPEND;
    const fd = openSync(path, dsync ? flags | constants.O_DSYNC : flags, 0o600);
    ftruncateSync(fd, validBytes);
    return {
      journal: new Journal<R>(path, fd, validBytes, maxSeq + 1, last, dsync, options),
      records: replayLines<R>(replayable.bytes, replayable.lines),
      report,
    };
  }

  /** Examines the journal at `path` without changing it. */
  static check(path: string): CheckReport {
    const bytes = existsSync(path) ? readFileSync(path) : Buffer.alloc(0);
    const lines = scan(bytes);
    const { good, damaged, tail } = judge(lines);
    const tailStart = tail[0]?.offset;
    return {
      path,
      bytes: bytes.length,
      records: good.filter((l) => l.duplicate !== true && l.internal !== true).length,
      legacy: good.filter((l) => l.seq === undefined).length,
      duplicates: good.filter((l) => l.duplicate === true).length,
      damaged: damaged.map((l) => ({
        offset: l.offset,
        length: l.length,
        reason: l.reason ?? "unparsable",
      })),
      ...(tailStart === undefined
        ? {}
        : { tornTail: { offset: tailStart, bytes: bytes.length - tailStart } }),
    };
  }

  /**
   * Keeps the damaged lines and the torn tail aside in `<journal>.damaged-<time>` (and the
   * whole journal as it was in `<journal>.before-repair-<time>`), and leaves the journal with its
   * good lines only, in order (repeated lines once). The service must not be running. What the
   * damaged lines recorded is lost to the service: the report says how much.
   */
  static repair(path: string): RepairReport {
    const report = Journal.check(path);
    if (report.damaged.length === 0 && report.tornTail === undefined && report.duplicates === 0)
      return report;
    const bytes = readFileSync(path);
    const lines = scan(bytes);
    const when = stamp();
    const backup = `${path}.before-repair-${when}`;
    copyFileSync(path, backup);
    const keep = lines.filter((l) => l.ok && l.duplicate !== true);
    const aside = lines.filter((l) => !l.ok);
    let keptIn: string | undefined;
    if (aside.length > 0) {
      keptIn = `${path}.damaged-${when}`;
      writeFileSync(
        keptIn,
        Buffer.concat(aside.map((l) => bytes.subarray(l.offset, l.offset + l.length))),
        { mode: 0o600 },
      );
    }
    const tmp = `${path}.repair-${when}`;
    const fd = openSync(tmp, "w", 0o600);
    try {
      for (const l of keep) writeSync(fd, bytes, l.offset, l.length);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    return { ...report, ...(keptIn === undefined ? {} : { keptIn }), backup };
  }

  get health(): JournalHealth {
    if (this.fault === undefined) return { ok: true };
    return { ok: false, reason: this.fault.reason, since: this.fault.since.toISOString() };
  }

  /** The coded error appends are refused with while the journal is unhealthy (else undefined). */
  unavailable(): StafettError | undefined {
    const f = this.fault;
    if (f === undefined) return undefined;
    return new StafettError(
      "ERR_JOURNAL_WRITE",
      `the journal cannot be written (${FAULT_TEXT[f.reason]}); retry later`,
      { reason: f.reason, cause: f.cause },
    );
  }

  /** The record at `at` (from `open` or `append`), read back from the file and verified. */
  read(at: JournalRef): R {
    if (this.closed) throw new Error("journal is closed");
    const buffer = Buffer.alloc(at.length);
    const n = readSync(this.fd, buffer, 0, at.length, at.offset);
    if (n !== at.length || buffer[at.length - 1] !== NEWLINE)
      throw new Error(`no journal record at ${at.offset}`);
    if (buffer[0] === OPEN_BRACE) {
      const legacy = parseObject(buffer, 0, at.length - 1);
      if (typeof legacy === "string") throw this.damagedAt(at.offset, legacy);
      return legacy as R;
    }
    const framed = parseFramed(buffer, 0, at.length - 1);
    if (typeof framed === "string") throw this.damagedAt(at.offset, framed);
    return framed.record as R;
  }

  private damagedAt(offset: number, reason: DamageReason): StafettError {
    return new StafettError(
      "ERR_JOURNAL_DAMAGED",
      `journal ${this.path} is damaged at byte ${offset} (${reason})`,
      { reason, field: `${this.path}@${offset}` },
    );
  }

  /** Resolves, once the record is on disk, with where it is and its sequence number. */
  append(record: R): Promise<Appended> {
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

  private appendOnce(record: R): Promise<Appended> {
    if (this.closed) return Promise.reject(new Error("journal is closed"));
    const refused = this.unavailable();
    if (refused !== undefined) return Promise.reject(refused);
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

  /** The lines of `batch` as bytes, numbered from `this.nextSeq`. */
  private encode(batch: readonly { json: string }[]): {
    bytes: Buffer;
    lines: { length: number; seq: number }[];
  } {
    // Each record written as UTF-8 straight into one buffer, after its sequence number and
    // checksum, then its newline: no joined or flattened copy of the lines on the heap (a
    // hub's line holds a whole event).
    const lines = batch.map((b, i) => {
      const seq = String(this.nextSeq + i);
      return { seq, json: b.json, length: seq.length + 10 + Buffer.byteLength(b.json) + 1 };
    });
    const bytes = Buffer.alloc(lines.reduce((n, l) => n + l.length, 0));
    let at = 0;
    for (const l of lines) {
      at += bytes.write(l.seq, at, "latin1");
      bytes[at++] = SPACE;
      const crcAt = at;
      at += 8;
      bytes[at++] = SPACE;
      const jsonAt = at;
      at += bytes.write(l.json, at);
      bytes.write(
        checksum(l.seq, bytes.subarray(jsonAt, at)).toString(16).padStart(8, "0"),
        crcAt,
        "latin1",
      );
      bytes[at++] = NEWLINE;
    }
    return { bytes, lines: lines.map((l) => ({ length: l.length, seq: Number(l.seq) })) };
  }

  /**
   * Writes the queued records durably (O_DSYNC, or write and fdatasync) off the event loop
   * (libuv's thread pool): a service keeps handling messages while the disk works, and the next
   * batch collects meanwhile. A write that fails or falls short is taken back (the file is cut
   * to where it was), so that no later record follows a fragment; the journal then refuses
   * appends and probes the disk until a write succeeds again.
   */
  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    this.inFlight = new Promise<void>((done) => {
      const refused = this.unavailable();
      if (refused !== undefined) {
        for (const b of batch) b.reject(refused);
        this.flushing = false;
        done();
        return;
      }
      const { bytes, lines } = this.encode(batch);
      const settle = (err: unknown): void => {
        let offset = this.size;
        batch.forEach((b, i) => {
          const l = lines[i];
          if (l === undefined) return;
          if (err === null) b.resolve({ offset, length: l.length, seq: l.seq });
          else b.reject(this.unavailable() ?? err);
          offset += l.length;
        });
        if (err === null) {
          const lastLine = lines[lines.length - 1];
          if (lastLine !== undefined)
            this.last = { offset: offset - lastLine.length, length: lastLine.length };
          this.size = offset;
          this.nextSeq += lines.length;
        }
        if (this.fault !== undefined) {
          const refusedNow = this.unavailable();
          for (const b of this.queue.splice(0)) b.reject(refusedNow);
        }
        // The next batch starts now (not on a later turn): close() waits on it.
        if (this.queue.length > 0) this.flush();
        else this.flushing = false;
        done();
      };
      const failed = (cause: unknown): void => {
        this.failedBytes = bytes.length;
        let reason = faultOf(cause);
        try {
          ftruncateSync(this.fd, this.size);
        } catch {
          reason = "broken";
        }
        this.setFault(reason, cause);
        settle(cause);
      };
      write(this.fd, bytes, 0, bytes.length, null, (err, written) => {
        if (err !== null) return failed(err);
        if (written !== bytes.length)
          return failed(
            Object.assign(new Error(`journal write fell short: ${written} of ${bytes.length}`), {
              code: "ENOSPC",
            }),
          );
        if (this.dsync) return settle(null);
        fdatasync(this.fd, (syncErr) => (syncErr === null ? settle(null) : failed(syncErr)));
      });
    });
  }

  private setFault(reason: JournalFault, cause: unknown): void {
    const changed = this.fault?.reason !== reason;
    this.fault = { reason, since: this.fault?.since ?? new Date(), cause };
    if (changed) this.options.onHealth?.(this.health, cause);
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.probeTimer !== undefined || this.closed) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      this.probe();
    }, this.options.probeMs ?? 1_000);
    this.probeTimer.unref();
  }

  /**
   * While unhealthy: cuts the file back to its last good line, checks that it ends with that
   * line, and writes a probe line durably. If all of that works, appends are taken again.
   */
  private probe(): void {
    if (this.fault === undefined || this.closed) return;
    // A batch may be on its way (it will be refused): probe after it.
    if (this.flushing) return this.scheduleProbe();
    try {
      try {
        ftruncateSync(this.fd, this.size);
        if (fstatSync(this.fd).size !== this.size) throw new Error("journal size is unexpected");
        if (this.last !== undefined) this.read(this.last);
      } catch (cause) {
        this.setFault("broken", cause);
        return;
      }
      // As large as the write that failed (up to 1 MiB), and never less than PROBE_HEADROOM: the
      // space it needs must be there, and room for more than one small line. A disk with a few
      // kilobytes that come and go (another writer's write taken back) would otherwise make the
      // service ready and not ready again every second.
      const pad = "-".repeat(Math.max(PROBE_HEADROOM, Math.min(this.failedBytes, 1 << 20)));
      const { bytes } = this.encode([
        { json: JSON.stringify({ [INTERNAL_KEY]: "probe", at: new Date().toISOString(), pad }) },
      ]);
      let written = 0;
      try {
        written = writeSync(this.fd, bytes);
        if (!this.dsync) fdatasyncSync(this.fd);
        if (written !== bytes.length) throw Object.assign(new Error("short"), { code: "ENOSPC" });
      } catch (cause) {
        let reason = faultOf(cause);
        try {
          ftruncateSync(this.fd, this.size);
        } catch {
          reason = "broken";
        }
        this.setFault(reason, cause);
        return;
      }
      this.last = { offset: this.size, length: bytes.length };
      this.size += bytes.length;
      this.nextSeq += 1;
      this.fault = undefined;
      this.options.onHealth?.(this.health);
    } finally {
      if (this.fault !== undefined) this.scheduleProbe();
    }
  }

  /**
   * Rewrites the journal with only what `keep` returns for its lines (each kept line keeps its
   * sequence number; a changed record is checksummed anew), so that erased and expired bytes
   * leave the disk. Crash-safe: the new journal is written to a temporary file and made durable,
   * then renamed over the old one (atomic: a kill at any point leaves the old journal or the new,
   * whole), then the directory is synced and `<journal>.compacted` names the marker line that ends
   * the compacted part, so that a compacted journal cut short is refused, not replayed short.
   * Appends wait meanwhile: once the write under way is done, the rest runs without yielding.
   * Journals with lines from before checksums are not compacted (`ERR_JOURNAL_DAMAGED`, `legacy`).
   */
  async compact(
    keep: (lines: () => Iterable<KeptLine<R>>) => KeptLine<R>[],
  ): Promise<CompactReport<R>> {
    if (this.closed) throw new Error("journal is closed");
    const refused = this.unavailable();
    if (refused !== undefined) throw refused;
    while (this.flushing) await this.inFlight;
    // From here on nothing yields: no append can be written, and no read can see a half state.
    const before = Buffer.alloc(this.size);
    if (this.size > 0) readSync(this.fd, before, 0, this.size, 0);
    const lines = scan(before, false).filter((l) => l.ok && l.duplicate !== true);
    if (lines.some((l) => l.seq === undefined))
      throw new StafettError(
        "ERR_JOURNAL_DAMAGED",
        `journal ${this.path} holds lines from before checksums: not compacted`,
        { reason: "legacy", field: this.path },
      );
    // The lines as often as `keep` asks, parsed again each time: only what it keeps is held.
    const replayable = lines.filter((l) => l.internal !== true);
    const kept = keep(function* () {
      for (const r of replayLines<R>(before, replayable))
        yield { seq: r.seq ?? 0, record: r.record };
    });
    // The marker ends the compacted part, under the next sequence number.
    const marker = { seq: this.nextSeq, json: JSON.stringify({ [INTERNAL_KEY]: "compacted" }) };
    const encoded = [...kept.map((k) => ({ seq: k.seq, json: JSON.stringify(k.record) })), marker];
    const { bytes, lines: written } = this.encodeNumbered(encoded);
    const tmp = `${this.path}${COMPACT_TMP_SUFFIX}`;
    const tfd = openSync(tmp, "w", 0o600);
    try {
      // In two halves, so that a test can kill the process in the middle of the new file.
      const half = bytes.length >> 1;
      let off = 0;
      while (off < half) off += writeSync(tfd, bytes, off, half - off);
      crashPoint("compact:mid-write");
      while (off < bytes.length) off += writeSync(tfd, bytes, off, bytes.length - off);
      fsyncSync(tfd);
    } finally {
      closeSync(tfd);
    }
    crashPoint("compact:before-rename");
    renameSync(tmp, this.path);
    crashPoint("compact:after-rename");
    syncDir(dirname(this.path));
    const side = `${this.path}${COMPACTED_SUFFIX}`;
    writeFileSync(`${side}.tmp`, JSON.stringify({ through: marker.seq }), { mode: 0o600 });
    const sfd = openSync(`${side}.tmp`, "r");
    try {
      fsyncSync(sfd);
    } finally {
      closeSync(sfd);
    }
    renameSync(`${side}.tmp`, side);
    syncDir(dirname(this.path));
    closeSync(this.fd);
    const flags = constants.O_RDWR | constants.O_CREAT | constants.O_APPEND;
    this.fd = openSync(this.path, this.dsync ? flags | constants.O_DSYNC : flags, 0o600);
    const records: Replayed<R>[] = [];
    let offset = 0;
    written.forEach((w, i) => {
      const k = kept[i];
      if (k !== undefined)
        records.push({ record: k.record, at: { offset, length: w.length }, seq: w.seq });
      else this.last = { offset, length: w.length };
      offset += w.length;
    });
    const bytesBefore = this.size;
    this.size = bytes.length;
    this.nextSeq = marker.seq + 1;
    return {
      bytesBefore,
      bytesAfter: bytes.length,
      linesBefore: lines.length,
      linesAfter: written.length,
      records,
    };
  }

  /** Lines with the sequence numbers given (a compaction keeps them), encoded as `encode` does. */
  private encodeNumbered(batch: readonly { seq: number; json: string }[]): {
    bytes: Buffer;
    lines: { length: number; seq: number }[];
  } {
    const parts = batch.map((b) => {
      const seq = String(b.seq);
      const json = Buffer.from(b.json);
      const crc = checksum(seq, json).toString(16).padStart(8, "0");
      return Buffer.concat([Buffer.from(`${seq} ${crc} `, "latin1"), json, Buffer.from("\n")]);
    });
    return {
      bytes: Buffer.concat(parts),
      lines: parts.map((p, i) => ({ length: p.length, seq: batch[i]?.seq ?? 0 })),
    };
  }

  /** Waits for what is being written, then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer);
    while (this.flushing || this.queue.length > 0) {
      if (!this.flushing) this.flush();
      await this.inFlight;
    }
    closeSync(this.fd);
  }
}
