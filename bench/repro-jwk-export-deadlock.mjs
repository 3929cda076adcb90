// Reproduces the Node 20 deadlock that jwe.ts avoids: generate an X25519 key pair, then export
// its public half as a JWK, many times, with garbage collections forced often. Sooner or later
// a collection during the export destroys the finished key generation job, whose destructor
// takes the key's mutex, which the export already holds: the process hangs in a futex wait,
// timers and all. Generating with `publicKeyEncoding: { format: "jwk" }` (what jwe.ts does)
// does not. Usage: node bench/repro-jwk-export-deadlock.mjs   (about a minute; prints both)
import { spawnSync } from "node:child_process";
import { diffieHellman, generateKeyPairSync } from "node:crypto";
import { fileURLToPath } from "node:url";

const ITERATIONS = 300_000;

function stress(mode) {
  const peer = generateKeyPairSync("x25519").publicKey;
  let garbage = [];
  for (let i = 0; i < ITERATIONS; i++) {
    let pair;
    let x;
    if (mode === "export-after") {
      pair = generateKeyPairSync("x25519");
      x = pair.publicKey.export({ format: "jwk" }).x;
    } else {
      pair = generateKeyPairSync("x25519", { publicKeyEncoding: { format: "jwk" } });
      x = pair.publicKey.x;
    }
    diffieHellman({ privateKey: pair.privateKey, publicKey: peer });
    garbage.push({ x, filler: "y".repeat(200) });
    if (garbage.length > 2_000) garbage = [];
  }
}

const mode = process.argv[2];
if (mode !== undefined) {
  stress(mode);
} else {
  const self = fileURLToPath(import.meta.url);
  for (const m of ["export-after", "encode-in-generation"]) {
    const r = spawnSync(process.execPath, ["--max-semi-space-size=1", self, m], {
      timeout: 60_000,
    });
    const outcome =
      r.error?.code === "ETIMEDOUT" ? "hung (killed after 60 s)" : `exited ${r.status}`;
    console.log(`${m}: ${outcome}`);
  }
}
