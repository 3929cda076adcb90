/**
 * Least privilege on the bus (docs/contract.md, principle 8): each organisation's NATS user may
 * publish only the event types its role may send, to the subjects of the roles it may send them
 * to, and may read only its own consumer(s). Stream and consumer administration, and writing the trust
 * bucket, belong to a separate provisioning identity. Derived from the trust list's policy.
 */
import { consumersOf, parseOrgId, streamName } from "./subjects.js";
import { TRUST_BUCKET } from "./provision.js";
import type { PolicyRule, TrustList } from "./trust.js";
import type { Role } from "./types.js";

/**
 * Each organisation's connection uses its own inbox prefix, and may subscribe only there: with
 * the shared `_INBOX.>` any party could read the messages other parties pull (their replies).
 */
export function inboxPrefixOf(orgId: string): string {
  return `_INBOX_${orgId.replaceAll(":", "_")}`;
}

export interface Permissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
}

/** The subjects of a role's addresses in country `cc`, for one event type. */
function subjectsOfRole(cc: string, role: Role, type: string): string[] {
  switch (role) {
    case "hub":
      return [`stafett.${cc}.*.hub.${type}`];
    case "municipality":
      return [`stafett.${cc}.*.*.${type}`];
    case "coordinator":
      return [`stafett.${cc}.national.coordinator.${type}`];
    case "liaison":
      // To the own liaison, bound for any partner.
      return [`stafett.${cc}.out.*.${type}`];
  }
}

/** The JetStream API subjects a party needs to pull from its own durable consumer. */
function consumerApi(stream: string, durable: string): string[] {
  return [
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.${durable}`,
    `$JS.API.CONSUMER.INFO.${stream}.${durable}`,
    `$JS.ACK.${stream}.${durable}.>`,
  ];
}

/** Reading and watching the trust bucket (an ordered consumer on its stream), never writing it. */
function trustBucketRead(): string[] {
  const s = `KV_${TRUST_BUCKET}`;
  return [
    "$JS.API.INFO",
    `$JS.API.STREAM.INFO.${s}`,
    `$JS.API.CONSUMER.CREATE.${s}`,
    `$JS.API.CONSUMER.CREATE.${s}.>`,
    `$JS.API.CONSUMER.DELETE.${s}.>`,
    `$JS.API.CONSUMER.INFO.${s}.>`,
    `$JS.API.DIRECT.GET.${s}.>`,
    `$JS.API.STREAM.MSG.GET.${s}`,
    `$JS.FC.${s}.>`,
  ];
}

export function organisationPermissions(orgId: string, policy: readonly PolicyRule[]): Permissions {
  const me = parseOrgId(orgId);
  const cc = me.country;
  const stream = streamName(cc);
  const publish = new Set<string>();
  for (const rule of policy.filter((r) => r.from === me.role)) {
    for (const type of rule.types) {
      // `stafett.<cc>.*.*.<type>` (municipalities) also matches hub, coordinator and out
      // subjects: NATS subjects cannot say "four digits". Every rule that sends a type to
      // municipalities also sends it to those roles (forwarded, received, rejected, escalated)
      // except hub -> municipality "escalated" (hub -> coordinator allows it too).
      for (const s of subjectsOfRole(cc, rule.to, type)) publish.add(s);
    }
  }
  // Everyone but the liaison reaches other countries only through its own liaison.
  if (me.role === "liaison") publish.add(`stafett.*.in.${cc}.>`);
  publish.add(`stafett-quarantine.${cc}.>`);
  for (const c of consumersOf(orgId))
    for (const s of consumerApi(stream, c.durable)) publish.add(s);
  // A gateway reads the stream's fill (counts and limits, no content) for back-pressure.
  if (me.role === "municipality") publish.add(`$JS.API.STREAM.INFO.${stream}`);
  for (const s of trustBucketRead()) publish.add(s);
  return {
    publish: { allow: [...publish].sort() },
    subscribe: { allow: [`${inboxPrefixOf(orgId)}.>`] },
  };
}

/** The provisioning identity: JetStream administration of the country's streams and the trust bucket. */
export function provisionerPermissions(cc: string): Permissions {
  return {
    publish: {
      allow: [
        "$JS.API.>",
        `$KV.${TRUST_BUCKET}.>`,
        `stafett-quarantine.${cc}.>`,
        `stafett.${cc}.>`,
      ],
    },
    subscribe: { allow: ["_INBOX.>", `stafett-quarantine.${cc}.>`, `stafett.${cc}.>`] },
  };
}

export interface NkeyUser {
  /** The organisation, or "provisioner". */
  org: string;
  /** The user's public nkey (U…). */
  nkey: string;
}

/** The `users` of the STAFETT account: one nkey user per organisation, plus the provisioner. */
export function authorizationUsers(
  list: TrustList,
  users: readonly NkeyUser[],
): Record<string, unknown>[] {
  return users.map((u) => ({
    nkey: u.nkey,
    permissions:
      u.org === "provisioner"
        ? provisionerPermissions(list.country)
        : organisationPermissions(u.org, list.policy),
  }));
}
