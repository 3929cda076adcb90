/**
 * `stafett nats users`: one NATS nkey user per organisation of the (verified) trust list, plus
 * the provisioning identity, with permissions derived from the list's policy
 * (`authorizationUsers`, docs/contract.md, principle 8). Seeds are written once, 0600, and reused
 * on later runs, so rerunning after a trust-list change keeps every existing user's key and only
 * adds the new ones. `accounts.json` is the `accounts` block for the broker's config: its users
 * go next to the federation links' users (`stafett federation config`), in place of the shared
 * password user. A seed of an organisation that left the list stays on disk but gets no user.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createUser, fromSeed, type KeyPair } from "@nats-io/nkeys";
import {
  authorizationUsers,
  readSecretFile,
  STAFETT_ACCOUNT,
  StafettError,
  verifyTrustList,
  type NkeyUser,
} from "@stafett/shared";
import { readAnchors, writeFile } from "../files.js";
import type { Io } from "../io.js";

export const PROVISIONER = "provisioner";

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

export async function natsUsers(
  args: { trust: string; anchor: string; out: string },
  io: Io,
): Promise<number> {
  const list = await verifyTrustList(
    readFileSync(args.trust, "utf8").trim(),
    await readAnchors(args.anchor),
  );
  mkdirSync(args.out, { recursive: true, mode: 0o700 });
  const users: NkeyUser[] = [];
  const created: string[] = [];
  for (const org of [...list.organisations.map((o) => o.id), PROVISIONER]) {
    const { kp, created: isNew } = userKey(join(args.out, seedFileName(org)));
    users.push({ org, nkey: kp.getPublicKey() });
    if (isNew) created.push(org);
  }
  const accounts = {
    accounts: {
      [STAFETT_ACCOUNT]: { jetstream: "enabled", users: authorizationUsers(list, users) },
    },
  };
  const file = join(args.out, "accounts.json");
  writeFile(file, `${JSON.stringify(accounts, null, 2)}\n`);
  io.out(
    `${file}: ${users.length} nkey users (${list.organisations.length} organisations of ${list.country} v${list.version} and the ${PROVISIONER}) ` +
      `for account ${STAFETT_ACCOUNT}; \`stafett federation config --nats-users ${args.out}\` puts them in the broker's config ` +
      `(beside the link-* users of federation links, instead of the shared password user)\n` +
      `seeds (0600) in ${args.out}/: ${created.length} new, ${users.length - created.length} kept; give each organisation only its own (NATS_NKEY_FILE)\n`,
  );
  return 0;
}
