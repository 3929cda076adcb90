/**
 * `stafett nats users`: one NATS nkey user per organisation of the (verified) trust list, plus
 * the provisioning identity, each in its own account (`countryAccounts`, docs/contract.md principle 8):
 * the provisioner alone in STAFETT, where the streams are, every organisation in an account that
 * imports what its role needs. Seeds are written once, 0600, and reused on later runs, so
 * rerunning after a trust-list change keeps every existing user's key and only adds the new ones.
 * `accounts.json` is the `accounts` block for the broker's config; `stafett federation config`
 * writes the whole config, links included, from the same seeds. A seed of an organisation that
 * left the list stays on disk but gets no user.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createUser, fromSeed, type KeyPair } from "@nats-io/nkeys";
import {
  countryAccounts,
  PROVISIONER,
  readSecretFile,
  STAFETT_ACCOUNT,
  StafettError,
  verifyTrustList,
  type TrustList,
} from "@stafett/shared";
import { readAnchors, writeFile } from "../files.js";
import type { Io } from "../io.js";

export { PROVISIONER };

/** `se:municipality:0180` -> `se-municipality-0180.nk` (colons are awkward in file names). */
export function seedFileName(org: string): string {
  return `${org.replaceAll(":", "-")}.nk`;
}

/** The user's key pair from its seed file (refused unless 0600), or a new one written 0600. */
function userKey(file: string): { kp: KeyPair; created: boolean } {
  if (existsSync(file)) {
    let kp: KeyPair;
    try {
      kp = fromSeed(readSecretFile(file));
    } catch (cause) {
      if (cause instanceof StafettError) throw cause;
      throw new StafettError("ERR_KEY_INVALID", `${file} does not hold an nkey seed`, {
        reason: "not_seed",
        field: file,
        cause,
      });
    }
    if (!kp.getPublicKey().startsWith("U")) {
      throw new StafettError("ERR_KEY_INVALID", `${file} holds an nkey seed that is not a user's`, {
        reason: "not_user_seed",
        field: file,
      });
    }
    return { kp, created: false };
  }
  const kp = createUser();
  // "wx": never overwrite a seed, whatever happened between the check and the write.
  writeFileSync(file, `${new TextDecoder().decode(kp.getSeed())}\n`, { mode: 0o600, flag: "wx" });
  return { kp, created: true };
}

/**
 * The public nkeys of every organisation of the list and the provisioner, from their seed files
 * in `dir` (refused unless 0600), creating those that are missing.
 */
export function nkeysInDir(
  list: TrustList,
  dir: string,
): { nkeys: Map<string, string>; created: string[] } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const nkeys = new Map<string, string>();
  const created: string[] = [];
  for (const org of [...list.organisations.map((o) => o.id), PROVISIONER]) {
    const { kp, created: isNew } = userKey(join(dir, seedFileName(org)));
    nkeys.set(org, kp.getPublicKey());
    if (isNew) created.push(org);
  }
  return { nkeys, created };
}

export async function natsUsers(
  args: { trust: string; anchor: string; out: string },
  io: Io,
): Promise<number> {
  const list = await verifyTrustList(
    readFileSync(args.trust, "utf8").trim(),
    await readAnchors(args.anchor),
  );
  const { nkeys, created } = nkeysInDir(list, args.out);
  const accounts = { accounts: countryAccounts({ trustList: list, nkeys }) };
  const file = join(args.out, "accounts.json");
  writeFile(file, `${JSON.stringify(accounts, null, 2)}\n`);
  io.out(
    `${file}: ${nkeys.size} nkey users (${list.organisations.length} organisations of ${list.country} v${list.version} and the ${PROVISIONER}), ` +
      `each organisation in an account of its own, the ${PROVISIONER} in ${STAFETT_ACCOUNT}; ` +
      `\`stafett federation config\` writes the broker's whole config from these seeds\n` +
      `seeds (0600) in ${args.out}/: ${created.length} new, ${nkeys.size - created.length} kept; give each organisation only its own (NATS_NKEY_FILE)\n`,
  );
  return 0;
}
