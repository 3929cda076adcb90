/**
 * `stafett-dev demo` (npm start): a whole country on this machine, and the handoff scenarios of
 * the design played through the real services and their HTTP APIs, printed as timelines.
 * Personal data in it is synthetic and is never printed.
 */
import { randomUUID } from "node:crypto";
import {
  Bus,
  createLogger,
  generateSigningKey,
  encodeEvent,
  encodeSignedEvent,
  eventHeaders,
  quarantineStreamName,
  quarantineSubject,
  signDetached,
  dataschemaFor,
  NOTIFICATION_TYPES,
  parseOrgId,
  fromBase64,
  receive,
  TrustStore,
  type EventJson,
  type Notifier,
  type NotifyConfig,
} from "@stafett/shared";
import type { Liaison } from "@stafett/liaison";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { createCountry } from "./country.js";
import { startFederation, type Federation } from "./federation.js";
import { LocalCountry } from "./local-country.js";
import { brokerConnections } from "./nats-server.js";
import { startMailCatcher, startWebhookReceiver, type CaughtMail } from "./notify-catchers.js";
import { samplePersonal } from "./samples.js";
import { waitForValue } from "./wait.js";

interface Timeline {
  referralId: string;
  status: string;
  timeline: { type: string; at: string; by: string; to?: string; code?: string; reason?: string }[];
}

const MUNICIPALITIES = ["0180", "1480", "1490", "1880", "1280", "0380"];

