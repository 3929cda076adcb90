/**
 * The access audit against running services: who read a child's data, and who acted, is
 * recorded before the answer leaves; only an auditor reads the audit; an audit that cannot be
 * written means no data; `stafett audit verify` checks what is on disk.
 */
import { existsSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalCountry, samplePersonal, waitFor } from "@stafett/devkit";
import { AUDIT_FILE, createLogger, type AuditRecord } from "@stafett/shared";
import { stafett } from "../support/cli.js";
import { Api } from "./api.js";

const log = createLogger({ service: "e2e", level: process.env.LOG_LEVEL ?? "silent" });
const STOCKHOLM = "se:municipality:0180";
const GOTEBORG = "se:municipality:1480";
let se: LocalCountry;
let stockholm: Api;

beforeAll(async () => {
  se = await LocalCountry.start({ municipalities: ["0180", "1480"], log });
  stockholm = await Api.for(se, STOCKHOLM, se.gateway("0180").url);
}, 60_000);

afterAll(async () => {
  await se?.stop();
});

/** An officer of Göteborg, as the identity provider would name her. */
async function officer(roles: string[] = []): Promise<Api> {
  return new Api(
    se.gateway("1480").url,
    await se.tokens.mint(GOTEBORG, "officer-7741", 600, { name: "Officer Testsson", roles }),
  );
}

async function referralInGoteborg(): Promise<string> {
  const res = await stockholm.post<{ referralId: string }>("/v1/referrals", {
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_MISSING",
    destination: { country: "se", municipality: "1480" },
    personal: samplePersonal(5),
  });
  expect(res.status).toBe(202);
  const id = res.body.referralId;
  await waitFor(() => se.gateway("1480").gateway.inboxItem(id) !== undefined, {
    timeoutMs: 15_000,
    message: "the referral in Göteborg's inbox",
  });
  return id;
}

const stateDir = (id: string) => se.runtime(id).stateDir;

/** Every string of at least four characters in a value: what must not leak from it. */
function stringsIn(value: unknown): string[] {
  if (typeof value === "string") return value.length >= 4 ? [value] : [];
  if (value === null || typeof value !== "object") return [];
  return Object.values(value).flatMap(stringsIn);
}

describe("the access audit of a municipality", () => {
  it("records each read of a child's data, naming the person, the referral and the purpose", async () => {
    const id = await referralInGoteborg();
    const anna = await officer();
    const auditor = await officer(["auditor"]);
    const records = async () =>
      (await auditor.get<{ records: AuditRecord[] }>(`/v1/audit?referralId=${id}`)).body.records;

    const first = await anna.call("GET", `/v1/inbox/${id}`, undefined, {
      "stafett-purpose": "assessment of the referral",
    });
    expect(first.status).toBe(200);
    expect(await records()).toMatchObject([
      {
        org: GOTEBORG,
        sub: "officer-7741",
        name: "Officer Testsson",
        action: "read",
        referralId: id,
        purpose: "assessment of the referral",
      },
    ]);
    expect((await anna.get(`/v1/inbox/${id}`)).status).toBe(200);
    expect((await records()).map((r) => r.action)).toEqual(["read", "read"]);

    // An action is recorded too, and only an auditor reads the audit.
    expect((await anna.post(`/v1/inbox/${id}/accept`)).status).toBe(200);
    expect((await records()).map((r) => r.action)).toEqual(["read", "read", "accepted"]);
    const refused = await anna.get("/v1/audit");
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: "ERR_FORBIDDEN" });
    // Nor an auditor of another organisation.
    const otherAuditor = new Api(
      se.gateway("1480").url,
      await se.tokens.mint(STOCKHOLM, "auditor-1", 600, { roles: ["auditor"] }),
    );
    expect((await otherAuditor.get("/v1/audit")).status).toBe(403);
  });

  it("answers 503 with no personal data when the audit cannot be written, and recovers", async () => {
    const id = await referralInGoteborg();
    const dir = stateDir(GOTEBORG);
    const file = join(dir, AUDIT_FILE);
    await se.gateway("1480").stop();
    renameSync(file, `${file}.kept`);
    symlinkSync("/dev/full", file); // every write: ENOSPC, as on a full disk
    try {
      await se.startGateway(GOTEBORG);
      const anna = await officer();
      const res = await anna.call("GET", `/v1/inbox/${id}`);
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ code: "ERR_UNAVAILABLE", reason: "audit" });
      expect(res.body).not.toHaveProperty("personal");
      const body = JSON.stringify(res.body);
      for (const value of stringsIn(samplePersonal(5))) expect(body).not.toContain(value);
      // An action too: nothing is sent when it cannot be recorded first.
      const sentBefore = se.gateway("1480").gateway.state.sent.size;
      const opened = await anna.post("/v1/referrals", {
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "se", municipality: "0180" },
        personal: samplePersonal(6),
      });
      expect(opened.status).toBe(503);
      expect(opened.body).toMatchObject({ code: "ERR_UNAVAILABLE", reason: "audit" });
      expect(se.gateway("1480").gateway.state.sent.size).toBe(sentBefore);
    } finally {
      await se.gateway("1480").stop();
      rmSync(file);
      renameSync(`${file}.kept`, file);
      await se.startGateway(GOTEBORG);
    }
    expect((await (await officer()).get(`/v1/inbox/${id}`)).status).toBe(200);
  });

  it("`stafett audit verify` checks the chain on disk and names a record that was altered", async () => {
    await se.gateway("1480").stop(); // a checkpoint is signed as it stops
    const dir = stateDir(GOTEBORG);
    const trust = join(dir, "trust-for-cli.jws");
    const anchor = join(dir, "anchor-for-cli.json");
    writeFileSync(trust, se.country.trustListJws);
    writeFileSync(anchor, JSON.stringify(se.country.anchorPublicJwk));
    const verify = (org = GOTEBORG) =>
      stafett([
        "audit",
        "verify",
        "--state",
        dir,
        "--org",
        org,
        "--trust",
        trust,
        "--anchor",
        anchor,
      ]);
    try {
      const verified = await verify();
      expect(verified.code, verified.text).toBe(0);
      expect(verified.text).toMatch(
        /audit verified: \d+ records of se:municipality:1480, \d+ signed checkpoints \(the last at record \d+\)/,
      );
      // Göteborg's audit is not Stockholm's: checked as Stockholm's, it is refused.
      const asStockholm = await verify(STOCKHOLM);
      expect(asStockholm.code, asStockholm.text).toBe(1);
      const file = join(dir, AUDIT_FILE);
      const { readFileSync } = await import("node:fs");
      const lines = readFileSync(file, "utf8").trimEnd().split("\n");
      const tampered = [...lines];
      tampered[0] = tampered[0]!.replace('"action":"read"', '"action":"opened"');
      renameSync(file, `${file}.kept`);
      writeFileSync(file, `${tampered.join("\n")}\n`);
      const altered = await verify();
      expect(altered.code).toBe(1);
      expect(altered.text).toMatch(/^rejected: ERR_AUDIT_BROKEN \(altered\) at line 1/);
      rmSync(file);
      renameSync(`${file}.kept`, file);
    } finally {
      if (!existsSync(join(dir, AUDIT_FILE)) && existsSync(join(dir, `${AUDIT_FILE}.kept`)))
        renameSync(join(dir, `${AUDIT_FILE}.kept`), join(dir, AUDIT_FILE));
      await se.startGateway(GOTEBORG);
    }
  });
});
