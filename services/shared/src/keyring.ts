/**
 * An organisation's private keys during a rollover: several signing keys and several encryption
 * keys, held at once so that a key can be replaced without losing anything (docs/operations.md,
 * "Rotating an organisation's keys").
 *
 * - It signs with its newest signing key that the trust list in force holds valid now (the
 *   latest `notBefore` among the usable ones): a new key is installed first and used from the
 *   moment the trust list names it, and an old one stops being used once it is revoked or has
 *   expired, without a restart.
 * - It opens a sealed part with whichever of its encryption keys the part was sealed to: parts
 *   sealed to a retired key stay readable as long as its file is configured. Senders seal new
 *   parts to the newest valid encryption key the trust list names (TrustStore.encryptionKeys).
 *
 * A Keyring is an `Identity`: `signing` and `encryption` are read at the moment of use.
 */
import { StafettError } from "./errors.js";
import { open, recipientKids } from "./jwe.js";
import type { KeyHandle } from "./keys.js";
import type { Identity } from "./pipeline.js";
import type { TrustKey, TrustStore } from "./trust.js";

export class Keyring implements Identity {
  readonly id: string;
  /** Every signing key held, in the order configured. */
  readonly signingKeys: readonly KeyHandle[];
  /** Every encryption key held, in the order configured. */
  readonly decryption: readonly KeyHandle[];
  private trust: (() => TrustStore) | undefined;
  private readonly clock: () => Date;

  constructor(
    id: string,
    signing: readonly KeyHandle[],
    encryption: readonly KeyHandle[],
    clock: () => Date = () => new Date(),
  ) {
    if (signing.length === 0 || encryption.length === 0)
      throw new StafettError(
        "ERR_KEY_INVALID",
        "an organisation needs at least one signing and one encryption key",
        { reason: "missing" },
      );
    for (const list of [signing, encryption])
      if (new Set(list.map((k) => k.kid)).size !== list.length)
        throw new StafettError("ERR_KEY_INVALID", "the same key is configured twice", {
          reason: "duplicate_kid",
        });
    this.id = id;
    this.signingKeys = [...signing];
    this.decryption = [...encryption];
    this.clock = clock;
  }

  /** The trust lists in force, read at each use (the party binds its watched store). */
  useTrust(trust: () => TrustStore): void {
    this.trust = trust;
  }

  /**
   * The key it signs with: the newest held key the trust list holds valid now. Without a trust
   * list, or when none is valid, the newest listed one (issuing then refuses with the key's
   * code), else the last configured.
   */
  get signing(): KeyHandle {
    return this.newest(this.signingKeys);
  }

  /** Its newest encryption key (by the same rule); opening uses whichever key a part names. */
  get encryption(): KeyHandle {
    return this.newest(this.decryption);
  }

  private newest(keys: readonly KeyHandle[]): KeyHandle {
    const last = keys[keys.length - 1];
    if (last === undefined) throw new Error("a keyring holds at least one key of each use");
    const store = this.trust?.();
    if (store === undefined || keys.length === 1) return last;
    const now = this.clock().getTime();
    let best: { handle: KeyHandle; entry: TrustKey; usable: boolean } | undefined;
    for (const handle of keys) {
      const entry = store.key(handle.kid);
      if (entry === undefined) continue;
      const usable = isUsable(entry, now);
      const better =
        best === undefined ||
        (usable && !best.usable) ||
        (usable === best.usable && Date.parse(entry.notBefore) >= Date.parse(best.entry.notBefore));
      if (better) best = { handle, entry, usable };
    }
    return best?.handle ?? last;
  }
}

function isUsable(key: TrustKey, now: number): boolean {
  return (
    key.revokedAt === undefined &&
    Date.parse(key.notBefore) <= now &&
    now <= Date.parse(key.notAfter)
  );
}

/** Every encryption key an identity holds: a keyring's list, or its one key. */
export function decryptionKeysOf(identity: {
  encryption?: KeyHandle;
  decryption?: readonly KeyHandle[];
}): readonly KeyHandle[] {
  if (identity.decryption !== undefined) return identity.decryption;
  return identity.encryption === undefined ? [] : [identity.encryption];
}

/** The identity's key that `kids` (a sealed part's recipients) names, if it holds one. */
export function decryptionKeyFor(
  identity: { encryption?: KeyHandle; decryption?: readonly KeyHandle[] },
  kids: readonly string[],
): KeyHandle | undefined {
  return decryptionKeysOf(identity).find((k) => kids.includes(k.kid));
}

/**
 * Opens a personal part sealed to `identity` for a reader at this party, with whichever of its
 * keys the part names: one sealed before a key rotation opens with the old key as long as its
 * file stays configured. ERR_NOT_RECIPIENT when there is no part (`not_recipient`) or the part
 * names none of the keys held (`key_not_held`).
 */
export async function openPersonal(
  identity: { encryption?: KeyHandle; decryption?: readonly KeyHandle[] },
  sealed: string | undefined,
  referralId: string,
): Promise<unknown> {
  if (sealed === undefined)
    throw new StafettError("ERR_NOT_RECIPIENT", "no personal part for this reader", {
      reason: "not_recipient",
      field: "personal",
    });
  const key = decryptionKeyFor(identity, recipientKids(sealed));
  if (key === undefined)
    throw new StafettError(
      "ERR_NOT_RECIPIENT",
      "the personal part is sealed to a key this party does not hold",
      { reason: "key_not_held", field: "personal" },
    );
  return open(sealed, key, referralId);
}

/**
 * A signing key handle that follows the identity: whatever key the identity signs with at the
 * moment it is used (for what keeps a handle, such as the access audit's checkpoints).
 */
export function currentSigningKey(identity: Pick<Identity, "signing">): KeyHandle {
  return {
    get kid() {
      return identity.signing.kid;
    },
    get key() {
      return identity.signing.key;
    },
    get keyObject() {
      return identity.signing.keyObject;
    },
  };
}