export async function demo(
  args: { keepRunning: boolean },
  out: (text: string) => void,
): Promise<number> {
  const log = createLogger({ service: "demo", level: process.env.LOG_LEVEL ?? "silent" });
  out("Stafett demo: handing off children between authorities, on a local NATS JetStream\n\n");
  // Two countries' brokers joined by a federation link.
  const federated = true;
  const [seAnchor, noAnchor] = await Promise.all([generateSigningKey(), generateSigningKey()]);
  const seCountry = await createCountry({
    code: "se",
    municipalities: MUNICIPALITIES,
    anchor: seAnchor,
    ...(federated ? { partnerAnchors: [{ country: "no", anchors: [noAnchor.publicJwk] }] } : {}),
  });
  const noCountry = federated
    ? await createCountry({
        code: "no",
        municipalities: [],
        anchor: noAnchor,
        partnerAnchors: [{ country: "se", anchors: [seAnchor.publicJwk] }],
      })
    : undefined;
  // Each broker runs the production configuration: the streams in an account only the
  // provisioner logs into, each organisation in an account of its own with its own nkey.
  const fed: Federation | undefined =
    noCountry === undefined
      ? undefined
      : await startFederation(
          "no",
          ["se"],
          { se: seCountry.trustList, no: noCountry.trustList },
          { tls: true },
        );
  // Where the alerts go: a local mail catcher (a real SMTP server) for every organisation's
  // people on duty, and a webhook receiver standing in for their case systems.
  let printMail: ((m: CaughtMail) => void) | undefined;
  const mail = await startMailCatcher({ onMail: (m) => printMail?.(m) });
  const hooks = await startWebhookReceiver();
  const dutyOf = (id: string): string => {
    const a = parseOrgId(id);
    return `jour-${a.role}${a.role === "municipality" ? `-${a.code}` : a.role === "hub" ? `-${a.region}` : ""}@demo.example.org`;
  };
  const notify = (id: string): NotifyConfig => ({
    webhooks: [
      {
        name: id.replaceAll(":", "-"),
        url: hooks.url,
        secret: hooks.secret,
        events: NOTIFICATION_TYPES,
      },
    ],
    mail: {
      host: "127.0.0.1",
      port: mail.port,
      secure: false,
      requireTls: false,
      from: "stafett@demo.example.org",
      to: [dutyOf(id)],
    },
    retryMs: [500, 1_000, 2_000],
    timeoutMs: 5_000,
    deadlineShare: 0.75,
    linkDownAfterMs: 30_000,
  });
  const userOf = (cc: string) =>
    fed === undefined
      ? {}
      : {
          nkeys: fed.seeds(cc),
          ...(fed.tls === undefined ? {} : { tls: fed.tls.client }),
        };
  const se = await LocalCountry.start({
    country: seCountry,
    municipalities: MUNICIPALITIES,
    log,
    tickMs: 250,
    // Each hub reports its region to the national coordinator's overview.
    reports: { everyMs: 60_000 },
    notify,
    // The officers' Desk, with the development sign-in (development mode only: the demo).
    desk: (_id, tokens) => ({ devSignIn: tokens }),
    natsUrl: fed?.server("se").url ?? "",
    ...userOf("se"),
    ...(noCountry === undefined ? {} : { partnerTrust: { no: noCountry.trustListJws } }),
  });
  const no =
    fed === undefined || noCountry === undefined
      ? undefined
      : await LocalCountry.start({
          country: noCountry,
          municipalities: [],
          log,
          natsUrl: fed.server("no").url,
          ...userOf("no"),
          partnerTrust: { se: seCountry.trustListJws },
        });
  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await se.stop();
    await no?.stop();
    await fed?.stop();
    await hooks.stop();
    await mail.stop();
  };
  const onSignal = (): void => {
    out("\nstopping every service and the local nats-server...\n");
    void stop().then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const name = (id: string): string =>
      se.country.trust.organisation(id)?.name ?? no?.country.trust.organisation(id)?.name ?? id;
    const orgs = se.country.trustList.organisations;
    out(
      (fed === undefined
        ? `NATS ${se.natsUrl} (given)\n`
        : `Two nats-servers, Sweden's (${fed.server("se").url}, JetStream domain "se") and Norway's (${fed.server("no").url}, domain "no"),\n` +
          `joined by a leafnode link that lets only stafett.no.in.se.> and stafett.se.in.no.> cross.\n`) +
        `Trust list se v${se.country.trustList.version}, signed by the coordinator's anchor ${se.country.anchorPublic.kid.slice(0, 12)}…: ` +
        `${orgs.filter((o) => o.role === "municipality").length} municipalities, ${orgs.filter((o) => o.role === "hub").length} regional hubs, the liaison and the coordinator.\n` +
        `Every service runs with its own keys and its own journal; each consumes only its own address.\n`,
    );
    if (fed !== undefined) {
      out(
        `\nEvery service logs in to its broker with its own nkey, into an account of its own that imports only\n` +
          `what its role needs (mutual TLS on every connection); the streams are in the STAFETT account, where only\n` +
          `the provisioner logs in. The brokers see these connections:\n`,
      );
      for (const cc of ["se", "no"])
        for (const c of await brokerConnections(fed.server(cc)))
          out(
            `   ${cc}  ${c.name.padEnd(34)} account ${c.account.padEnd(22)} nkey ${c.nkey.slice(0, 12)}…  ${c.tls}\n`,
          );
    }
    const api = async (id: string, url: string) => {
      const token = await se.token(id);
      return async <T>(
        method: string,
        path: string,
        body?: unknown,
      ): Promise<{ status: number; body: T }> => {
        const res = await fetch(`${url}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: res.status, body: (await res.json()) as T };
      };
    };
    const gw = (code: string) => api(`se:municipality:${code}`, se.gateway(code).url);
    const stockholm = await gw("0180");
    const until = (id: string, done: (t: Timeline) => boolean) =>
      waitForValue(
        async () => {
          const r = await stockholm<Timeline>("GET", `/v1/referrals/${id}`);
          return r.status === 200 && done(r.body) ? r.body : undefined;
        },
        { timeoutMs: 20_000, message: `referral ${id}` },
      );
    const inbox = async (code: string, id: string) => {
      const call = await gw(code);
      await waitForValue(
        async () => ((await call("GET", `/v1/inbox/${id}`)).status === 200 ? true : undefined),
        { timeoutMs: 20_000, message: `inbox at ${code}` },
      );
      return call;
    };
    const printAs = (t: Timeline, sender: string): void => {
      const t0 = Date.parse(t.timeline[0]?.at ?? new Date().toISOString());
      for (const e of t.timeline) {
        const by = e.by === "self" ? name(sender) : name(e.by);
        const detail = [e.to === undefined ? "" : `-> ${name(e.to)}`, e.reason ?? "", e.code ?? ""]
          .filter(Boolean)
          .join(" ");
        out(
          `   +${((Date.parse(e.at) - t0) / 1000).toFixed(3)}s  ${by.padEnd(34)} ${e.type.padEnd(10)} ${detail}\n`,
        );
      }
      out(`   status: ${t.status}\n`);
    };
    const print = (t: Timeline): void => printAs(t, "se:municipality:0180");
    const open = async (code: string, extra: Record<string, unknown> = {}) => {
      const r = await stockholm<{ referralId: string; deadline: string }>("POST", "/v1/referrals", {
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "se", municipality: code },
        personal: samplePersonal(Number(code)),
        ...extra,
      });
      if (r.status !== 202) throw new Error(`POST /v1/referrals answered ${r.status}`);
      return r.body;
    };

    out(
      `\n1. A missing child is referred from Stockholm (0180) to Göteborg (1480); Göteborg accepts.\n`,
    );
    const a = await open("1480");
    const goteborg = await inbox("1480", a.referralId);
    const item = await goteborg<{ personal: Record<string, unknown> }>(
      "GET",
      `/v1/inbox/${a.referralId}`,
    );
    await goteborg("POST", `/v1/inbox/${a.referralId}/accept`);
    print(await until(a.referralId, (t) => t.status === "closed"));
    out(
      `   Göteborg opened the sealed details with its own key (fields: ${Object.keys(item.body.personal).join(", ")}); only Väst's hub and Göteborg could.\n`,
    );

    out(
      `\n2. A referral to Borås (1490) is declined with a suggestion, re-routed to Region Bergslagen, and accepted by Örebro (1880).\n`,
    );
    const b = await open("1490");
    const boras = await inbox("1490", b.referralId);
    await boras("POST", `/v1/inbox/${b.referralId}/decline`, {
      reason: "DECLINE_REASON_WRONG_MUNICIPALITY",
      suggested: { country: "se", municipality: "1880" },
    });
    const orebro = await inbox("1880", b.referralId);
    await orebro("POST", `/v1/inbox/${b.referralId}/accept`);
    print(await until(b.referralId, (t) => t.status === "closed"));

    out(`\n3. A forged message: signed with Stockholm's key but claiming to come from Göteborg.\n`);
    const forged = await forge(se);
    out(
      `   Region Väst's hub refused it: ${forged.code} (quarantined with its reason; a signed "rejected" went back to the key's owner).\n`,
    );

    out(
      `\n4. An immediate referral to Göteborg that nobody accepts in time (a 2-second deadline for the demo).\n`,
    );
    const c = await open("1480", {
      urgency: "URGENCY_IMMEDIATE",
      deadline: new Date(Date.now() + 2_000).toISOString(),
    });
    print(await until(c.referralId, (t) => t.timeline.some((e) => e.type === "escalated")));
    const escalations = [...(se.coordinator?.coordinator.escalations.values() ?? [])].filter(
      (e) => e.referralId === c.referralId,
    );
    out(
      `   The national coordinator received ${escalations.length} escalation (holder: ${name(escalations[0]?.holder ?? "")}).\n`,
    );
    await waitForValue(() => (settled(se) ? true : undefined), {
      timeoutMs: 20_000,
      message: "every alert and webhook delivered",
    });
    const alerts = mail.mails.filter((m) => m.text.includes(c.referralId));
    out(
      `   The people on duty were alerted by e-mail (${alerts.length} messages, to the demo's mail catcher ${mail.url}):\n`,
    );
    for (const m of alerts) out(`     to ${m.to.join(", ").padEnd(42)} ${m.subject}\n`);
    const signed = [...hooks.unique().values()].filter((d) => d.body.includes(c.referralId));
    out(
      `   and the case systems by ${signed.length} signed webhooks (every signature verified by the receiver at ${hooks.url}).\n`,
    );

    if (no !== undefined) {
      const malmoId = "se:municipality:1280";
      const malmo = await gw("1280");
      const untilMalmo = (id: string, done: (t: Timeline) => boolean) =>
        waitForValue(
          async () => {
            const r = await malmo<Timeline>("GET", `/v1/referrals/${id}`);
            return r.status === 200 && done(r.body) ? r.body : undefined;
          },
          { timeoutMs: 20_000, message: `referral ${id}` },
        );
      const abroad = async (reason: string) => {
        const r = await malmo<{ referralId: string }>("POST", "/v1/referrals", {
          urgency: "URGENCY_HIGH",
          reason,
          destination: { country: "no" },
          personal: samplePersonal(5),
        });
        if (r.status !== 202) throw new Error(`POST /v1/referrals answered ${r.status}`);
        return r.body.referralId;
      };
      out(
        `\n5. Malmö (1280) refers a child believed trafficked to Norway. Sweden's liaison checks the outbound policy,\n   countersigns and forwards; Norway's contact point verifies both signatures, receipts, and accepts.\n`,
      );
      const d = await abroad("REASON_CATEGORY_TRAFFICKING_SUSPECTED");
      const noLiaison = no.liaison?.liaison;
      await waitForValue(() => noLiaison?.state.inbound.get(d), {
        timeoutMs: 20_000,
        message: "the referral in Norway",
      });
      await noLiaison?.answer(d, "accepted");
      printAs(await untilMalmo(d, (t) => t.status === "closed"), "se:municipality:1280");
      out(
        `\n6. A referral to Norway with reason "other": the outbound policy keeps it in Sweden and tells Malmö why.\n`,
      );
      const e = await abroad("REASON_CATEGORY_OTHER");
      printAs(
        await untilMalmo(e, (t) => t.timeline.some((x) => x.type === "rejected")),
        "se:municipality:1280",
      );
      const told = await waitForValue(
        () => mail.mails.find((m) => m.text.includes(e) && m.to.includes(dutyOf(malmoId))),
        { timeoutMs: 20_000, message: "the refusal's alert at Malmö" },
      );
      out(`   Malmö's people on duty were told by e-mail: ${told.subject}\n`);
      if (noLiaison !== undefined) await inbound(se, no, noLiaison, inbox, out, name);
    }

    out(
      `\nEvery step above was a signed, schema-validated event on JetStream; nothing about a child was printed or logged.\n`,
    );
    if (args.keepRunning) {
      out(`\nServices keep running (Ctrl-C stops them):\n`);
      for (const [id, g] of se.gateways)
        out(`   ${name(id).padEnd(34)} ${g.url}   token: ${await se.token(id)}\n`);
      for (const [id, h] of se.hubs) out(`   ${name(id).padEnd(34)} ${h.url}\n`);
      out(
        `\nAlerts for the people on duty go to the demo's mail catcher, ${mail.url}; each is printed here as it\n` +
          `arrives. Case systems' webhooks go to ${hooks.url} (Standard Webhooks, signatures verified).\n` +
          `Each service streams the same as Server-Sent Events: curl -N -H "Authorization: Bearer <token>" <url>/v1/events\n`,
      );
      printMail = (m) => out(`   mail to ${m.to.join(", ")}: ${m.subject}\n`);
      out(
        `\nThe officers' Desk of each organisation (sign in with the development sign-in: any\n` +
          `invented name; it exists only in this demo):\n`,
      );
      const desks: [string, string][] = [
        ...[...se.gateways].map(([id, g]): [string, string] => [id, g.url]),
        ...[...se.hubs].map(([id, h]): [string, string] => [id, h.url]),
        ...(se.coordinator === undefined
          ? []
          : [["se:coordinator", se.coordinator.url] as [string, string]]),
        ...(se.liaison === undefined ? [] : [["se:liaison", se.liaison.url] as [string, string]]),
      ];
      for (const [id, url] of desks) out(`   ${name(id).padEnd(34)} ${url}/desk/\n`);
      await new Promise<never>(() => undefined);
    }
    return 0;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    await stop();
  }
}

/** Whether every service of the country has delivered everything it had to. */
function settled(se: LocalCountry): boolean {
  const notifiers: Notifier[] = [
    ...[...se.gateways.values()].map((g) => g.gateway.notifier),
    ...[...se.hubs.values()].map((h) => h.hub.notifier),
    ...(se.coordinator === undefined ? [] : [se.coordinator.coordinator.notifier]),
    ...(se.liaison === undefined ? [] : [se.liaison.liaison.notifier]),
  ];
  return notifiers.every((n) => n.store.pending.size === 0);
}

/**
 * 7. From abroad: Norway's contact point refers a child to Malmö; Sweden's liaison verifies,
 * receipts and routes it to Region Syd's hub, which forwards it; Malmö accepts through its HTTP
 * API, and Norway verifies the acceptance with every signature on it.
 */
async function inbound(
  se: LocalCountry,
  no: LocalCountry,
  noLiaison: Liaison,
  inbox: (
    code: string,
    id: string,
  ) => Promise<(method: string, path: string, body?: unknown) => Promise<unknown>>,
  out: (text: string) => void,
  name: (id: string) => string,
): Promise<void> {
  out(
    `\n7. Norway's contact point refers an unaccompanied child to Malmö (1280). Sweden's liaison verifies and receipts it,\n` +
      `   routes it to Region Syd's hub, which forwards it to Malmö; Malmö accepts, and Norway verifies the acceptance.\n`,
  );
  const { referralId } = await noLiaison.referAbroad({
    partner: "se",
    urgency: "URGENCY_HIGH",
    reason: "REASON_CATEGORY_UNACCOMPANIED_MINOR",
    destination: { municipality: "1280" },
    deadline: new Date(Date.now() + 12 * 3_600_000).toISOString(),
    personal: samplePersonal(8),
  });
  const malmo = await inbox("1280", referralId);
  await malmo("POST", `/v1/inbox/${referralId}/accept`);
  const sent = await waitForValue(
    () => {
      const s = noLiaison.state.sent.get(referralId);
      return s?.status === "accepted" ? s : undefined;
    },
    { timeoutMs: 20_000, message: "the acceptance in Norway" },
  );
  const t0 = Date.parse(sent.answers[0]?.at ?? new Date().toISOString());
  for (const a of sent.answers)
    out(
      `   +${((Date.parse(a.at) - t0) / 1000).toFixed(3)}s  ${name(a.by).padEnd(34)} ${a.type}\n`,
    );
  const held = se.liaison?.liaison.state.inbound.get(referralId);
  out(
    `   In Sweden it went ${name(held?.routedTo ?? "")} -> ${name(held?.heldBy ?? "")}; the liaison sealed the details anew to those two.\n`,
  );
  const accepted = sent.answers.find((a) => a.type === "accepted");
  const checked = await receive(fromBase64(accepted?.bytes ?? ""), {
    identity: no.country.identity("no:liaison"),
    trust: new TrustStore([no.country.trustList, se.country.trustList]),
    subject: "stafett.no.in.se.forwarded",
  });
  out(
    checked.ok
      ? `   Norway verified the acceptance: ${name(checked.original?.issuer.id ?? "")}'s signature inside ${name(checked.issuer.id)}'s relay,\n` +
          `   countersigned by ${checked.countersigners.map((c) => name(c.id)).join(", ")}.\n`
      : `   Norway refused the acceptance: ${checked.error.code}\n`,
  );
}

async function forge(se: LocalCountry): Promise<{ code: string }> {
  const event: EventJson = {
    id: randomUUID(),
    type: "closed",
    source: "se:municipality:1480",
    addressee: "se:hub:vast",
    time: new Date().toISOString(),
    dataschema: dataschemaFor("closed"),
    referralId: randomUUID(),
    closed: { outcome: "CLOSE_OUTCOME_OTHER" },
  };
  const bytes = encodeEvent(event);
  const signed = encodeSignedEvent({
    event: bytes,
    signatures: [await signDetached(bytes, se.country.identity("se:municipality:0180").signing)],
  });
  // Stockholm's system publishes it, logged in as Stockholm: the broker lets it address the hub.
  const bus = await Bus.connect(
    {
      servers: se.natsUrl,
      name: "stafett-demo-forger",
      connection: se.connectionOf("se:municipality:0180"),
    },
    createLogger({ service: "demo", level: "silent" }),
  );
  const admin = await connect({ servers: se.natsUrl, ...se.admin });
  try {
    await bus.publish({
      subject: "stafett.se.vast.hub.closed",
      bytes: signed,
      headers: eventHeaders(event),
    });
    const jsm = await jetstreamManager(admin);
    const msg = await waitForValue(
      () =>
        jsm.streams
          .getMessage(quarantineStreamName("se"), {
            last_by_subj: quarantineSubject("se", "se-hub-vast", "ERR_ISSUER_MISMATCH"),
          })
          .then(
            (m) => m ?? undefined,
            () => undefined,
          ),
      { timeoutMs: 10_000, message: "the forged message to be quarantined" },
    );
    return { code: msg.header.get("Stafett-Reject-Code") };
  } finally {
    await bus.close();
    await admin.close();
  }
}
