/**
 * Provisioning a country on its NATS: the referral stream (work-queue retention: a message is
 * gone once its one recipient acked it), the quarantine stream, one durable pull consumer per
 * recipient filtered on its own address, and the trust list in a KV bucket that services watch.
 * Every stream has a size limit and a per-message limit (the broker's disk cannot be filled
 * through them), and the trust bucket refuses purges and message deletes.
 * Idempotent: running it twice changes nothing; a changed trust list adds or removes consumers.
 */
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { isNotFound } from "./bus.js";
import { consumersOf, countrySubjects, quarantineStreamName, streamName } from "./subjects.js";
import type { TrustList } from "./trust.js";

export const TRUST_BUCKET = "stafett-trust";

export interface ProvisionOptions {
  /** How long an undelivered referral may wait in the stream. */
  maxAgeMs?: number;
  duplicateWindowMs?: number;
  replicas?: number;
  /** Stream limits; when full, publishes are refused (discard new) rather than losing old ones. */
  maxMsgs?: number;
  maxBytes?: number;
  /** Largest message the stream stores (an event the receivers would refuse as oversize is refused here). */
  maxMsgSize?: number;
  maxDeliver?: number;
  /**
   * Redelivery delays after an unacked delivery; the first is the ack wait (nats-server sets
   * ack_wait to backoff[0]). A handler that fails naks with its own, shorter delay.
   */
  backoffMs?: number[];
  quarantineMaxAgeMs?: number;
  /** The quarantine's size; when full, its oldest entries go (a flood cannot stop refusals). */
  quarantineMaxBytes?: number;
  trustMaxBytes?: number;
}

export const PROVISION_DEFAULTS = {
  maxAgeMs: 14 * 24 * 3_600_000,
  duplicateWindowMs: 24 * 3_600_000,
  replicas: 1,
  maxMsgs: -1,
  maxBytes: 1024 * 1024 * 1024,
  // DEFAULT_MAX_BYTES (256 KiB) for the event, and its headers.
  maxMsgSize: 288 * 1024,
  maxDeliver: 6,
  backoffMs: [5_000, 15_000, 30_000, 60_000, 120_000],
  // Refused messages may hold a sealed personal part: kept only as long as an operator needs to
  // act on one (a working week and a weekend), not 90 days (docs/data-protection.md).
  quarantineMaxAgeMs: 7 * 24 * 3_600_000,
  quarantineMaxBytes: 256 * 1024 * 1024,
  trustMaxBytes: 64 * 1024 * 1024,
} as const;

/** A trust list (all of a country's organisations and their keys) is far below this. */
const TRUST_LIST_MAX_BYTES = 1024 * 1024;
/** Quarantine entries carry the refused bytes and their reason headers. */
const QUARANTINE_HEADER_BYTES = 32 * 1024;

export interface ProvisionReport {
  stream: string;
  streamChanged: "created" | "updated" | "unchanged";
  consumersCreated: string[];
  consumersUpdated: string[];
  consumersDeleted: string[];
  trustListRevision: number | undefined;
}

const ms = (n: number): number => n * 1_000_000;

/**
 * The country stream's subjects: the address of every organisation in the trust list (each
 * consumer's filter), so a message to an address the list does not name is stored nowhere; or,
 * without a list, everything of the country.
 */
export function streamSubjects(country: string, list?: TrustList): string[] {
  if (list === undefined) return [countrySubjects(country)];
  return [...new Set(list.organisations.flatMap((o) => consumersOf(o.id).map((c) => c.filter)))];
}

export function streamConfig(
  country: string,
  o: Required<ProvisionOptions>,
  list?: TrustList,
): Partial<StreamConfig> & { name: string } {
  return {
    name: streamName(country),
    subjects: streamSubjects(country, list),
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    max_age: ms(o.maxAgeMs),
    max_msgs: o.maxMsgs,
    max_bytes: o.maxBytes,
    max_msg_size: o.maxMsgSize,
    duplicate_window: ms(o.duplicateWindowMs),
    num_replicas: o.replicas,
    deny_delete: true,
    deny_purge: true,
    allow_rollup_hdrs: false,
  };
}

