/** Writing key and trust files; private keys are written 0600. Reading is @stafett/shared's. */
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export {
  readAnchorKeys as readAnchors,
  readJsonFile as readJson,
  readPrivateJwk,
  readPublicJwk,
} from "@stafett/shared";

export function writeFile(path: string, data: string | Uint8Array, secret = false): void {
  mkdirSync(dirname(path), { recursive: true });
  // The mode applies only to a file created here: a secret rewritten into an existing file (the
  // hub's running config) would keep that file's mode, so tighten it before the secret goes in.
  if (secret && existsSync(path)) chmodSync(path, 0o600);
  writeFileSync(path, data, { mode: secret ? 0o600 : 0o644 });
}
