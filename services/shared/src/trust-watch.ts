/**
 * Trust lists are distributed through a JetStream KV bucket (key = country code) and watched:
 * a new list, once its anchor signature verifies, replaces the old one at once, so rotation and
 * revocation take effect without restarts. A list that fails verification is ignored and the
 * last good one stays in force. A list with a lower version than the one in force is refused.
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { StorageType } from "@nats-io/jetstream";
import type { KeyHandle } from "./keys.js";
import type { Logger } from "./logger.js";
import { TRUST_BUCKET } from "./provision.js";
import { TrustStore, verifyTrustList, type TrustList } from "./trust.js";
import { toStafettError } from "./errors.js";

export interface TrustSource {
  /** The own country first; its policy applies. */
  countries: readonly { code: string; anchors: readonly KeyHandle[] }[];
}

/** Holds the trust store in force; readers call `current` for every message. */
export class TrustHolder {
  private store: TrustStore;
  private readonly lists = new Map<string, TrustList>();
  private readonly order: readonly string[];

  constructor(initial: readonly TrustList[]) {
    this.store = new TrustStore(initial);
    this.order = initial.map((l) => l.country);
    for (const l of initial) this.lists.set(l.country, l);
  }

  get current(): TrustStore {
    return this.store;
  }

  /** Replaces one country's list; returns false when it is older than the one in force. */
  replace(list: TrustList): boolean {
    const old = this.lists.get(list.country);
    if (old !== undefined && list.version < old.version) return false;
    this.lists.set(list.country, list);
    const ordered = this.order
      .map((c) => this.lists.get(c))
      .filter((l): l is TrustList => l !== undefined);
    this.store = new TrustStore(ordered);
    return true;
  }
}

export interface TrustWatch {
  holder: TrustHolder;
  stop(): Promise<void>;
}

/**
 * Reads each country's current list from the bucket (waiting for it up to `timeoutMs`), then
 * watches for new ones.
 */
export async function watchTrust(
  nc: NatsConnection,
  source: TrustSource,
  log: Logger,
  timeoutMs = 10_000,
): Promise<TrustWatch> {
  const kv = await new Kvm(nc).create(TRUST_BUCKET, { history: 10, storage: StorageType.File });
  const tlog = log.child({ component: "trust" });
  const initial: TrustList[] = [];
  for (const { code, anchors } of source.countries) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const entry = await kv.get(code);
      if (entry !== null && entry.operation === "PUT") {
        initial.push(await verifyTrustList(entry.string(), anchors));
        break;
      }
      if (Date.now() > deadline) throw new Error(`no trust list for ${code} in ${TRUST_BUCKET}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const holder = new TrustHolder(initial);
  tlog.info({ versions: initial.map((l) => `${l.country}:${l.version}`) }, "trust lists loaded");
  const anchorsOf = new Map(source.countries.map((c) => [c.code, c.anchors]));
  // The watch starts with the current values, so nothing published since the reads above is missed.
  const watcher = await kv.watch();
  void (async () => {
    for await (const e of watcher) {
      const anchors = anchorsOf.get(e.key);
      if (anchors === undefined || e.operation !== "PUT") continue;
      try {
        const list = await verifyTrustList(e.string(), anchors);
        if (holder.replace(list))
          tlog.info({ country: list.country, version: list.version }, "trust list updated");
        else
          tlog.warn({ country: list.country, version: list.version }, "older trust list ignored");
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
