/** `stafett quarantine list | show SEQ | replay SEQ`: inspect and re-inject refused messages. */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, nkeyAuthenticator, type ConnectionOptions } from "@nats-io/transport-node";
import {
  consumersOf,
  eraseQuarantine,
  listQuarantine,
  readSecretFile,
  replayQuarantine,
  showQuarantine,
  StafettError,
} from "@stafett/shared";
import type { Io } from "../io.js";

export interface NatsArgs {
  natsUrl: string;
  user?: string;
  passwordFile?: string;
  nkeyFile?: string;
  /** TLS to the broker: the CA, and a client certificate and its key (0600) for mutual TLS. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/**
 * Credentials for the operator's commands: the provisioner's nkey seed (the broker's STAFETT
 * account has no other user), or a user and password. Both files are secrets: refused unless
 * only their owner can read them.
 */
export function connectionOptions(a: NatsArgs): Partial<ConnectionOptions> {
  if (a.tlsKey !== undefined) readSecretFile(a.tlsKey);
  const tls =
    a.tlsCa === undefined
      ? {}
      : {
          tls: {
            caFile: a.tlsCa,
            ...(a.tlsCert === undefined ? {} : { certFile: a.tlsCert }),
            ...(a.tlsKey === undefined ? {} : { keyFile: a.tlsKey }),
          },
        };
  if (a.nkeyFile !== undefined)
    return { authenticator: nkeyAuthenticator(readSecretFile(a.nkeyFile)), ...tls };
  if (a.user !== undefined)
    return {
      user: a.user,
      ...(a.passwordFile === undefined
        ? {}
        : { pass: new TextDecoder().decode(readSecretFile(a.passwordFile)).trim() }),
      ...tls,
    };
  return tls;
}

export async function quarantine(
  args: NatsArgs & {
    action: string;
    country: string;
    seq?: string;
    /** For `erase`: the referral, and the organisation whose refused copies go. */
    referral?: string;
    org?: string;
  },
  io: Io,
): Promise<number> {
  const nc = await connect({
    servers: args.natsUrl,
    name: "stafett-quarantine",
    ...connectionOptions(args),
  });
  try {
    const jsm = await jetstreamManager(nc);
    if (args.action === "erase") {
      if (args.referral === undefined || args.org === undefined)
        return io.usage("quarantine erase needs --referral ID and --org ID");
      const durables = consumersOf(args.org).map((c) => c.durable);
      const erased = await eraseQuarantine(jsm, args.country, args.referral, durables);
      io.out(
        `erased ${erased.length} quarantined message(s) of ${args.org} about ${args.referral}\n`,
      );
      return 0;
    }
    const seq = Number(args.seq);
    if (args.action !== "list" && !(Number.isInteger(seq) && seq > 0))
      return io.usage(`quarantine ${args.action} needs a sequence number`);
    switch (args.action) {
      case "list": {
        const entries = await listQuarantine(jsm, args.country);
        io.out(`${entries.length} quarantined message(s) in ${args.country}\n`);
        for (const e of entries)
          io.out(
            `${String(e.seq).padStart(6)}  ${e.time}  ${e.code.padEnd(28)} ${e.reason.padEnd(20)} ${e.consumer.padEnd(24)} ${e.eventId ?? "-"}\n`,
          );
        return 0;
      }
      case "show":
        io.out(`${JSON.stringify(await showQuarantine(jsm, args.country, seq), null, 2)}\n`);
        return 0;
      case "replay": {
        const r = await replayQuarantine(jsm, jetstream(nc), args.country, seq);
        io.out(
          r.duplicate
            ? `already re-injected: ${r.subject} (nothing sent again)\n`
            : `re-injected on ${r.subject}\n`,
        );
        return 0;
      }
      default:
        throw new StafettError(
          "ERR_CONFIG_INVALID",
          "quarantine takes list, show SEQ, replay SEQ or erase",
          { reason: "action" },
        );
    }
  } finally {
    await nc.close();
  }
}
