/**
 * Trust lists are distributed through a JetStream KV bucket (key = country code) and watched:
 * a new list, once its anchor signature verifies, replaces the old one at once, so rotation and
 * revocation take effect without restarts. A list that fails verification is ignored and the
 * last good one stays in force. A list with a lower version than the one in force is refused.
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { KeyHandle } from "./keys.js";
import type { Logger } from "./logger.js";
import { TRUST_BUCKET } from "./provision.js";
import { TrustStore, verifyPartnerList, verifyTrustList, type TrustList } from "./trust.js";
import { StafettError, toStafettError } from "./errors.js";

export interface TrustSource {
  /** The own country and the anchor keys its trust list must be signed by. */
  country: string;
  anchors: readonly KeyHandle[];
  /**
   * The highest list version this party has held before, per country (its own and each
   * partner's, from its state): an older list in the bucket is refused, so a rollback cannot
   * undo a revocation across a restart.
   */
  minVersions?: Readonly<Record<string, number>>;
  /** Called with every list version taken into force, to remember it. */
  onVersion?: (country: string, version: number) => void;
}

/**
 * Holds the trust store in force: the own country's list (whose policy applies) and the lists of
 * the partner countries it names, each verified with the partner anchors the own list gives.
 */
export class TrustHolder {
  private store: TrustStore;
  private own: TrustList;
  private readonly partners = new Map<string, TrustList>();

  constructor(own: TrustList) {
    this.own = own;
    this.store = new TrustStore([own]);
  }

  get current(): TrustStore {
    return this.store;
  }

  get ownList(): TrustList {
    return this.own;
  }

  /** Replaces the own list; returns false when it is older than the one in force. */
  replaceOwn(list: TrustList): boolean {
    if (list.version < this.own.version) return false;
    this.own = list;
    this.rebuild();
    return true;
  }

  /** Replaces a partner's list; returns false when it is older than the one in force. */
  replacePartner(list: TrustList): boolean {
    const old = this.partners.get(list.country);
    if (old !== undefined && list.version < old.version) return false;
    this.partners.set(list.country, list);
    this.rebuild();
    return true;
  }

  private rebuild(): void {
    const named = new Set((this.own.partners ?? []).map((p) => p.country));
    this.store = new TrustStore([
      this.own,
      ...[...this.partners.values()].filter((l) => named.has(l.country)),
    ]);
  }
}

export interface TrustWatch {
  holder: TrustHolder;
  stop(): Promise<void>;
}

function checkNotRolledBack(list: TrustList, source: TrustSource): void {
  const held = source.minVersions?.[list.country] ?? 0;
  if (list.version < held)
    throw new StafettError(
      "ERR_TRUST_LIST_INVALID",
      `the ${list.country} trust list in the bucket (v${list.version}) is older than one this party already held (v${held})`,
      { reason: "rollback", field: "/version" },
    );
}

/**
 * Reads the own country's current list from the bucket (waiting for it up to `timeoutMs`) and
 * the partners' lists it names, then watches for new ones.
 */
export async function watchTrust(
  nc: NatsConnection,
  source: TrustSource,
  log: Logger,
  timeoutMs = 10_000,
): Promise<TrustWatch> {
  // Bind only: a service may read and watch the bucket that provisioning made, never create it.
  const kv = await new Kvm(nc).open(TRUST_BUCKET);
  const tlog = log.child({ component: "trust" });
  const deadline = Date.now() + timeoutMs;
  let own: TrustList;
  for (;;) {
    const entry = await kv.get(source.country);
    if (entry !== null && entry.operation === "PUT") {
      own = await verifyTrustList(entry.string(), source.anchors, source.country);
      checkNotRolledBack(own, source);
      source.onVersion?.(own.country, own.version);
      break;
    }
    if (Date.now() > deadline)
      throw new Error(`no trust list for ${source.country} in ${TRUST_BUCKET}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const holder = new TrustHolder(own);
  const isPartner = (code: string): boolean =>
    (holder.ownList.partners ?? []).some((p) => p.country === code);
  const accept = async (key: string, jws: string): Promise<void> => {
    if (key === source.country) {
      const list = await verifyTrustList(jws, source.anchors, source.country);
      if (holder.replaceOwn(list)) {
        source.onVersion?.(list.country, list.version);
        tlog.info({ country: list.country, version: list.version }, "trust list in force");
      } else
        tlog.warn({ country: list.country, version: list.version }, "older trust list ignored");
      return;
    }
    if (!isPartner(key)) return; // not a partner of ours
    const list = await verifyPartnerList(jws, holder.ownList);
    if (list.country !== key)
      throw new StafettError("ERR_TRUST_LIST_INVALID", "partner list under another country's key", {
        reason: "country",
      });
    checkNotRolledBack(list, source);
    if (holder.replacePartner(list)) {
      source.onVersion?.(list.country, list.version);
      tlog.info({ country: list.country, version: list.version }, "partner trust list in force");
    }
  };
  for (const { country: code } of own.partners ?? []) {
    const entry = await kv.get(code);
    if (entry !== null && entry.operation === "PUT") {
      await accept(code, entry.string()).catch((err: unknown) =>
        tlog.error(
          {
            country: code,
            err: toStafettError(err, "ERR_TRUST_LIST_INVALID", "trust list refused"),
          },
          "partner trust list refused",
        ),
      );
    }
  }
  // The watch starts with the current values, so nothing published since the reads above is missed.
  const watcher = await kv.watch();
  void (async () => {
    for await (const e of watcher) {
      if (e.operation !== "PUT") continue;
      try {
        await accept(e.key, e.string());
      } catch (err) {
        tlog.error(
          {
            country: e.key,
            err: toStafettError(err, "ERR_TRUST_LIST_INVALID", "trust list refused"),
          },
          "trust list refused; the previous one stays in force",
        );
      }
    }
  })();
  return {
    holder,
    async stop() {
      watcher.stop();
    },
  };
}
