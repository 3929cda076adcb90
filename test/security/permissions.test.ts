import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUser } from "@nats-io/nkeys";
import {
  connect,
  nkeyAuthenticator,
  type NatsConnection,
  type PermissionViolationError,
} from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import {
  LocalCountry,
  startServer,
  waitFor,
  waitForValue,
  type NatsServer,
  createCountry,
  samplePersonal,
  sampleOpened,
  type Country,
} from "@stafett/devkit";
import { authorizationUsers, inboxPrefixOf, issue, STAFETT_ACCOUNT } from "@stafett/shared";
import { capturedLog } from "../support/logs.js";

/** What the services log (they run under their generated permissions). */
const services = capturedLog("services");
const ORGS = [
  "se:municipality:0180",
  "se:municipality:1480",
  "se:hub:stockholm",
  "se:hub:vast",
  "se:liaison",
  "se:coordinator",
];
let server: NatsServer;
let country: Country;
let local: LocalCountry;
const seeds = new Map<string, Uint8Array>();
const conns = new Map<string, NatsConnection>();

beforeAll(async () => {
  country = await createCountry({ code: "se", municipalities: ["0180", "1480"] });
  const users = [...ORGS, "provisioner"].map((org) => {
    const kp = createUser();
    seeds.set(org, kp.getSeed());
    return { org, nkey: kp.getPublicKey() };
  });
  server = await startServer({
    config: {
      accounts: {
        [STAFETT_ACCOUNT]: {
          jetstream: "enabled",
          users: authorizationUsers(country.trustList, users),
        },
      },
    },
  });
  // The real services run under their generated permissions: if these were too tight, nothing would flow.
  local = await LocalCountry.start({
    country,
    municipalities: [],
    natsUrl: server.url,
    nkeys: seeds,
    log: services.log,
  });
  for (const org of [...ORGS, "provisioner"]) {
    const c = await connect({
      servers: server.url,
      authenticator: nkeyAuthenticator(seeds.get(org) ?? new Uint8Array()),
      ...(org === "provisioner" ? {} : { inboxPrefix: inboxPrefixOf(org) }),
    });
    recordViolations(org, c);
    conns.set(org, c);
  }
}, 60_000);

afterAll(async () => {
  for (const nc of conns.values()) await nc.close();
  await local?.stop();
  await server?.stop();
});

const nc = (org: string): NatsConnection => {
  const c = conns.get(org);
  if (c === undefined) throw new Error(`no connection for ${org}`);
  return c;
};

const violations = new Map<string, PermissionViolationError[]>();

function recordViolations(org: string, c: NatsConnection): void {
  const seen: PermissionViolationError[] = [];
  violations.set(org, seen);
  void (async () => {
    for await (const s of c.status()) {
      if (s.type === "error" && s.error.name === "PermissionViolationError")
        seen.push(s.error as PermissionViolationError);
    }
  })();
}

/**
 * Did the server refuse `org`'s publish to `subject`? The server answers in order on the
 * connection, so once a flush (PING/PONG) returns, a refusal of the publish before it has arrived.
 */
async function refusedPublish(org: string, subject: string, request = false): Promise<boolean> {
  const c = nc(org);
  if (request) void c.request(subject, new Uint8Array(), { timeout: 2_000 }).catch(() => undefined);
  else c.publish(subject, new Uint8Array([1]));
  await c.flush();
  await new Promise((r) => setImmediate(r));
  return (violations.get(org) ?? []).some(
    (pe) => pe.subject === subject && pe.operation === "publish",
  );
}

/** A JetStream API call that succeeds for the provisioner and is refused for `org`. */
async function refusedApi(org: string, subject: string): Promise<boolean> {
  return refusedPublish(org, subject, true);
}

