/**
 * The federation's routing hub killed and started again while three countries publish into each
 * other's streams through it, as their liaisons do (`Bus.publish`: the event id as message id,
 * retried until the partner's stream answers). The hub stores nothing, so nothing can be lost
 * with it; what could go wrong is a publish that was stored but whose answer died with the hub,
 * retried and stored twice. Each destination stream holds every message id once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { startCountries, waitFor, type Countries } from "@stafett/devkit";
import { Bus, createLogger, liaisonId, streamName } from "@stafett/shared";

const log = createLogger({ service: "fault", level: process.env.LOG_LEVEL ?? "silent" });
const COUNTRIES = ["se", "no", "fi"] as const;
const PAIRS = COUNTRIES.flatMap((a) => COUNTRIES.filter((b) => b !== a).map((b) => [a, b]));
/** Messages per ordered pair. */
const N = 40;
let fed: Countries;
const buses = new Map<string, Bus>();

beforeAll(async () => {
  fed = await startCountries({
    log,
    countries: COUNTRIES,
    partnerships: [
      ["se", "no"],
      ["se", "fi"],
      ["no", "fi"],
    ],
    viaHub: true,
    municipalities: [],
    // No services: the streams keep what arrives, to be read by message id.
    extras: () => ({ servicesOff: true }),
  });
  for (const cc of COUNTRIES) {
    const local = fed.of(cc);
    buses.set(
      cc,
      await Bus.connect(
        {
          servers: local.natsUrl,
          name: `test-${cc}-liaison`,
          connection: local.connectionOf(liaisonId(cc)),
        },
        log,
      ),
    );
  }
}, 60_000);

afterAll(async () => {
  await Promise.all([...buses.values()].map((b) => b.close()));
  await fed?.stop();
});

/** Every message id in `to`'s stream from `from`, in stream order. */
async function storedIds(from: string, to: string): Promise<string[]> {
  return fed.of(to).withAdmin(async (bus) => {
    const jsm = await jetstreamManager(bus.nc);
    const ids: string[] = [];
    const info = await jsm.streams.info(streamName(to));
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(streamName(to), { seq }).catch(() => null);
      if (m?.subject === `stafett.${to}.in.${from}.opened`)
        ids.push(m.header.get("Nats-Msg-Id") ?? "");
    }
    return ids;
  });
}

describe("the federation's hub killed and started again mid-flow", () => {
  it(`every message arrives once in its partner's stream (${N} per pair, ${PAIRS.length} pairs)`, async () => {
    const hub = fed.fed.hub;
    if (hub === undefined) throw new Error("no hub");
    const sent = new Map<string, string[]>();
    let published = 0;
    const flows = PAIRS.map(async ([from = "", to = ""]) => {
      const bus = buses.get(from);
      if (bus === undefined) throw new Error(`no bus for ${from}`);
      const ids: string[] = [];
      sent.set(`${from}-${to}`, ids);
      for (let i = 0; i < N; i++) {
        const id = `${from}-${to}-${i}-${Date.now()}`;
        ids.push(id);
        await bus.publish(
          {
            subject: `stafett.${to}.in.${from}.opened`,
            bytes: new TextEncoder().encode("synthetic"),
            headers: { "Nats-Msg-Id": id },
          },
          { deadlineMs: 30_000, expectStream: streamName(to) },
        );
        published += 1;
      }
    });
    await waitFor(() => published >= PAIRS.length * 5, {
      timeoutMs: 10_000,
      message: "the flows to start",
    });
    await hub.kill();
    // The fault happened mid-flow: the hub is down and the flows are not done.
    expect(hub.running).toBe(false);
    expect(published).toBeLessThan(PAIRS.length * N);
    const atKill = published;
    // Each country's broker has seen its link go down before the hub comes back.
    for (const cc of COUNTRIES)
      await waitFor(
        async () =>
          ((await fed.fed.server(cc).monitor<{ leafs?: unknown[] }>("/leafz")).leafs ?? [])
            .length === 0,
        { timeoutMs: 5_000, message: `${cc}'s link down` },
      );
    await hub.restart();
    await Promise.all(flows);
    expect(published).toBe(PAIRS.length * N);
    expect(atKill).toBeLessThan(published);

    for (const [from = "", to = ""] of PAIRS) {
      const stored = await storedIds(from, to);
      expect(stored, `${from} -> ${to}`).toEqual(sent.get(`${from}-${to}`));
    }
  });
});
