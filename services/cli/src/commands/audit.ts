/**
 * `stafett audit verify` and `stafett audit export`: a party's access audit (audit.jsonl in its
 * state directory) checked against the party's signing keys from its trust list, and one
 * referral's records written out for the registrar.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { AUDIT_FILE, StafettError, verifyAudit, type AuditRecord } from "@stafett/shared";
import { writeFile } from "../files.js";
import type { Io } from "../io.js";
import { loadTrust, type TrustArgs } from "./event.js";

export async function auditVerify(
  args: TrustArgs & { state: string; org: string },
  io: Io,
): Promise<number> {
  const trust = await loadTrust(args);
  const org = trust.organisation(args.org);
  if (org === undefined)
    throw new StafettError("ERR_UNKNOWN_ORGANISATION", "the trust list has no such organisation", {
      reason: "unknown",
      field: "--org",
    });
  const text = readFileSync(join(args.state, AUDIT_FILE), "utf8");
  // Only the audited organisation's own signing keys, and none revoked before a checkpoint's time.
  const verdict = await verifyAudit(
    text,
    async (kid, at) => {
      const key = org.keys.find((k) => k.kid === kid && k.use === "sig");
      if (key === undefined) return undefined;
      if (key.revokedAt !== undefined && Date.parse(key.revokedAt) <= Date.parse(at))
        return undefined;
      return (await trust.signingKey(kid)).handle;
    },
    org.id,
  );
  if (!verdict.ok) {
    io.err(
      `rejected: ERR_AUDIT_BROKEN (${verdict.problem}) at line ${verdict.line}${verdict.seq === undefined ? "" : ` (record ${verdict.seq})`}\n`,
    );
    return 1;
  }
  io.out(
    `audit verified: ${verdict.records} records of ${org.id}, ${verdict.checkpoints} signed checkpoints (the last at record ${verdict.lastCheckpoint}), ${verdict.unsignedTail} records after it\n`,
  );
  return 0;
}

export function auditExport(
  args: { state: string; referral: string; out?: string },
  io: Io,
): number {
  const text = readFileSync(join(args.state, AUDIT_FILE), "utf8");
  const records: AuditRecord[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      continue; // a torn last line; `audit verify` says whether anything else is wrong
    }
    const r = parsed as AuditRecord;
    if (!("checkpoint" in r) && r.referralId === args.referral) records.push(r);
  }
  if (records.length === 0)
    throw new StafettError("ERR_NOT_FOUND", "no audit records for this referral", {
      reason: "unknown_referral",
      field: "--referral",
    });
  const body = `${records.map((r) => JSON.stringify(r)).join("\n")}\n`;
  if (args.out === undefined || args.out === "-") io.out(body);
  else writeFile(args.out, body);
  io.err(`exported ${records.length} audit records of referral ${args.referral}\n`);
  return 0;
}
