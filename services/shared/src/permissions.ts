/**
 * The provisioner's rights inside the STAFETT account, and the inbox prefixes connections use.
 * What organisations may do is not a list of permissions on a shared account any more but what
 * their own account imports (accounts.ts): a reply subject is checked by nobody, and only an
 * account boundary keeps JetStream's answers out of the streams' account.
 */
import { TRUST_BUCKET } from "./provision.js";

/**
 * Each organisation's connection uses its own inbox prefix. Since every organisation has an
 * account of its own, this is no longer what keeps replies apart; it keeps them recognisable
 * in the broker's monitoring.
 */
export function inboxPrefixOf(orgId: string): string {
  return `_INBOX_${orgId.replaceAll(":", "_")}`;
}

export interface Permissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
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