describe("least privilege on the bus: the generated authorization, per role", () => {
  it("the services work under it: a referral flows, is forwarded and accepted", async () => {
    const id = (
      await local.gateway("0180").gateway.openReferral({
        urgency: "URGENCY_HIGH",
        reason: "REASON_CATEGORY_MISSING",
        destination: { country: "se", municipality: "1480" },
        personal: samplePersonal(),
      } as never)
    ).referralId;
    await waitForValue(() => local.gateway("1480").gateway.inboxItem(id), {
      timeoutMs: 15_000,
      message: "the referral at Göteborg",
    });
    await local.gateway("1480").gateway.answer(id, "accepted");
    await waitFor(() => local.gateway("0180").gateway.referral(id)?.status === "closed", {
      timeoutMs: 15_000,
      message: "closed at Stockholm",
    });
  });

  it("a municipality may publish a referral to a hub, but not hub-only types to a municipality", async () => {
    expect(await refusedPublish("se:municipality:0180", "stafett.se.vast.hub.opened")).toBe(false);
    expect(await refusedPublish("se:municipality:0180", "stafett.se.vast.1480.forwarded")).toBe(
      true,
    );
    expect(await refusedPublish("se:municipality:0180", "stafett.se.vast.1480.opened")).toBe(true);
    expect(
      await refusedPublish("se:municipality:0180", "stafett.se.national.coordinator.escalated"),
    ).toBe(true);
    expect(await refusedPublish("se:municipality:0180", "stafett.no.in.se.opened")).toBe(true);
  });

  it("a municipality cannot pull another municipality's or a hub's consumer, read the stream, or administer it", async () => {
    for (const s of [
      "$JS.API.CONSUMER.MSG.NEXT.STAFETT_SE.se-municipality-1480",
      "$JS.API.CONSUMER.MSG.NEXT.STAFETT_SE.se-hub-vast",
      "$JS.API.CONSUMER.INFO.STAFETT_SE.se-hub-stockholm",
      "$JS.API.STREAM.MSG.GET.STAFETT_SE",
      "$JS.API.DIRECT.GET.STAFETT_SE",
      "$JS.API.CONSUMER.CREATE.STAFETT_SE",
      "$JS.API.CONSUMER.DURABLE.CREATE.STAFETT_SE.sneaky",
      "$JS.API.CONSUMER.DELETE.STAFETT_SE.se-hub-vast",
      "$JS.API.STREAM.DELETE.STAFETT_SE",
      "$JS.API.STREAM.PURGE.STAFETT_SE",
      "$KV.stafett-trust.se",
    ]) {
      expect({ s, refused: await refusedApi("se:municipality:0180", s) }).toEqual({
        s,
        refused: true,
      });
    }
    // Its own consumer it may read.
    const own = await jetstream(nc("se:municipality:0180")).consumers.get(
      "STAFETT_SE",
      "se-municipality-0180",
    );
    expect((await own.info()).name).toBe("se-municipality-0180");
  });

  it.each(["stafett.se.>", "_INBOX.>", "_INBOX_se_hub_vast.>", ">"])(
    "a municipality cannot subscribe to %s (others' subjects or replies)",
    async (subject) => {
      const c = nc("se:municipality:1480");
      const sub = c.subscribe(subject);
      const closed = await sub.closed.then(
        (e: unknown) => (e instanceof Error ? e.name : "closed"),
        (e: unknown) => (e as Error).name,
      );
      expect(closed).toBe("PermissionViolationError");
    },
  );

  it("one hub cannot read another region's consumer; it may forward to municipalities and escalate", async () => {
    expect(
      await refusedApi("se:hub:vast", "$JS.API.CONSUMER.MSG.NEXT.STAFETT_SE.se-hub-stockholm"),
    ).toBe(true);
    expect(
      await refusedApi("se:hub:vast", "$JS.API.CONSUMER.MSG.NEXT.STAFETT_SE.se-municipality-1480"),
    ).toBe(true);
    expect(await refusedPublish("se:hub:vast", "stafett.se.vast.1480.forwarded")).toBe(false);
    expect(await refusedPublish("se:hub:vast", "stafett.se.national.coordinator.escalated")).toBe(
      false,
    );
    expect(await refusedPublish("se:hub:vast", "stafett.se.vast.hub.opened")).toBe(true);
  });

  it("the liaison cannot read domestic addresses; it may publish into partners' inbound subjects", async () => {
    for (const durable of ["se-municipality-0180", "se-hub-vast", "se-coordinator"]) {
      expect(
        await refusedApi("se:liaison", `$JS.API.CONSUMER.MSG.NEXT.STAFETT_SE.${durable}`),
      ).toBe(true);
    }
    expect(await refusedPublish("se:liaison", "stafett.no.in.se.opened")).toBe(false);
    expect(await refusedPublish("se:liaison", "stafett.se.stockholm.hub.opened")).toBe(true);
  });

  it("the coordinator reads only its own consumer and cannot administer streams", async () => {
    expect(
      await refusedApi("se:coordinator", "$JS.API.CONSUMER.MSG.NEXT.STAFETT_SE.se-hub-vast"),
    ).toBe(true);
    expect(await refusedApi("se:coordinator", "$JS.API.STREAM.DELETE.STAFETT_SE")).toBe(true);
  });

  it("the provisioning identity may administer (the positive control for the refusals above)", async () => {
    expect(await refusedApi("provisioner", "$JS.API.STREAM.INFO.STAFETT_SE")).toBe(false);
  });

  it("a refused publish loses nothing else: messages in flight still arrive", async () => {
    const forbidden = "stafett.se.vast.1480.forwarded";
    const events = await Promise.all(
      Array.from({ length: 6 }, () =>
        issue(sampleOpened(), {
          identity: country.identity("se:municipality:0180"),
          trust: country.trust,
        }),
      ),
    );
    const c = nc("se:municipality:0180");
    const js = jetstream(c);
    const refusalsBefore = (violations.get("se:municipality:0180") ?? []).length;
    // nats.js writes each publish to the socket in call order, so the forbidden publish goes out
    // between three referrals before it and three after it, none of them acknowledged yet.
    let settled = 0;
    const acks = events.map((e, i) => {
      if (i === 3) {
        expect(settled, "acks settled before the forbidden publish").toBe(0);
        c.publish(forbidden, new Uint8Array([1]));
      }
      return js.publish(e.subject, e.bytes, { msgID: e.id }).finally(() => {
        settled += 1;
      });
    });
    const stored = await Promise.all(acks);
    // The server refused the forbidden publish, and only it, on this connection ...
    await c.flush();
    await new Promise((r) => setImmediate(r));
    const refusals = (violations.get("se:municipality:0180") ?? []).slice(refusalsBefore);
    expect(refusals.map((v) => [v.operation, v.subject])).toEqual([["publish", forbidden]]);
    // ... stored every referral around it once, in order ...
    expect(stored.map((a) => [a.stream, a.duplicate])).toEqual(
      events.map(() => ["STAFETT_SE", false]),
    );
    const seqs = stored.map((a) => a.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(events.length);
    // ... and the hub got each of them.
    await waitFor(
      () => events.every((e) => local.hub("vast").hub.state.referrals.has(e.event.referralId)),
      { timeoutMs: 10_000, message: "the hub to get every referral" },
    );
  });

  it("every service can compare its clock with the broker's under its permissions", () => {
    // The comparison creates and deletes an ephemeral consumer on the trust bucket; refused,
    // each party would log once that it could not, and clock skew would go unseen.
    const failed = services
      .lines()
      .filter((l) => String(l.msg).includes("could not compare the clock"));
    expect(failed).toEqual([]);
    expect(local.hub("vast").hub.readiness()).toEqual({ ready: true, problems: [] });
  });
});
