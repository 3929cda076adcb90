// Loaded into a service process by the bench (latency and catch-up parts) with
// `--import=<this file>`: counts the node:crypto operations the service performs, of the kinds
// the primitive baseline measures, so that the ideals of the handoff and of the catch-up are
// priced from what the services really did, not from a list kept by hand. At exit it writes
// $STAFETT_BENCH_OPCOUNT_DIR/<pid>.json: { "service": "<STAFETT_ORG>", "counts": { ... } }.
// A counter is one property increment per call: nothing measurable next to the operation.
import crypto from "node:crypto";
import { writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";

const dir = process.env.STAFETT_BENCH_OPCOUNT_DIR;
if (dir) {
  const counts = {};
  /** Wraps crypto[name]; `kindOf` names the operation a call is, or undefined to not count it. */
  const count = (name, kindOf) => {
    const original = crypto[name];
    crypto[name] = function (...args) {
      const kind = kindOf(...args);
      if (kind !== undefined) counts[kind] = (counts[kind] ?? 0) + 1;
      return original.apply(this, args);
    };
  };
  const keyType = (key) => key?.asymmetricKeyType;
  /** Encryption and decryption, by cipher: the primitive baseline's names. */
  const ciphers = {
    "aes-256-gcm": ["aesGcmEncrypt", "aesGcmDecrypt"],
    "id-aes256-wrap": ["aesKwWrap", "aesKwUnwrap"],
  };
  const cipher = (alg, i) => {
    const name = String(alg).toLowerCase();
    return Object.hasOwn(ciphers, name) ? ciphers[name][i] : undefined;
  };
  count("sign", (_alg, _data, key) => (keyType(key) === "ed25519" ? "ed25519Sign" : undefined));
  count("verify", (_alg, _data, key) => (keyType(key) === "ed25519" ? "ed25519Verify" : undefined));
  count("diffieHellman", (o) => (keyType(o?.privateKey) === "x25519" ? "x25519Agree" : undefined));
  count("generateKeyPairSync", (type) => (type === "x25519" ? "x25519KeyGen" : undefined));
  count("createCipheriv", (alg) => cipher(alg, 0));
  count("createDecipheriv", (alg) => cipher(alg, 1));
  // The services import node:crypto's functions by name (ESM): make those bindings see the counters.
  syncBuiltinESMExports();
  process.once("exit", () => {
    writeFileSync(
      join(dir, `${process.pid}.json`),
      JSON.stringify({ service: process.env.STAFETT_ORG ?? "", counts }),
    );
  });
}
