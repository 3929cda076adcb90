// Loaded into each service process of the latency part with `--import=<this file>`: counts the
// node:crypto operations the service performs (the same kinds the primitive baseline measures),
// so that the ideal of the whole handoff is computed from what the services really did, not
// from a list kept by hand. At exit it writes $STAFETT_BENCH_OPCOUNT_DIR/<pid>.json:
// { "service": "<STAFETT_ORG>", "counts": { "ed25519Sign": n, ... } }.
// A counter is one property increment per call: nothing measurable next to the operation.
import crypto from "node:crypto";
import { writeFileSync } from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";

const dir = process.env.STAFETT_BENCH_OPCOUNT_DIR;
if (dir) {
  const counts = {};
  const count = (name, kindOf) => {
    const original = crypto[name];
    crypto[name] = function (...args) {
      const kind = kindOf(...args);
      if (kind !== undefined) counts[kind] = (counts[kind] ?? 0) + 1;
      return original.apply(this, args);
    };
  };
  const cipher = { "aes-256-gcm": "aesGcm", "id-aes256-wrap": "aesKw" };
  count("sign", () => "ed25519Sign");
  count("verify", () => "ed25519Verify");
  count("diffieHellman", () => "x25519Agree");
  count("generateKeyPairSync", (type) => (type === "x25519" ? "x25519KeyGen" : undefined));
  count("createCipheriv", (alg) => (alg in cipher ? `${cipher[alg]}Encrypt` : undefined));
  count("createDecipheriv", (alg) => (alg in cipher ? `${cipher[alg]}Decrypt` : undefined));
  // The services import node:crypto's functions by name (ESM): make those bindings see the counters.
  syncBuiltinESMExports();
  process.once("exit", () => {
    // AES-KW is a wrap going out and an unwrap coming in: the primitive baseline's names.
    const { aesKwEncrypt, aesKwDecrypt, ...rest } = counts;
    const named = {
      ...rest,
      ...(aesKwEncrypt === undefined ? {} : { aesKwWrap: aesKwEncrypt }),
      ...(aesKwDecrypt === undefined ? {} : { aesKwUnwrap: aesKwDecrypt }),
    };
    writeFileSync(
      join(dir, `${process.pid}.json`),
      JSON.stringify({ service: process.env.STAFETT_ORG ?? "", counts: named }),
    );
  });
}