export function quarantineStreamConfig(
  country: string,
  o: Required<ProvisionOptions>,
): Partial<StreamConfig> & { name: string } {
  return {
    name: quarantineStreamName(country),
    subjects: [`stafett-quarantine.${country}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: ms(o.quarantineMaxAgeMs),
    max_bytes: o.quarantineMaxBytes,
    max_msg_size: o.maxMsgSize + QUARANTINE_HEADER_BYTES,
    duplicate_window: ms(o.duplicateWindowMs),
    num_replicas: o.replicas,
    // A refused message about a referral is erased on request (quarantine.ts eraseQuarantine).
    deny_delete: false,
    deny_purge: false,
  };
}

/**
 * The trust bucket's stream, as a KV bucket of history 10 (key = country code) that refuses
 * purges (a KV purge is a rollup, refused too) and message deletes: a list is replaced only by
 * putting a newer one. Deleting the whole stream is an API call only the provisioner can make.
 */
export function trustBucketConfig(
  o: Pick<Required<ProvisionOptions>, "replicas" | "trustMaxBytes">,
): Partial<StreamConfig> & { name: string } {
  return {
    name: `KV_${TRUST_BUCKET}`,
    subjects: [`$KV.${TRUST_BUCKET}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    max_msgs_per_subject: 10,
    max_bytes: o.trustMaxBytes,
    max_msg_size: TRUST_LIST_MAX_BYTES,
    num_replicas: o.replicas,
    allow_direct: true,
    allow_rollup_hdrs: false,
    deny_delete: true,
    deny_purge: true,
  };
}

export function consumerConfig(
  durable: string,
  filter: string,
  o: Required<ProvisionOptions>,
): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: durable,
    filter_subject: filter,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: ms(o.backoffMs[0] ?? 5_000),
    max_deliver: o.maxDeliver,
    backoff: o.backoffMs.map(ms),
    max_ack_pending: 1_000,
  };
}

export async function provisionCountry(
  nc: NatsConnection,
  jsm: JetStreamManager,
  trustList: TrustList,
  trustListJws: string,
  options: ProvisionOptions = {},
): Promise<ProvisionReport> {
  const o: Required<ProvisionOptions> = {
    ...PROVISION_DEFAULTS,
    ...options,
    backoffMs: [...(options.backoffMs ?? PROVISION_DEFAULTS.backoffMs)],
  };
  const country = trustList.country;
  const stream = streamConfig(country, o, trustList);
  const streamChanged = await ensureStream(jsm, stream);
  await ensureStream(jsm, quarantineStreamConfig(country, o));

  const wanted = new Map<string, Partial<ConsumerConfig> & { durable_name: string }>();
  for (const org of trustList.organisations) {
    for (const c of consumersOf(org.id))
      wanted.set(c.durable, consumerConfig(c.durable, c.filter, o));
  }
  const existing = new Map<string, ConsumerConfig>();
  for await (const info of jsm.consumers.list(stream.name)) {
    if (info.config.durable_name !== undefined) existing.set(info.config.durable_name, info.config);
  }
  const report: ProvisionReport = {
    stream: stream.name,
    streamChanged,
    consumersCreated: [],
    consumersUpdated: [],
    consumersDeleted: [],
    trustListRevision: undefined,
  };
  for (const [durable, cfg] of wanted) {
    const have = existing.get(durable);
    if (have === undefined) {
      await jsm.consumers.add(stream.name, cfg);
      report.consumersCreated.push(durable);
    } else if (differs(cfg, have)) {
      if (have.filter_subject !== cfg.filter_subject) {
        // A filter cannot change in place on 2.9; the consumer is recreated (pending messages stay in the stream).
        await jsm.consumers.delete(stream.name, durable);
        await jsm.consumers.add(stream.name, cfg);
      } else {
        await jsm.consumers.update(stream.name, durable, cfg);
      }
      report.consumersUpdated.push(durable);
    }
  }
  for (const durable of existing.keys()) {
    if (!wanted.has(durable) && durable.startsWith(`${country}-`)) {
      await jsm.consumers.delete(stream.name, durable);
      report.consumersDeleted.push(durable);
    }
  }
  report.trustListRevision = await publishTrustList(nc, country, trustListJws, o);
  return report;
}

async function ensureStream(
  jsm: JetStreamManager,
  cfg: Partial<StreamConfig> & { name: string },
): Promise<"created" | "updated" | "unchanged"> {
  try {
    const info = await jsm.streams.info(cfg.name);
    if (!differs(cfg, info.config)) return "unchanged";
    await jsm.streams.update(cfg.name, cfg);
    return "updated";
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(cfg);
    return "created";
  }
}

function differs(wanted: object, have: object): boolean {
  const h = have as Record<string, unknown>;
  return Object.entries(wanted).some(([k, v]) => JSON.stringify(h[k]) !== JSON.stringify(v));
}

/**
 * Puts the signed trust list in the trust bucket (key = country), creating the bucket if it is
 * not there; an unchanged list is not rewritten. Returns the list's revision (stream sequence).
 */
export async function publishTrustList(
  nc: NatsConnection,
  country: string,
  jws: string,
  options: Pick<ProvisionOptions, "replicas" | "trustMaxBytes"> = {},
): Promise<number> {
  const jsm = await jetstreamManager(nc);
  await ensureStream(
    jsm,
    trustBucketConfig({
      replicas: options.replicas ?? PROVISION_DEFAULTS.replicas,
      trustMaxBytes: options.trustMaxBytes ?? PROVISION_DEFAULTS.trustMaxBytes,
    }),
  );
  const subject = `$KV.${TRUST_BUCKET}.${country}`;
  const current = await jsm.streams
    .getMessage(`KV_${TRUST_BUCKET}`, { last_by_subj: subject })
    .catch((err: unknown) => {
      if (isNotFound(err)) return null;
      throw err;
    });
  if (current !== null && current.string() === jws) return current.seq;
  const ack = await jetstream(nc).publish(subject, jws);
  return ack.seq;
}
