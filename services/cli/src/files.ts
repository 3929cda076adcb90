/** Writing key and trust files; private keys are written 0600. Reading is @stafett/shared's. */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export {
  readAnchorKeys as readAnchors,
  readJsonFile as readJson,
  readPrivateJwk,
  readPublicJwk,
} from "@stafett/shared";

export function writeFile(path: string, data: string | Uint8Array, secret = false): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data, { mode: secret ? 0o600 : 0o644 });
}
