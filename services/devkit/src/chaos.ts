/**
 * A chaos run: a 3-node JetStream cluster, the hub and both gateways as their own processes, a
 * bounded stream of referrals sent through the gateway's HTTP API by a case system that retries
 * with the same Idempotency-Key, the destination accepting each one, and meanwhile hub, gateway
 * and broker nodes killed with SIGKILL and restarted at random (one at a time, bounded, loopback
 * only). Every kind of fault asked for is injected at least once (the first faults take each
 * kind in a seeded order). At the end it counts what was sent, received, accepted, lost and
 * doubled, and every refusal: a doubled message shows only as a refusal (receivers drop
 * repeats as ERR_REPLAY and answer `rejected`), so quarantine entries (replays among them) and
 * `rejected` entries in the timelines are counted too.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, nkeyAuthenticator } from "@nats-io/transport-node";
import { createCountry } from "./country.js";
import { samplePersonal } from "./samples.js";
import {
  Bus,
  countryAccounts,
  createBrokerUsers,
  createDevTokenIssuer,
  createLogger,
  listQuarantine,
  provisionCountry,
  quarantineStreamName,
  PROVISIONER,
  type Logger,
} from "@stafett/shared";
import { startCluster, type NatsCluster } from "./nats-server.js";
import { spawnService, writeServiceFiles, type ServiceProcess } from "./service-process.js";
import { waitFor, waitForValue } from "./wait.js";

export interface ChaosOptions {
  referrals: number;
  /** Offered rate, referrals per second. */
  rate: number;
  /** Pause between faults, milliseconds (a random value in this range). */
  faultEveryMs: [number, number];
  /** How long a killed process stays down, milliseconds. */
  downMs: [number, number];
  /** Faults to inject at least, even if the referrals are all sent before (and one of each kind). */
  minFaults?: number;
  /** Fault kinds to use. */
  faults?: readonly ("hub" | "gateway" | "broker")[];
  /** Deadline for everything to settle after the last referral, milliseconds. */
  settleMs?: number;
  seed?: number;
  log?: Logger;
  onProgress?: (line: string) => void;
}

export interface ChaosResult {
  sent: number;
  received: number;
  delivered: number;
  accepted: number;
  quarantined: number;
  /** Quarantine entries with ERR_REPLAY: a message handled twice. */
  replays: number;
  /** `rejected` entries in the origin's timelines. */
  rejected: number;
  lost: number;
  duplicated: number;
  faults: Record<string, number>;
  seconds: number;
  seed: number;
}

interface TimelineView {
  referralId: string;
  timeline: { type: string }[];
}

