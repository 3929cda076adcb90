/**
 * Least privilege on the bus by NATS accounts (docs/contract.md, principle 8). An account is a separate
 * subject space: nothing published in one reaches another unless the server's config exports it
 * from one and imports it into the other. So:
 *
 * - `STAFETT` holds the country's streams, consumers and trust bucket (JetStream is enabled only
 *   here). Its one user is the provisioner. No organisation's user is in it.
 * - Each organisation has an account of its own (`accountOf`), without JetStream, that imports
 *   exactly what its role needs: publishing the event types it may send onto the subjects of the
 *   addresses that exist in the trust list (each a service, so the PubAck comes back), pulling,
 *   acking and reading its own durable consumer(s), its own quarantine subject, reading the trust
 *   lists (a direct get per list, and the bucket's puts as they happen), and the JetStream
 *   advisories about its own consumer, the stream and the bucket. JetStream API subjects are
 *   imported under `ORG_API_PREFIX` (the client is given it as `apiPrefix`), so that the
 *   organisation's own `$JS.API.>` is empty.
 * - Each federation link binds to a link account (`linkAccountOf`) on both sides: it imports only
 *   the pair's inbound subjects into the stream and lends the own liaison the partner's.
 *
 * Why a reply subject cannot reach the stream: NATS checks a publisher's rights on the subject
 * only, and whoever answers (JetStream's internal clients) publishes the answer to the reply
 * subject in the *requester's* account. An organisation's reply subject therefore lands in its
 * own account, where it can reach only what that account imports, which is what the organisation
 * may do anyway; `$JS.API.>` there reaches nothing. docs/security.md says which test proves it.
 */
import { createUser } from "@nats-io/nkeys";
import { provisionerPermissions } from "./permissions.js";
import {
  consumersOf,
  liaisonId,
  parseOrgId,
  quarantineStreamName,
  streamName,
  subjectFor,
} from "./subjects.js";
import { TRUST_BUCKET } from "./provision.js";
import type { PolicyRule, TrustList } from "./trust.js";
import type { EventType } from "./types.js";

/** The account of the streams, consumers and trust bucket; only the provisioner logs into it. */
export const STAFETT_ACCOUNT = "STAFETT";

/**
 * The prefix under which an organisation's account imports the JetStream API subjects it may use
 * (`JS.API.CONSUMER.MSG.NEXT.…` for `$JS.API.CONSUMER.MSG.NEXT.…`). Services give it to the
 * JetStream client as `apiPrefix`.
 */
export const ORG_API_PREFIX = "JS.API";

/** The provisioner's key in the map of user nkeys. */
export const PROVISIONER = "provisioner";

/** An organisation's account: `se:municipality:0180` -> `se-municipality-0180`. */
export const accountOf = (orgId: string): string => orgId.replaceAll(":", "-");

/**
 * The partner token of a country's one link to the federation's routing hub: wherever a direct
 * link names its partner country (`stafett.<partner>.in.<own>.>`), the hub link has the wildcard,
 * so the broker's config names no partner and a new partner needs no change to it. The hub
 * decides who may talk to whom (`federationHubConfig` in infra.ts), the trust list whose events
 * are accepted (docs/contract.md, "Federation").
 */
export const VIA_HUB = "*";

/** The account a federation link with `partner` (or `VIA_HUB`) is bound to, on this broker. */
export const linkAccountOf = (partner: string): string =>
  partner === VIA_HUB ? "link-hub" : `link-${partner}`;

export interface LinkCredentials {
  user: string;
  password: string;
}

/** The limits the broker config sets (organisation and link accounts, and STAFETT's JetStream). */
export interface BrokerLimits {
  /** Largest message an organisation's or a link's connection may publish (bytes). */
  maxPayload: number;
  /** Connections per organisation account. */
  maxConnections: number;
  /** Subscriptions per organisation connection. */
  maxSubscriptions: number;
  /**
   * STAFETT's JetStream file storage per replica, in bytes: at least the sum of the streams'
   * max_bytes. A clustered account is charged for every replica, so the limit is this times
   * `replicas`.
   */
  jsMaxFile: number;
  /** The streams' replicas (1, or 3 in a cluster). */
  replicas: number;
  /** STAFETT's streams: the country's stream, the quarantine and the trust bucket. */
  jsMaxStreams: number;
  /** STAFETT's consumers beyond the organisations' durables (the provisioner's own reads). */
  jsSpareConsumers: number;
}

/**
 * How many links one partner (or the hub, or one member at the hub) may have up at once: a
 * 3-node cluster's one per node, each with room for a stale connection the other end has not
 * yet dropped while the node reconnects.
 */
export const LINKS_PER_PARTNER = 6;

