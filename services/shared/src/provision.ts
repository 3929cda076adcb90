/**
 * Provisioning a country on its NATS: the referral stream (work-queue retention: a message is
 * gone once its one recipient acked it), the quarantine stream, one durable pull consumer per
 * recipient filtered on its own address, and the trust list in a KV bucket that services watch.
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
import { Kvm } from "@nats-io/kv";
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
  maxDeliver?: number;
  /**
   * Redelivery delays after an unacked delivery; the first is the ack wait (nats-server sets
   * ack_wait to backoff[0]). A handler that fails naks with its own, shorter delay.
   */
  backoffMs?: number[];
  quarantineMaxAgeMs?: number;
}

export const PROVISION_DEFAULTS = {
  maxAgeMs: 14 * 24 * 3_600_000,
  duplicateWindowMs: 24 * 3_600_000,
  replicas: 1,
  maxMsgs: -1,
  maxBytes: -1,
  maxDeliver: 6,
  backoffMs: [5_000, 15_000, 30_000, 60_000, 120_000],
  // Refused messages may hold a sealed personal part: kept only as long as an operator needs to
  // act on one (a working week and a weekend), not 90 days (docs/data-protection.md).
  quarantineMaxAgeMs: 7 * 24 * 3_600_000,
} as const;

export interface ProvisionReport {
  stream: string;
  streamChanged: "created" | "updated" | "unchanged";
  consumersCreated: string[];
  consumersUpdated: string[];
  consumersDeleted: string[];
  trustListRevision: number | undefined;
}

const ms = (n: number): number => n * 1_000_000;

export function streamConfig(
  country: string,
  o: Required<ProvisionOptions>,
): Partial<StreamConfig> & { name: string } {
  return {
    name: streamName(country),
    subjects: [countrySubjects(country)],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    max_age: ms(o.maxAgeMs),
    max_msgs: o.maxMsgs,
    max_bytes: o.maxBytes,
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
    max_age: ms(o.quarantineMaxAgeMs),
    duplicate_window: ms(o.duplicateWindowMs),
    num_replicas: o.replicas,
    // A refused message about a referral is erased on request (quarantine.ts eraseQuarantine).
    deny_delete: false,
    deny_purge: false,
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
  const stream = streamConfig(country, o);
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
  report.trustListRevision = await publishTrustList(nc, country, trustListJws, o.replicas);
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

/** Puts the signed trust list in the KV bucket (key = country); unchanged lists are not rewritten. */
export async function publishTrustList(
  nc: NatsConnection,
  country: string,
  jws: string,
  replicas = 1,
): Promise<number> {
  const kv = await new Kvm(nc).create(TRUST_BUCKET, {
    history: 10,
    replicas,
    storage: StorageType.File,
  });
  const current = await kv.get(country);
  if (current !== null && current.string() === jws) return current.revision;
  return kv.put(country, jws);
}
