/**
 * The access audit of one party (docs/contract.md, principle 10): every read of a child's data
 * and every action a person takes, written durably before the answer leaves, in a file of its
 * own (`audit.jsonl` in the party's state directory).
 *
 * Each record is one JSON line carrying its sequence number, the hash of the record before it
 * and its own hash (SHA-256 over the line without its `hash`): a record altered, removed,
 * inserted or moved breaks the chain at that place. Since anyone who can edit the file can also
 * recompute plain hashes, the chain is checkpointed at intervals (every CHECKPOINT_EVERY records,
 * and when the party stops) by a record that carries a JWS, by the party's own signing key, over
 * the hash of the chain up to it: a rewritten chain no longer matches a signed checkpoint.
 * Records after the last checkpoint can be cut off without a trace; an external copy of the
 * checkpoints (the operator's log shipping) closes that gap.
 *
 * A record holds who acted (organisation, the token's subject, its name claim when present),
 * what they did, to which referral and event, and the purpose they stated: never the child's
 * data.
 */
import { createHash } from "node:crypto";
import { constants, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { CompactSign, compactVerify, decodeProtectedHeader } from "jose";
import { StafettError } from "./errors.js";
import { keyObjectOf, SIGNING_ALG, type KeyHandle } from "./keys.js";

/** What a person did. */
export type AuditAction =
  | "read"
  | "opened"
  | "accepted"
  | "declined"
  | "forwarded"
  | "routed"
  | "updated"
  | "withdrawn"
  | "closed"
  | "triaged"
  | "erased";

export interface AuditEntry {
  /** The organisation acting. */
  org: string;
  /** The person or system acting: the token's `sub`. */
  sub: string;
  /** The token's `name` claim, when it has one. */
  name?: string;
  action: AuditAction;
  referralId?: string;
  eventId?: string;
  /** Why, as the client stated it (`Stafett-Purpose`). */
  purpose?: string;
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  at: string;
  prev: string;
  hash: string;
}

/** A signed checkpoint of the chain up to and including record `seq - 1`. */
export interface AuditCheckpoint {
  seq: number;
  at: string;
  /** The hash of the record before this one: what the signature vouches for. */
  checkpoint: string;
  /** Compact JWS (typ stafett-audit+jws) over {"org","seq","hash"} by the party's signing key. */
  sig: string;
  prev: string;
  hash: string;
}

type Line = AuditRecord | AuditCheckpoint;

export const AUDIT_FILE = "audit.jsonl";
export const AUDIT_JWS_TYP = "stafett-audit+jws";
/** A signed checkpoint after this many records. */
export const CHECKPOINT_EVERY = 16;
const GENESIS = "0".repeat(64);

const sha256 = (text: string): string => createHash("sha256").update(text).digest("hex");

/** The hash of a line's content: its JSON without `hash`, in the order of its members. */
function hashOf(line: Record<string, unknown>): string {
  const { hash: _hash, ...rest } = line;
  return sha256(JSON.stringify(rest));
}

const isCheckpoint = (l: Line): l is AuditCheckpoint => "checkpoint" in l;

export class AuditLog {
  private chain: Promise<unknown> = Promise.resolve();
  private sinceCheckpoint = 0;

  private constructor(
    private readonly file: FileHandle,
    private readonly path: string,
    private readonly org: string,
    private readonly signer: KeyHandle,
    private seq: number,
    private last: string,
    private readonly now: () => Date,
  ) {}

  /** Opens (or creates) the audit of `org` in `stateDir`, continuing its chain. */
  static async open(
    stateDir: string,
    org: string,
    signer: KeyHandle,
    now: () => Date = () => new Date(),
  ): Promise<AuditLog> {
    const path = join(stateDir, AUDIT_FILE);
    mkdirSync(dirname(path), { recursive: true });
    let seq = 1;
    let last = GENESIS;
    let since = 0;
    if (existsSync(path) && statSync(path).isFile()) {
      for (const line of readLines(readFileSync(path, "utf8"))) {
        seq = line.seq + 1;
        last = line.hash;
        since = isCheckpoint(line) ? 0 : since + 1;
      }
    }
    const flags =
      constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | (constants.O_DSYNC ?? 0);
    const file = await open(path, flags, 0o600);
    const log = new AuditLog(file, path, org, signer, seq, last, now);
    log.sinceCheckpoint = since;
    return log;
  }

  /**
   * Records what a person did; resolves once the record is on disk. Throws ERR_UNAVAILABLE
   * (reason `audit`) when it cannot be written: the caller then answers 503 and shows nothing.
   */
  record(entry: Omit<AuditEntry, "org">): Promise<AuditRecord> {
    const next = this.chain.then(async () => {
      const record: AuditRecord = {
        seq: this.seq,
        at: this.now().toISOString(),
        org: this.org,
        sub: entry.sub,
        ...(entry.name === undefined ? {} : { name: entry.name }),
        action: entry.action,
        ...(entry.referralId === undefined ? {} : { referralId: entry.referralId }),
        ...(entry.eventId === undefined ? {} : { eventId: entry.eventId }),
        ...(entry.purpose === undefined ? {} : { purpose: entry.purpose }),
        prev: this.last,
        hash: "",
      };
      record.hash = hashOf(record as unknown as Record<string, unknown>);
      await this.write(record);
      this.sinceCheckpoint += 1;
      if (this.sinceCheckpoint >= CHECKPOINT_EVERY) await this.writeCheckpoint();
      return record;
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Writes a signed checkpoint now (when anything was recorded since the last one). */
  checkpoint(): Promise<void> {
    const next = this.chain.then(async () => {
      if (this.sinceCheckpoint > 0) await this.writeCheckpoint();
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async writeCheckpoint(): Promise<void> {
    const payload = JSON.stringify({ org: this.org, seq: this.seq, hash: this.last });
    const sig = await new CompactSign(new TextEncoder().encode(payload))
      .setProtectedHeader({ alg: SIGNING_ALG, kid: this.signer.kid, typ: AUDIT_JWS_TYP })
      .sign(keyObjectOf(this.signer));
    const line: AuditCheckpoint = {
      seq: this.seq,
      at: this.now().toISOString(),
      checkpoint: this.last,
      sig,
      prev: this.last,
      hash: "",
    };
    line.hash = hashOf(line as unknown as Record<string, unknown>);
    await this.write(line);
    this.sinceCheckpoint = 0;
  }

  private async write(line: Line): Promise<void> {
    try {
      await this.file.write(`${JSON.stringify(line)}\n`);
    } catch (cause) {
      throw new StafettError("ERR_UNAVAILABLE", "the access audit cannot be written", {
        reason: "audit",
        cause,
      });
    }
    this.seq = line.seq + 1;
    this.last = line.hash;
  }

  /** The records (not checkpoints) that match, oldest first, from sequence number `after` on. */
  list(filter: AuditFilter = {}): { records: AuditRecord[]; next?: number } {
    const limit = Math.min(filter.limit ?? 100, 1_000);
    const out: AuditRecord[] = [];
    const text = statSync(this.path).isFile() ? readFileSync(this.path, "utf8") : "";
    for (const line of readLines(text)) {
      if (isCheckpoint(line) || line.seq <= (filter.after ?? 0)) continue;
      if (filter.referralId !== undefined && line.referralId !== filter.referralId) continue;
      if (filter.sub !== undefined && line.sub !== filter.sub) continue;
      if (filter.from !== undefined && line.at < filter.from) continue;
      if (filter.to !== undefined && line.at > filter.to) continue;
      if (out.length === limit) return { records: out, next: out[out.length - 1]?.seq ?? 0 };
      out.push(line);
    }
    return { records: out };
  }

  async close(): Promise<void> {
    await this.checkpoint().catch(() => undefined);
    await this.file.close();
  }
}

export interface AuditFilter {
  referralId?: string;
  sub?: string;
  /** ISO times, inclusive. */
  from?: string;
  to?: string;
  /** Only records after this sequence number (the `next` of the previous page). */
  after?: number;
  limit?: number;
}

/** The lines of an audit file; a torn last line (a crash mid-write) is left out. */
function readLines(text: string): Line[] {
  const lines = text.split("\n");
  const out: Line[] = [];
  for (const [i, raw] of lines.entries()) {
    if (raw === "") continue;
    try {
      out.push(JSON.parse(raw) as Line);
    } catch (err) {
      if (i === lines.length - 1) break; // torn: never acknowledged
      throw err;
    }
  }
  return out;
}

/** What `verifyAudit` found: nothing wrong, or the first place the chain was broken. */
export type AuditVerdict =
  | {
      ok: true;
      records: number;
      checkpoints: number;
      /** The sequence number of the last signed checkpoint (0 if none): compare it with a copy kept elsewhere. */
      lastCheckpoint: number;
      unsignedTail: number;
    }
  | {
      ok: false;
      /** The line (1-based) where the break shows. */
      line: number;
      /** What was done there. */
      problem: "altered" | "removed" | "inserted" | "reordered" | "bad_signature";
      /** The sequence number of the record concerned, when known. */
      seq?: number;
    };

/**
 * Checks an audit file: every line's own hash, the chain from each line to the one before, the
 * sequence numbers, and every checkpoint's signature by a key `keyOf(kid)` gives. `keyOf` must
 * give only the audited organisation's own signing keys, and `org` names it: every record and
 * every signed checkpoint must be that organisation's. Names the first record altered, removed,
 * inserted or reordered.
 */
export async function verifyAudit(
  text: string,
  keyOf: (kid: string, at: string) => Promise<KeyHandle | undefined>,
  org?: string,
): Promise<AuditVerdict> {
  const raw = text.split("\n");
  if (raw.at(-1) === "") raw.pop();
  const lines: (Line | undefined)[] = raw.map((l) => {
    try {
      return JSON.parse(l) as Line;
    } catch {
      return undefined;
    }
  });
  let prev = GENESIS;
  let expected = 1;
  let records = 0;
  let checkpoints = 0;
  let unsignedTail = 0;
  let lastCheckpoint = 0;
  for (const [i, line] of lines.entries()) {
    const at = i + 1;
    if (line === undefined || typeof line.seq !== "number")
      return { ok: false, line: at, problem: "altered" };
    if (hashOf(line as unknown as Record<string, unknown>) !== line.hash)
      return { ok: false, line: at, problem: "altered", seq: line.seq };
    if (line.seq > expected) {
      // A gap: either the missing record comes later (moved) or it is gone.
      const movedLater = lines.slice(i + 1).some((l) => l?.seq === expected);
      return { ok: false, line: at, problem: movedLater ? "reordered" : "removed", seq: expected };
    }
    if (line.seq < expected) {
      const seenBefore = lines.slice(0, i).some((l) => l?.seq === line.seq);
      return { ok: false, line: at, problem: seenBefore ? "inserted" : "reordered", seq: line.seq };
    }
    if (line.prev !== prev) {
      // In its place, hashing right, but not chained to what is before it: the record before
      // was altered and given a new hash, or this one was put in and numbered to fit.
      return { ok: false, line: at - 1 > 0 ? at - 1 : at, problem: "altered", seq: line.seq - 1 };
    }
    if (org !== undefined && !isCheckpoint(line) && line.org !== org)
      return { ok: false, line: at, problem: "altered", seq: line.seq };
    if (isCheckpoint(line)) {
      const ok = await checkpointVerifies(line, keyOf, org);
      if (!ok) return { ok: false, line: at, problem: "bad_signature", seq: line.seq };
      checkpoints += 1;
      lastCheckpoint = line.seq;
      unsignedTail = 0;
    } else {
      records += 1;
      unsignedTail += 1;
    }
    prev = line.hash;
    expected = line.seq + 1;
  }
  return { ok: true, records, checkpoints, lastCheckpoint, unsignedTail };
}

async function checkpointVerifies(
  line: AuditCheckpoint,
  keyOf: (kid: string, at: string) => Promise<KeyHandle | undefined>,
  org: string | undefined,
): Promise<boolean> {
  try {
    const header = decodeProtectedHeader(line.sig);
    if (header.typ !== AUDIT_JWS_TYP || typeof header.kid !== "string") return false;
    const key = await keyOf(header.kid, line.at);
    if (key === undefined) return false;
    const { payload } = await compactVerify(line.sig, keyObjectOf(key), {
      algorithms: [SIGNING_ALG],
    });
    const signed = JSON.parse(new TextDecoder().decode(payload)) as {
      org?: unknown;
      seq?: unknown;
      hash?: unknown;
    };
    return (
      (org === undefined || signed.org === org) &&
      signed.seq === line.seq &&
      signed.hash === line.checkpoint &&
      line.checkpoint === line.prev
    );
  } catch {
    return false;
  }
}