/** A small seeded PRNG (mulberry32), so a run can be repeated. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runChaos(o: ChaosOptions): Promise<ChaosResult> {
  const log = o.log ?? createLogger({ service: "chaos", level: "silent" });
  const say = o.onProgress ?? (() => undefined);
  const seed = o.seed ?? Date.now() % 1_000_000;
  const rnd = random(seed);
  const between = ([lo, hi]: [number, number]): number => lo + rnd() * (hi - lo);
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "stafett-chaos-"));
  let cluster: NatsCluster | undefined;
  const procs = new Map<string, ServiceProcess>();
  try {
    const country = await createCountry({ code: "se", municipalities: ["0180", "1480"] });
    // The production configuration: the streams in STAFETT, each organisation in its own account.
    const users = createBrokerUsers(country.trustList);
    cluster = await startCluster(3, {
      config: {
        accounts: countryAccounts({
          trustList: country.trustList,
          nkeys: users.nkeys,
          limits: { replicas: 3 },
        }),
      },
    });
    const urls = cluster.urls.join(",");
    const nkeySeed = (id: string): Uint8Array => {
      const s = users.seeds.get(id);
      if (s === undefined) throw new Error(`no nkey for ${id}`);
      return s;
    };
    const admin = { authenticator: nkeyAuthenticator(nkeySeed(PROVISIONER)) };
    const bus = await Bus.connect(
      { servers: cluster.urls, name: "chaos-provision", connection: admin },
      log,
    );
    await provisionCountry(bus.nc, await bus.manager(), country.trustList, country.trustListJws, {
      replicas: 3,
    });
    await bus.close();
    const tokens = await createDevTokenIssuer();
    const jwksFile = join(dir, "jwks.json");
    writeFileSync(jwksFile, JSON.stringify(tokens.config.jwks));
    const auth = { jwksFile, issuer: tokens.config.issuer, audience: tokens.config.audience };
    const services = {
      hub: {
        kind: "hub" as const,
        env: writeServiceFiles(country, "se:hub:vast", dir, urls, auth, nkeySeed("se:hub:vast")),
      },
      gateway: {
        kind: "gateway" as const,
        env: writeServiceFiles(
          country,
          "se:municipality:0180",
          dir,
          urls,
          auth,
          nkeySeed("se:municipality:0180"),
        ),
      },
      destination: {
        kind: "gateway" as const,
        env: writeServiceFiles(
          country,
          "se:municipality:1480",
          dir,
          urls,
          auth,
          nkeySeed("se:municipality:1480"),
        ),
      },
    };
    const start = async (name: keyof typeof services): Promise<void> => {
      const p = spawnService(services[name].kind, services[name].env);
      procs.set(name, p);
      await p.ready;
    };
    await Promise.all([start("hub"), start("gateway"), start("destination")]);
    const tokenFrom = await tokens.mint("se:municipality:0180");
    const tokenTo = await tokens.mint("se:municipality:1480");
    const call = async <T>(
      name: "gateway" | "destination",
      method: string,
      path: string,
      body?: unknown,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; body: T }> => {
      const url = procs.get(name)?.url() ?? "";
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${name === "gateway" ? tokenFrom : tokenTo}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, body: (await res.json()) as T };
    };

    // The case system: one POST per referral at the offered rate, retried with its key until accepted.
    const ids = new Map<number, string>();
    let sendingDone = false;
    const sender = (async () => {
      const inflight = new Set<Promise<void>>();
      for (let i = 0; i < o.referrals; i++) {
        const due = started + (i * 1_000) / o.rate;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
        const p = (async () => {
          for (;;) {
            try {
              const r = await call<{ referralId: string }>(
                "gateway",
                "POST",
                "/v1/referrals",
                {
                  urgency: "URGENCY_NORMAL",
                  reason: "REASON_CATEGORY_MISSING",
                  destination: { country: "se", municipality: "1480" },
                  personal: samplePersonal(i),
                },
                { "idempotency-key": `chaos-${i}` },
              );
              if (r.status === 202 || r.status === 200) {
                ids.set(i, r.body.referralId);
                return;
              }
            } catch {
              // gateway down or slow: retry with the same key
            }
            await new Promise((r) => setTimeout(r, 300));
          }
        })();
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
        if (inflight.size >= 32) await Promise.race(inflight);
      }
      await Promise.all(inflight);
      sendingDone = true;
    })();

    // The destination accepts what arrives.
    const answered = new Set<string>();
    const acceptor = (async () => {
      while (!sendingDone || answered.size < o.referrals) {
        try {
          const inbox = await call<{ referralId: string; status: string }[]>(
            "destination",
            "GET",
            "/v1/inbox",
          );
          for (const item of inbox.body) {
            if (item.status === "pending" && !answered.has(item.referralId)) {
              const r = await call("destination", "POST", `/v1/inbox/${item.referralId}/accept`);
              if (r.status === 200 || r.status === 409) answered.add(item.referralId);
            } else if (item.status === "accepted") answered.add(item.referralId);
          }
        } catch {
          // destination restarting or broker electing: try again
        }
        if (Date.now() - started > (o.referrals / o.rate) * 1_000 + (o.settleMs ?? 90_000)) break;
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    // Faults, one at a time, while referrals are being sent.
    const faults: Record<string, number> = { hub: 0, gateway: 0, broker: 0 };
    const kinds = o.faults ?? ["hub", "gateway", "broker"];
    const injected = (): number => Object.values(faults).reduce((a, b) => a + b, 0);
    // Each kind once first, in a seeded order; then at random.
    const firstRound = [...kinds];
    for (let i = firstRound.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [firstRound[i], firstRound[j]] = [firstRound[j] ?? "hub", firstRound[i] ?? "hub"];
    }
    const enough = (): boolean =>
      injected() >= (o.minFaults ?? 0) && kinds.every((k) => (faults[k] ?? 0) > 0);
    while (!sendingDone || !enough()) {
      await new Promise((r) => setTimeout(r, between(o.faultEveryMs)));
      if (sendingDone && enough()) break;
      const kind = firstRound.shift() ?? kinds[Math.floor(rnd() * kinds.length)] ?? "hub";
      faults[kind] = (faults[kind] ?? 0) + 1;
      if (kind === "broker") {
        const node = cluster.servers[Math.floor(rnd() * cluster.servers.length)];
        say(`kill -9 broker ${node?.name ?? "?"}`);
        await node?.kill();
        await new Promise((r) => setTimeout(r, between(o.downMs)));
        await node?.restart();
        await cluster.waitForMetaLeader(20_000);
      } else {
        say(`kill -9 ${kind}`);
        await procs.get(kind)?.kill();
        await new Promise((r) => setTimeout(r, between(o.downMs)));
        await start(kind);
      }
    }
    await sender;
    say(`all ${o.referrals} referrals accepted by the gateway; waiting for the flow to settle`);

    // Settle: every referral received (receipt at the origin), delivered and accepted.
    const timelines = async (): Promise<TimelineView[]> =>
      (await call<TimelineView[]>("gateway", "GET", "/v1/referrals")).body;
    const done = (t: TimelineView): boolean =>
      ["received", "forwarded", "accepted", "closed"].every((x) =>
        t.timeline.some((e) => e.type === x),
      );
    await waitFor(async () => (await timelines()).filter(done).length >= o.referrals, {
      timeoutMs: o.settleMs ?? 90_000,
      intervalMs: 500,
      message: "the flow to settle",
    }).catch(() => undefined);
    await acceptor;

    const all = await timelines();
    const count = (t: TimelineView, type: string): number =>
      t.timeline.filter((e) => e.type === type).length;
    const inbox = (await call<{ referralId: string }[]>("destination", "GET", "/v1/inbox")).body;
    const nc = await connect({ servers: cluster.urls, ...admin });
    const jsm = await jetstreamManager(nc);
    // Right after the last kill the quarantine stream may still be electing its leader: ask
    // until the cluster answers rather than fail the run on one timed-out request.
    const { quarantined, entries } = await waitForValue(
      async () => ({
        quarantined: (await jsm.streams.info(quarantineStreamName("se"))).state.messages,
        entries: await listQuarantine(jsm, "se"),
      }),
      { timeoutMs: 60_000, intervalMs: 500, message: "the quarantine stream to answer" },
    );
    for (const q of entries) say(`quarantined: ${q.code} ${q.reason} ${q.consumer} ${q.subject}`);
    const replays = entries.filter((q) => q.code === "ERR_REPLAY").length;
    await nc.close();
    const rejected = all.reduce((n, t) => n + count(t, "rejected"), 0);
    const sent = ids.size;
    const received = all.filter((t) => count(t, "received") >= 1).length;
    const accepted = all.filter((t) => count(t, "accepted") >= 1).length;
    const delivered = new Set(inbox.map((i) => i.referralId)).size;
    const duplicated =
      all.reduce(
        (n, t) =>
          n +
          Math.max(0, count(t, "received") - 1) +
          Math.max(0, count(t, "forwarded") - 1) +
          Math.max(0, count(t, "accepted") - 1),
        0,
      ) +
      (all.length - new Set(all.map((t) => t.referralId)).size) +
      (inbox.length - delivered);
    const lost = [...ids.values()].filter(
      (id) => !all.some((t) => t.referralId === id && done(t)),
    ).length;
    return {
      sent,
      received,
      delivered,
      accepted,
      quarantined,
      replays,
      rejected,
      lost,
      duplicated,
      faults,
      seconds: Math.round((Date.now() - started) / 1_000),
      seed,
    };
  } finally {
    await Promise.all([...procs.values()].map((p) => p.kill()));
    await cluster?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
