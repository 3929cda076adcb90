/**
 * Trust lists are distributed through a JetStream KV bucket (key = country code) and watched:
 * a new list, once its anchor signature verifies, replaces the old one at once, so rotation and
 * revocation take effect without restarts. A list that fails verification is ignored and the
 * last good one stays in force. A list with a lower version than the one in force is refused.
 *
 * The watch needs no consumer on the bucket (an organisation's account cannot create one): it
 * reads each list by a direct get and hears every put to the bucket as it is made (the bucket's
 * subjects, imported into the organisation's account), and reads again every few seconds and
 * after a reconnect, so a put missed while disconnected, or a bucket deleted and re-created,
 * is caught up. While the bucket or the own list is missing the service keeps the lists it holds,
 * logs ERR_TRUST_BUCKET_MISSING once and reports not ready; when it is back, it is ready again.
 */
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type { BusHealth } from "./bus-health.js";
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

  /** Stops trusting a partner's list (its anchor is no longer the one the own list gives). */
  dropPartner(country: string): void {
    if (this.partners.delete(country)) this.rebuild();
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

/** What the watch needs of the connection: `Bus` has it. */
export interface TrustBus {
  nc: NatsConnection;
  /** Where the JetStream API is in the connection's account (`$JS.API` or `ORG_API_PREFIX`). */
  apiPrefix: string;
  health: BusHealth;
}

export interface WatchOptions {
  /** How long to wait at start for the own list to be in the bucket. */
  timeoutMs?: number;
  /** How often the lists are read again (besides every put, heard as it happens). */
  refreshMs?: number;
}

/** How often the lists are read again by default. */
export const TRUST_REFRESH_MS = 5_000;

type Read = { jws: string; revision: number } | "absent" | "no_bucket";

/**
 * Reads the own country's current list from the bucket (waiting for it up to `timeoutMs`) and
 * the partners' lists it names, then watches for new ones.
 */
export async function watchTrust(
  bus: TrustBus,
  source: TrustSource,
  log: Logger,
  options: WatchOptions = {},
): Promise<TrustWatch> {
  const { nc, apiPrefix, health } = bus;
  const tlog = log.child({ component: "trust" });
  const bucketStream = `KV_${TRUST_BUCKET}`;
  const read = async (key: string): Promise<Read> => {
    try {
      const m = await nc.request(
        `${apiPrefix}.DIRECT.GET.${bucketStream}.$KV.${TRUST_BUCKET}.${key}`,
        new Uint8Array(0),
        { timeout: 2_000, headers: natsHeaders() },
      );
      const status = m.headers?.code ?? 0;
      if (status === 404) return "absent";
      if (status !== 0 && status !== 200) return "no_bucket";
      const op = m.headers?.get("KV-Operation") ?? "";
      if (op === "DEL" || op === "PURGE") return "absent";
      return { jws: m.string(), revision: Number(m.headers?.get("Nats-Sequence") ?? 0) };
    } catch {
      // No responders (the bucket's stream is gone) or no answer in time.
      return "no_bucket";
    }
  };

  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let own: TrustList;
  let ownJws: string;
  for (;;) {
    const entry = await read(source.country);
    if (typeof entry === "object") {
      own = await verifyTrustList(entry.jws, source.anchors, source.country);
      ownJws = entry.jws;
      checkNotRolledBack(own, source);
      source.onVersion?.(own.country, own.version);
      break;
    }
    if (Date.now() > deadline)
      throw new Error(`no trust list for ${source.country} in ${TRUST_BUCKET}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const holder = new TrustHolder(own);
  /** The partners the own list in force names (their lists verify with the anchors it gives). */
  const partners = (): string[] => (holder.ownList.partners ?? []).map((p) => p.country);
  /** The text of the list last taken (or refused) per key: the same text is not verified again. */
  const seen = new Map<string, string>([[source.country, ownJws]]);
  const accept = async (key: string, jws: string): Promise<void> => {
    if (seen.get(key) === jws) return;
    seen.set(key, jws);
    if (key === source.country) {
      const list = await verifyTrustList(jws, source.anchors, source.country);
      if (holder.replaceOwn(list)) {
        source.onVersion?.(list.country, list.version);
        // The partners' lists held were verified with the anchors the old list gave: each must
        // verify with the new one's, or it stops counting (a partner anchor rotated out).
        for (const [code, text] of [...seen]) {
          if (code === source.country) continue;
          seen.delete(code);
          await verifyPartnerList(text, list).catch(() => {
            holder.dropPartner(code);
            tlog.warn(
              { country: code, code: "ERR_TRUST_LIST_INVALID", reason: "anchor" },
              "partner trust list no longer verifies with the anchors the own list gives; dropped",
            );
          });
        }
        tlog.info({ country: list.country, version: list.version }, "trust list in force");
      } else
        tlog.warn({ country: list.country, version: list.version }, "older trust list ignored");
      return;
    }
    if (!partners().includes(key)) return; // not a partner of ours
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
  const acceptLogged = (key: string, jws: string): Promise<void> =>
    accept(key, jws).catch((err: unknown) =>
      tlog.error(
        {
          country: key,
          err: toStafettError(err, "ERR_TRUST_LIST_INVALID", "trust list refused"),
        },
        "trust list refused; the previous one stays in force",
      ),
    );

  const missing = (reason: string): void => {
    if (health.fail("trust", "ERR_TRUST_BUCKET_MISSING", reason))
      tlog.error(
        {
          err: new StafettError("ERR_TRUST_BUCKET_MISSING", "the trust bucket cannot be read", {
            reason,
          }),
        },
        "trust lists cannot arrive; the lists in force stay, not ready until the bucket is back",
      );
  };
  /** Reads every list this party follows; marks the bucket missing or present. */
  let refreshing: Promise<void> | undefined;
  const refresh = (): Promise<void> =>
    (refreshing ??= (async () => {
      const ownEntry = await read(source.country);
      if (ownEntry === "no_bucket") return missing("bucket");
      if (ownEntry === "absent") return missing("no_list");
      await acceptLogged(source.country, ownEntry.jws);
      for (const code of partners()) {
        const entry = await read(code);
        if (typeof entry === "object") await acceptLogged(code, entry.jws);
      }
      if (health.ok("trust")) tlog.info({}, "trust bucket readable again; ready");
    })().finally(() => {
      refreshing = undefined;
    }));

  for (const code of partners()) {
    const entry = await read(code);
    if (typeof entry === "object") await acceptLogged(code, entry.jws);
  }
  // Every put, as it is made: a revocation applies at once, not at the next refresh.
  const puts = nc.subscribe(`$KV.${TRUST_BUCKET}.>`, {
    callback: (_err, m) => {
      const op = m.headers?.get("KV-Operation") ?? "";
      if (op === "DEL" || op === "PURGE") return;
      const key = m.subject.slice(`$KV.${TRUST_BUCKET}.`.length);
      // A put of the own list means the bucket is there again: read everything now.
      if (key === source.country && health.problems.some((p) => p.component === "trust"))
        void refresh();
      void acceptLogged(key, m.string());
    },
  });
  const deleted = nc.subscribe(`$JS.EVENT.ADVISORY.STREAM.DELETED.${bucketStream}`, {
    callback: () => {
      missing("deleted");
      void refresh();
    },
  });
  const timer = setInterval(() => void refresh(), options.refreshMs ?? TRUST_REFRESH_MS);
  timer.unref();
  void (async () => {
    for await (const s of nc.status()) if (s.type === "reconnect") void refresh();
  })().catch(() => undefined);
  return {
    holder,
    async stop() {
      clearInterval(timer);
      puts.unsubscribe();
      deleted.unsubscribe();
      await refreshing?.catch(() => undefined);
    },
  };
}
