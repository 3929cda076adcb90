/**
 * A whole country on one machine: freshly generated keys and trust list, the stream and
 * consumers provisioned on a (local or given) nats-server, and every service running
 * in-process: a gateway per municipality, a hub per region, the national coordinator. The demo
 * (`npm start`), the end-to-end tests and the benchmarks start one of these.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCountry, type Country } from "./country.js";
import {
  Bus,
  coordinatorId,
  createDevTokenIssuer,
  hubId,
  liaisonId,
  municipalityId,
  natsAuth,
  publishTrustList,
  parseOrgId,
  provisionCountry,
  type AuthConfig,
  type DeskOptions,
  type DevTokenIssuer,
  type Logger,
  type ProvisionOptions,
  type ServiceRuntime,
  type Urgency,
} from "@stafett/shared";
import { start as startGateway, type RunningGateway } from "@stafett/gateway";
import { start as startHub, type RunningHub } from "@stafett/hub";
import { start as startCoordinator, type RunningCoordinator } from "@stafett/coordinator";
import { start as startLiaison, type RunningLiaison } from "@stafett/liaison";
import { startServer, type NatsServer } from "./nats-server.js";

export interface LocalCountryOptions {
  code?: string;
  municipalities: readonly string[];
  /** Use this country (keys and trust list) instead of generating one. */
  country?: Country;
  /** Use this NATS (one URL, or a cluster's) instead of starting a local nats-server. */
  natsUrl?: string | readonly string[];
  /** Credentials of the account the services use on that NATS. */
  natsUser?: { user: string; pass: string };
  /** Per-organisation nkey seeds (nkey authentication, least privilege); "provisioner" provisions. */
  nkeys?: ReadonlyMap<string, Uint8Array>;
  /** Partner countries' signed trust lists to put in the trust bucket (key = country). */
  partnerTrust?: Readonly<Record<string, string>>;
  log: Logger;
  deadlines?: Partial<Record<Urgency, number>>;
  tickMs?: number;
  publishDeadlineMs?: number;
  intakeHighWater?: number;
  provision?: ProvisionOptions;
  /** Start no services (tests that start them one by one). */
  servicesOff?: boolean;
  /** How long before a key or trust list expires the services warn (default two weeks). */
  expiryWarningMs?: number;
  /** Where the services' API tokens come from (default: the country's development issuer). */
  auth?: AuthConfig;
  /** The officers' Desk of an organisation (none when absent or when it answers undefined). */
  desk?: (id: string, tokens: DevTokenIssuer) => DeskOptions | undefined;
}

export class LocalCountry {
  readonly gateways = new Map<string, RunningGateway>();
  readonly hubs = new Map<string, RunningHub>();
  coordinator: RunningCoordinator | undefined;
  liaison: RunningLiaison | undefined;

  private constructor(
    readonly country: Country,
    readonly natsUrl: string,
    readonly server: NatsServer | undefined,
    readonly tokens: DevTokenIssuer,
    readonly stateRoot: string,
    private readonly options: LocalCountryOptions,
  ) {}

  static async start(options: LocalCountryOptions): Promise<LocalCountry> {
    const code = options.code ?? "se";
    const server = options.natsUrl === undefined ? await startServer() : undefined;
    const natsUrl = [options.natsUrl ?? server?.url ?? ""].flat().join(",");
    const country =
      options.country ?? (await createCountry({ code, municipalities: options.municipalities }));
    const provisioner = options.nkeys?.get("provisioner");
    const connection =
      provisioner !== undefined
        ? { connection: natsAuth({ servers: [], nkeySeed: provisioner }) }
        : options.natsUser === undefined
          ? {}
          : { connection: options.natsUser };
    const bus = await Bus.connect(
      { servers: natsUrl.split(","), name: "stafett-provision", ...connection },
      options.log,
    );
    try {
      await provisionCountry(
        bus.nc,
        await bus.manager(),
        country.trustList,
        country.trustListJws,
        options.provision,
      );
      for (const [cc, jws] of Object.entries(options.partnerTrust ?? {}))
        await publishTrustList(bus.nc, cc, jws);
    } finally {
      await bus.close();
    }
    const tokens = await createDevTokenIssuer();
    const local = new LocalCountry(
      country,
      natsUrl,
      server,
      tokens,
      mkdtempSync(join(tmpdir(), "stafett-state-")),
      options,
    );
    if (options.servicesOff !== true) await local.startAll();
    return local;
  }