export const BROKER_LIMITS: Readonly<BrokerLimits> = {
  // The receivers refuse events over 256 KiB (DEFAULT_MAX_BYTES); headers come on top.
  maxPayload: 320 * 1024,
  maxConnections: 4,
  maxSubscriptions: 256,
  // 1 GiB stream, 256 MiB quarantine, 64 MiB trust bucket (PROVISION_DEFAULTS), and room for a
  // stream recreated while the old one's files go.
  jsMaxFile: 2 * 1024 * 1024 * 1024,
  replicas: 1,
  jsMaxStreams: 3,
  jsSpareConsumers: 8,
};

/**
 * Every event type that crosses a border: what a liaison may send, and what others may send to a
 * liaison (a domestic party's event to a partner travels through its own liaison unchanged).
 */
export function borderTypes(policy: readonly PolicyRule[]): EventType[] {
  const types = new Set<EventType>();
  for (const r of policy)
    if (r.from === "liaison" || r.to === "liaison") for (const t of r.types) types.add(t);
  return [...types].sort();
}

/**
 * The subjects `orgId` may publish events on in its own country: for each rule of its role, each
 * type, onto the subject of each addressee of that role that the trust list names (a partner
 * through the own liaison's `out.<partner>` subjects, for each partner the list names). Never a
 * wildcard: `in`, `out`, `national` and addresses the list does not name are not matched.
 */
export function publishSubjects(
  orgId: string,
  list: TrustList,
  partners: readonly string[] = (list.partners ?? []).map((p) => p.country),
): string[] {
  const me = parseOrgId(orgId);
  const cc = me.country;
  const out = new Set<string>();
  for (const rule of list.policy.filter((r) => r.from === me.role)) {
    for (const type of rule.types) {
      if (rule.to === "liaison") {
        // A liaison reaches its partners through the link account (borderImports), not `out`.
        if (me.role !== "liaison")
          for (const p of partners) out.add(`stafett.${cc}.out.${p}.${type}`);
        continue;
      }
      for (const org of list.organisations) {
        if (org.role !== rule.to) continue;
        out.add(subjectFor({ type, source: orgId, addressee: org.id }));
      }
    }
  }
  return [...out].sort();
}

/**
 * The imports that let `orgId` publish exactly `publishSubjects`, written compactly: where its
 * role may send a type both to hubs and to municipalities (receipts, rejections, most forwards),
 * one import per region, `stafett.<cc>.<region>.*.<type>`, stands for every address of that
 * region. The token after a region is only ever `hub` or a municipality code, never `in`, `out`
 * or `national`; and the stream stores only the addresses the list names (`streamSubjects`), so
 * a code that does not exist is published to nothing. Sweden's 290 municipalities would
 * otherwise need 168,000 imports for receipts and rejections alone.
 */
export function publishImportSubjects(
  orgId: string,
  list: TrustList,
  partners?: readonly string[],
): string[] {
  const role = parseOrgId(orgId).role;
  const toBoth = new Set<EventType>();
  const to = (r: "hub" | "municipality") =>
    new Set(list.policy.filter((p) => p.from === role && p.to === r).flatMap((p) => p.types));
  const toHub = to("hub");
  for (const t of to("municipality")) if (toHub.has(t)) toBoth.add(t);
  const out = new Set<string>();
  for (const subject of publishSubjects(orgId, list, partners)) {
    const [, cc, region, , type] = subject.split(".");
    const regional =
      region !== undefined &&
      !["out", "in", "national"].includes(region) &&
      type !== undefined &&
      toBoth.has(type as EventType);
    out.add(regional ? `stafett.${cc ?? ""}.${region}.*.${type}` : subject);
  }
  return [...out].sort();
}

type Import =
  | { service: { account: string; subject: string }; to?: string }
  | { stream: { account: string; subject: string } };
type Export =
  | { service: string; accounts: string[]; response_type?: "stream" }
  | { stream: string; accounts: string[] };

const API = "$JS.API";
const apiImport = (subject: string): Import => ({
  service: { account: STAFETT_ACCOUNT, subject: `${API}.${subject}` },
  to: `${ORG_API_PREFIX}.${subject}`,
});
const service = (subject: string, account = STAFETT_ACCOUNT): Import => ({
  service: { account, subject },
});
const stream = (subject: string): Import => ({ stream: { account: STAFETT_ACCOUNT, subject } });

const trustStream = `KV_${TRUST_BUCKET}`;
/**
 * The trust lists an organisation reads: its own country's and each partner's; through the hub,
 * any key (`*`, the own included), so that a partner added to the list needs no change to the
 * broker. A partner's list is signed by its anchor and taken only when the own list names that
 * anchor.
 */
