// Run by op-count.test.ts in a child process under bench/op-count.mjs: one two-recipient seal,
// one opening, one detached signature and one verification through @stafett/shared, with keys
// made by jose (WebCrypto), which the counters do not see.
import { randomUUID } from "node:crypto";
import {
  generateEncryptionKey,
  generateSigningKey,
  importEncryptionKey,
  importSigningKey,
  open,
  seal,
  signDetached,
  verifyDetached,
} from "@stafett/shared";

const signing = await generateSigningKey();
const [first, second] = await Promise.all([generateEncryptionKey(), generateEncryptionKey()]);
const referralId = randomUUID();
const sealed = await seal(
  { givenName: "Testa" },
  [await importEncryptionKey(first.publicJwk), await importEncryptionKey(second.publicJwk)],
  referralId,
);
await open(sealed, await importEncryptionKey(first.privateJwk), referralId);
const payload = new TextEncoder().encode("an event");
const jws = await signDetached(payload, await importSigningKey(signing.privateJwk));
await verifyDetached(jws, payload, await importSigningKey(signing.publicJwk));