  /** Connection options for a client of this country's NATS (user and password, when set). */
  get connection(): { user?: string; pass?: string } {
    return this.options.natsUser === undefined
      ? {}
      : { user: this.options.natsUser.user, pass: this.options.natsUser.pass };
  }

  /** The runtime of one organisation, with its own state directory. */
  runtime(id: string): ServiceRuntime {
    const desk = this.options.desk?.(id, this.tokens);
    return {
      identity: this.country.identity(id),
      anchors: [this.country.anchorPublic],
      nats: {
        servers: this.natsUrl.split(","),
        ...(this.options.natsUser === undefined
          ? {}
          : { user: this.options.natsUser.user, pass: this.options.natsUser.pass }),
        ...(this.options.nkeys?.get(id) === undefined
          ? {}
          : { nkeySeed: this.options.nkeys.get(id) }),
      },
      stateDir: join(this.stateRoot, id.replaceAll(":", "-")),
      http: { host: "127.0.0.1", port: 0 },
      metrics: { host: "127.0.0.1", port: 0 },
      ...(this.options.expiryWarningMs === undefined
        ? {}
        : { expiryWarningMs: this.options.expiryWarningMs }),
      auth: this.options.auth ?? this.tokens.config,
      ...(desk === undefined ? {} : { desk }),
    };
  }

  async startAll(): Promise<void> {
    const ids = this.country.trustList.organisations.map((o) => o.id);
    await Promise.all([
      ...ids.filter((id) => parseOrgId(id).role === "hub").map((id) => this.startHub(id)),
      ...ids
        .filter((id) => parseOrgId(id).role === "municipality")
        .map((id) => this.startGateway(id)),
      this.startCoordinator(),
      this.startLiaison(),
    ]);
  }

  async startGateway(id: string): Promise<RunningGateway> {
    const running = await startGateway(
      {
        ...this.runtime(id),
        ...(this.options.deadlines === undefined ? {} : { deadlines: this.options.deadlines }),
        ...(this.options.publishDeadlineMs === undefined
          ? {}
          : { publishDeadlineMs: this.options.publishDeadlineMs }),
        ...(this.options.intakeHighWater === undefined
          ? {}
          : { intakeHighWater: this.options.intakeHighWater }),
      },
      this.options.log.child({ org: id }),
    );
    this.gateways.set(id, running);
    return running;
  }

  async startHub(id: string): Promise<RunningHub> {
    const running = await startHub(
      {
        ...this.runtime(id),
        ...(this.options.tickMs === undefined ? {} : { tickMs: this.options.tickMs }),
      },
      this.options.log.child({ org: id }),
    );
    this.hubs.set(id, running);
    return running;
  }

  async startCoordinator(): Promise<RunningCoordinator> {
    this.coordinator = await startCoordinator(
      this.runtime(coordinatorId(this.country.code)),
      this.options.log.child({ org: "coordinator" }),
    );
    return this.coordinator;
  }

  async startLiaison(): Promise<RunningLiaison> {
    this.liaison = await startLiaison(
      {
        ...this.runtime(liaisonId(this.country.code)),
        ...(this.options.tickMs === undefined ? {} : { tickMs: this.options.tickMs }),
      },
      this.options.log.child({ org: "liaison" }),
    );
    return this.liaison;
  }

  gateway(code: string): RunningGateway {
    const g = this.gateways.get(municipalityId(this.country.code, code));
    if (g === undefined) throw new Error(`no gateway for ${code}`);
    return g;
  }

  hub(region: string): RunningHub {
    const h = this.hubs.get(hubId(this.country.code, region));
    if (h === undefined) throw new Error(`no hub for ${region}`);
    return h;
  }

  /** A bearer token for an organisation's HTTP API. */
  token(id: string): Promise<string> {
    return this.tokens.mint(id);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.gateways.values(), ...this.hubs.values()].map((s) => s.stop()));
    await this.coordinator?.stop();
    await this.liaison?.stop();
    this.gateways.clear();
    this.hubs.clear();
    await this.server?.stop();
    rmSync(this.stateRoot, { recursive: true, force: true });
  }
}