const trustKeys = (list: TrustList, viaHub: boolean): string[] =>
  viaHub ? [VIA_HUB] : [list.country, ...(list.partners ?? []).map((p) => p.country)];

/**
 * The partners whose `out` subjects a domestic party may publish on: each partner the list
 * names, or, through the hub, any (`stafett.<cc>.out.*.<type>`: the stream holds the whole of
 * `stafett.<cc>.out.>` for the liaison, whose outbound policy follows the trust list in force).
 */
const outPartners = (linked: readonly string[]): string[] | undefined =>
  linked.includes(VIA_HUB) ? [VIA_HUB] : undefined;

/**
 * What one organisation's account imports from STAFETT, and, for the liaison, from the link
 * account of each partner in `linked` (those this broker has a link with; `VIA_HUB` for the one
 * link to the federation's hub).
 */
export function organisationImports(
  orgId: string,
  list: TrustList,
  linked: readonly string[] = [],
): Import[] {
  const me = parseOrgId(orgId);
  const cc = me.country;
  const s = streamName(cc);
  const imports: Import[] = [];
  for (const c of consumersOf(orgId)) {
    imports.push(
      apiImport(`CONSUMER.MSG.NEXT.${s}.${c.durable}`),
      apiImport(`CONSUMER.INFO.${s}.${c.durable}`),
      service(`$JS.ACK.${s}.${c.durable}.>`),
      service(`stafett-quarantine.${cc}.${c.durable}.>`),
      stream(`$JS.EVENT.ADVISORY.CONSUMER.DELETED.${s}.${c.durable}`),
      stream(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${s}.${c.durable}`),
    );
  }
  imports.push(
    stream(`$JS.EVENT.ADVISORY.STREAM.DELETED.${s}`),
    stream(`$JS.EVENT.ADVISORY.STREAM.DELETED.${trustStream}`),
  );
  for (const key of trustKeys(list, linked.includes(VIA_HUB))) {
    imports.push(
      apiImport(`DIRECT.GET.${trustStream}.$KV.${TRUST_BUCKET}.${key}`),
      stream(`$KV.${TRUST_BUCKET}.${key}`),
    );
  }
  // A gateway reads the stream's fill for its back-pressure (docs/security.md: what it shows).
  if (me.role === "municipality") imports.push(apiImport(`STREAM.INFO.${s}`));
  for (const subject of publishImportSubjects(orgId, list, outPartners(linked)))
    imports.push(service(subject));
  if (me.role === "liaison") {
    const types = borderTypes(list.policy);
    for (const p of linked)
      for (const t of types) imports.push(service(`stafett.${p}.in.${cc}.${t}`, linkAccountOf(p)));
  }
  return imports;
}

/** What STAFETT exports, each only to the accounts that import it. */
function stafettExports(list: TrustList, links: readonly string[]): Export[] {
  const cc = list.country;
  const s = streamName(cc);
  const orgs = list.organisations.map((o) => o.id);
  const all = orgs.map(accountOf);
  const exports: Export[] = [
    { service: `stafett.${cc}.>`, accounts: [...all, ...links.map(linkAccountOf)] },
    { service: `${API}.DIRECT.GET.${trustStream}.>`, accounts: all },
    { stream: `$KV.${TRUST_BUCKET}.>`, accounts: all },
    { stream: `$JS.EVENT.ADVISORY.STREAM.DELETED.>`, accounts: all },
  ];
  const municipalities = orgs.filter((o) => parseOrgId(o).role === "municipality");
  if (municipalities.length > 0)
    exports.push({ service: `${API}.STREAM.INFO.${s}`, accounts: municipalities.map(accountOf) });
  for (const org of orgs) {
    const account = [accountOf(org)];
    for (const c of consumersOf(org)) {
      exports.push(
        // A pull is answered by as many messages as it asked for, so the response is a stream.
        {
          service: `${API}.CONSUMER.MSG.NEXT.${s}.${c.durable}`,
          accounts: account,
          response_type: "stream",
        },
        { service: `${API}.CONSUMER.INFO.${s}.${c.durable}`, accounts: account },
        { service: `$JS.ACK.${s}.${c.durable}.>`, accounts: account },
        { service: `stafett-quarantine.${cc}.${c.durable}.>`, accounts: account },
        { stream: `$JS.EVENT.ADVISORY.CONSUMER.DELETED.${s}.${c.durable}`, accounts: account },
        {
          stream: `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${s}.${c.durable}`,
          accounts: account,
        },
      );
    }
  }
  return exports;
}

export interface CountryAccountsOptions {
  trustList: TrustList;
  /** Public nkey (U…) of each organisation's user, and of the provisioner (key `PROVISIONER`). */
  nkeys: ReadonlyMap<string, string>;
  /** Federation links; on the accepting side, the partner's link logs in as `user`. */
  links?: readonly { partner: string; user?: LinkCredentials }[];
  limits?: Partial<BrokerLimits>;
}

/**
 * The `accounts` block of a country's broker config. An organisation whose nkey is not given
 * still gets its account (no one can log into it) so that exports and imports stay consistent.
 */
export function countryAccounts(
  o: CountryAccountsOptions,
): Record<string, Record<string, unknown>> {
  const list = o.trustList;
  const cc = list.country;
  const limits = { ...BROKER_LIMITS, ...o.limits };
  const links = o.links ?? [];
  // A country is linked either directly to each partner or once to the hub: the hub link's
  // wildcard subjects would overlap a direct link's.
  if (links.some((l) => l.partner === VIA_HUB) && links.length > 1)
    throw new Error("a country links to the federation hub or directly to partners, not both");
  const provisioner = o.nkeys.get(PROVISIONER);
  const durables = list.organisations.flatMap((org) => consumersOf(org.id)).length;
  const accounts: Record<string, Record<string, unknown>> = {
    [STAFETT_ACCOUNT]: {
      jetstream: {
        max_file: limits.jsMaxFile * limits.replicas,
        max_mem: 0,
        max_streams: limits.jsMaxStreams,
        max_consumers: durables + limits.jsSpareConsumers,
        // Every stream must say how large it may grow.
        max_bytes_required: true,
      },
      users:
        provisioner === undefined
          ? []
          : [{ nkey: provisioner, permissions: provisionerPermissions(cc) }],
      exports: stafettExports(
        list,
        links.map((l) => l.partner),
      ),
    },
  };
  const orgLimits = {
    max_payload: limits.maxPayload,
    max_connections: limits.maxConnections,
    max_subscriptions: limits.maxSubscriptions,
  };
  for (const org of list.organisations) {
    const nkey = o.nkeys.get(org.id);
    accounts[accountOf(org.id)] = {
      users: nkey === undefined ? [] : [{ nkey }],
      // A JetStream of its own, for one memory stream of one message: the stored time of a
      // message it publishes there is how a service compares its clock with the broker's. What
      // it holds is the organisation's alone; the streams stay in STAFETT.
      jetstream: ORG_JETSTREAM,
      imports: organisationImports(
        org.id,
        list,
        links.map((l) => l.partner),
      ),
      limits: orgLimits,
    };
  }
  const types = borderTypes(list.policy);
  for (const link of links) {
    const p = link.partner;
    accounts[linkAccountOf(p)] = {
      users:
        link.user === undefined ? [] : [{ user: link.user.user, password: link.user.password }],
      // Into the stream: only the partner's inbound subjects, one per type that may cross (through
      // the hub, any partner's: the hub lets through only partners' events).
      imports: types.map((t) => service(`stafett.${cc}.in.${p}.${t}`)),
      // Out to the partner (through the hub, to any): only its inbound subjects from us, for the
      // own liaison.
      exports: [{ service: `stafett.${p}.in.${cc}.>`, accounts: [accountOf(liaisonId(cc))] }],
      // A leafnode is not held to `max_payload` (nats-server 2.9.10; the stream's max_msg_size
      // is), but to its number of links and each one's subscriptions.
      limits: {
        max_payload: limits.maxPayload,
        max_leafnodes: LINKS_PER_PARTNER,
        max_subscriptions: limits.maxSubscriptions,
      },
    };
  }
  return accounts;
}

/** An organisation account's own JetStream: room for the clock stream and nothing more. */
const ORG_JETSTREAM = {
  max_mem: 64 * 1_024,
  max_file: 0,
  max_streams: 1,
  max_consumers: 1,
};

/** The streams a country's STAFETT account holds (for checks and documentation). */
export const countryStreams = (cc: string): string[] => [
  streamName(cc),
  quarantineStreamName(cc),
  trustStream,
];

/** Nkey users for a country's broker: a seed per organisation and the provisioner. */
export interface BrokerUsers {
  /** Seeds (SU…), by organisation id or `PROVISIONER`: each goes to its owner only. */
  seeds: ReadonlyMap<string, Uint8Array>;
  /** The public keys (U…) the broker's config names. */
  nkeys: ReadonlyMap<string, string>;
}

/** Fresh nkey users for every organisation of the list and the provisioner (tests, the demo). */
export function createBrokerUsers(list: TrustList): BrokerUsers {
  const seeds = new Map<string, Uint8Array>();
  const nkeys = new Map<string, string>();
  for (const id of [...list.organisations.map((o) => o.id), PROVISIONER]) {
    const kp = createUser();
    seeds.set(id, kp.getSeed());
    nkeys.set(id, kp.getPublicKey());
  }
  return { seeds, nkeys };
}
