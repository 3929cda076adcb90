import { readFileSync } from "node:fs";
import {
  importEncryptionKey,
  importSigningKey,
  issue,
  isEventType,
  receive,
  StafettError,
  TrustStore,
  verifyPartnerList,
  verifyTrustList,
  type EventType,
  type Reader,
  type TrustList,
} from "@stafett/shared";
import { readAnchors, readJson, readPrivateJwk, writeFile } from "../files.js";
import { printRefusal, type Io } from "../io.js";

export interface TrustArgs {
  trust: string;
  anchor: string;
  /** Partner countries' lists, comma-separated: taken as a service takes them (see loadTrust). */
  partnerTrust?: string;
}

/**
 * The trust lists in force for a check, exactly as a service holds them: the own list signed by
 * one of the anchors given, and each partner list only for a partner the own list names,
 * verified with the anchors the own list gives for that country (verifyPartnerList).
 */
export async function loadTrust(args: TrustArgs): Promise<TrustStore> {
  const own = await verifyTrustList(
    readFileSync(args.trust, "utf8").trim(),
    await readAnchors(args.anchor),
  );
  const lists: TrustList[] = [own];
  for (const file of args.partnerTrust?.split(",").filter(Boolean) ?? [])
    lists.push(await verifyPartnerList(readFileSync(file, "utf8").trim(), own));
  return new TrustStore(lists);
}

/**
 * `event seal`: a draft in canonical JSON (the personal part, if any, as a plain JSON object in
 * the body's `personal`) -> validated, sealed, encoded and signed SignedEvent bytes.
 */
export async function eventSeal(
  args: TrustArgs & {
    in: string;
    key: string;
    org: string;
    out?: string;
    sealTo?: string;
    partnerCountry?: string;
  },
  io: Io,
): Promise<number> {
  const draft = (
    args.in === "-" ? JSON.parse(new TextDecoder().decode(await io.stdin())) : readJson(args.in)
  ) as Record<string, unknown>;
  const type = draft.type;
  if (typeof type !== "string" || !isEventType(type)) {
    throw new StafettError("ERR_SCHEMA_INVALID", "draft has no valid type", {
      reason: "enum",
      field: "/type",
    });
  }
  const body = { ...(draft[type] as Record<string, unknown> | undefined) };
  const personal = body.personal;
  delete body.personal;
  const trust = await loadTrust(args);
  const signer = { id: args.org, signing: await importSigningKey(readPrivateJwk(args.key)) };
  const issued = await issue(
    {
      type: type as EventType,
      addressee: String(draft.addressee),
      referralId: String(draft.referralId),
      body,
      ...(personal === undefined ? {} : { personal: personal as Record<string, unknown> }),
      ...(args.sealTo === undefined ? {} : { sealTo: args.sealTo.split(",") }),
      ...(typeof draft.id === "string" ? { id: draft.id } : {}),
      ...(typeof draft.time === "string" ? { time: new Date(draft.time) } : {}),
      ...(args.partnerCountry === undefined ? {} : { partnerCountry: args.partnerCountry }),
    },
    { identity: signer, trust },
  );
  if (args.out === undefined || args.out === "-") io.stdoutBytes(issued.bytes);
  else writeFile(args.out, issued.bytes);
  io.err(
    `sealed ${issued.event.type} ${issued.id} (${issued.bytes.byteLength} bytes) for subject ${issued.subject}\n`,
  );
  return 0;
}

/**
 * `event open`: SignedEvent bytes -> every check of `receive` -> the verified canonical JSON on
 * stdout. The personal part stays sealed on stdout; with --as, --enc-key and --decrypt-to it is
 * opened and written to that file (0600), never printed.
 */
export async function eventOpen(
  args: TrustArgs & {
    in: string;
    as?: string;
    encKey?: string;
    decryptTo?: string;
    subject?: string;
    now?: string;
  },
  io: Io,
): Promise<number> {
  const bytes = args.in === "-" ? await io.stdin() : new Uint8Array(readFileSync(args.in));
  const trust = await loadTrust(args);
  const reader: Reader =
    args.as === undefined
      ? { id: "" }
      : {
          id: args.as,
          ...(args.encKey === undefined
            ? {}
            : { encryption: await importEncryptionKey(readPrivateJwk(args.encKey)) }),
        };
  const result = await receive(bytes, {
    identity: reader,
    trust,
    mode: args.as === undefined ? "relay" : "addressee",
    ...(args.subject === undefined ? {} : { subject: args.subject }),
    ...(args.now === undefined ? {} : { now: new Date(args.now) }),
  });
  if (!result.ok) {
    printRefusal(io, result.error);
    return 1;
  }
  if (args.decryptTo !== undefined) {
    if (result.personal === undefined) {
      io.err(
        "rejected: ERR_NOT_RECIPIENT (not_recipient): this reader cannot open the personal part\n",
      );
      return 1;
    }
    writeFile(args.decryptTo, JSON.stringify(result.personal, null, 2), true);
  }
  const summary = {
    verified: true,
    issuer: result.issuer.id,
    countersigners: result.countersigners.map((o) => o.id),
    digest: result.digest,
    ...(result.original === undefined
      ? {}
      : {
          original: {
            issuer: result.original.issuer.id,
            id: result.original.event.id,
            type: result.original.event.type,
          },
        }),
    event: result.event,
  };
  io.out(`${JSON.stringify(summary, null, 2)}\n`);
  return 0;
}
