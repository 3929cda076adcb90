import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  generateOrganisationKeys,
  generateSigningKey,
  parseOrgId,
  StafettError,
} from "@stafett/shared";
import { writeFile } from "../files.js";
import type { Io } from "../io.js";

/** File stem for an organisation: "se:municipality:0180" -> "se-municipality-0180". */
export const fileStem = (orgId: string): string => orgId.replaceAll(":", "-");

/** Refuses to write over a key file: a lost private key loses what was sealed to it. */
function refuseExisting(paths: readonly string[]): void {
  const existing = paths.find((p) => existsSync(p));
  if (existing !== undefined)
    throw new StafettError(
      "ERR_CONFIG_INVALID",
      `${existing} exists; keys are never overwritten (give a rollover's new pair a --label)`,
      { reason: "exists", field: existing },
    );
}

export async function keysGenerate(
  args: { org?: string; anchor?: boolean; label?: string; out: string },
  io: Io,
): Promise<number> {
  if (args.anchor === true) {
    const anchor = await generateSigningKey();
    const stem = join(args.out, args.label === undefined ? "anchor" : `anchor.${args.label}`);
    refuseExisting([`${stem}.jwk.json`, `${stem}.pub.jwk.json`]);
    writeFile(`${stem}.jwk.json`, JSON.stringify(anchor.privateJwk, null, 2), true);
    writeFile(`${stem}.pub.jwk.json`, JSON.stringify(anchor.publicJwk, null, 2));
    io.out(
      `anchor key ${anchor.publicJwk.kid}\n  private ${stem}.jwk.json (0600)\n  public  ${stem}.pub.jwk.json\n`,
    );
    return 0;
  }
  if (args.org === undefined) return io.usage("keys generate needs --org <id>");
  parseOrgId(args.org);
  if (args.label !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(args.label))
    return io.usage("--label is up to 32 letters, digits, - or _");
  const keys = await generateOrganisationKeys();
  const stem = join(
    args.out,
    args.label === undefined ? fileStem(args.org) : `${fileStem(args.org)}.${args.label}`,
  );
  refuseExisting(
    ["sig.jwk.json", "sig.pub.jwk.json", "enc.jwk.json", "enc.pub.jwk.json"].map(
      (s) => `${stem}.${s}`,
    ),
  );
  writeFile(`${stem}.sig.jwk.json`, JSON.stringify(keys.signing.privateJwk, null, 2), true);
  writeFile(`${stem}.sig.pub.jwk.json`, JSON.stringify(keys.signing.publicJwk, null, 2));
  writeFile(`${stem}.enc.jwk.json`, JSON.stringify(keys.encryption.privateJwk, null, 2), true);
  writeFile(`${stem}.enc.pub.jwk.json`, JSON.stringify(keys.encryption.publicJwk, null, 2));
  io.out(
    `${args.org}\n  signing    ${keys.signing.publicJwk.kid}  ${stem}.sig.jwk.json (0600), ${stem}.sig.pub.jwk.json\n` +
      `  encryption ${keys.encryption.publicJwk.kid}  ${stem}.enc.jwk.json (0600), ${stem}.enc.pub.jwk.json\n`,
  );
  return 0;
}
