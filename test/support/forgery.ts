/**
 * Forgeries the security tests send: an event whose signatures gain one more that names `kid`
 * (a real key's id, the liaison's, say) but is made with a fresh key that `kid` does not belong
 * to, as an insider without that key would have to make it.
 */
import {
  decodeSignedEvent,
  encodeSignedEvent,
  generateSigningKey,
  importSigningKey,
  signDetached,
} from "@stafett/shared";

export async function withForgedSignature(bytes: Uint8Array, kid: string): Promise<Uint8Array> {
  const forger = await importSigningKey((await generateSigningKey()).privateJwk);
  const p = decodeSignedEvent(bytes);
  return encodeSignedEvent({
    event: p.event,
    signatures: [...p.signatures, await signDetached(p.event, { kid, key: forger.key })],
  });
}
