/**
 * A whole country on one machine: freshly generated keys and trust list, the stream and
 * consumers provisioned on a (local or given) nats-server, and every service running
 * in-process: a gateway per municipality, a hub per region, the national coordinator. The demo
 * (`npm start`), the end-to-end tests and the benchmarks start one of these.
 *
 * The broker runs the production configuration: the streams in the STAFETT account, into which
 * only the provisioner logs in, and every organisation in an account of its own, each service
 * logging in with its own nkey (accounts.ts in @stafett/shared).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nkeyAuthenticator, type ConnectionOptions } from "@nats-io/transport-node";
import { createCountry, type Country } from "./country.js";
import {
  Bus,
  coordinatorId,
  countryAccounts,
  createBrokerUsers,
  inboxPrefixOf,
  PROVISIONER,
  createDevTokenIssuer,
  hubId,
  liaisonId,
  municipalityId,
  publishTrustList,
  parseOrgId,
  provisionCountry,
  type AuthConfig,
  type DeskOptions,
  type DevTokenIssuer,
  type Logger,
  type NotifyConfig,
  type ProvisionOptions,
  type ServiceRuntime,
  type TrustList,
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
  /**
   * Use this NATS (one URL, or a cluster's) instead of starting a local nats-server. It must run
   * the country's accounts (`countryAccounts`) for the users whose seeds `nkeys` holds.
   */
  natsUrl?: string | readonly string[];
  /**
   * Per-organisation nkey seeds, and the provisioner's (`PROVISIONER`): required with
   * `natsUrl`; generated for a local nats-server.
   */
  nkeys?: ReadonlyMap<string, Uint8Array>;
  /** TLS to the broker, for the services and the provisioner. */
  tls?: { caFile: string; certFile?: string; keyFile?: string };
  /** Partner countries' signed trust lists to put in the trust bucket (key = country). */
  partnerTrust?: Readonly<Record<string, string>>;
  log: Logger;
  deadlines?: Partial<Record<Urgency, number>>;
  tickMs?: number;
  /**
   * How often, at least, each hub reports its region to the coordinator, and the least time
   * between two reports (HubOptions). Default: no reports, as for any hub started in-process, so
   * that tests which count what reaches the coordinator see only what they sent; the demo and
   * the overview's tests turn them on.
   */
  reports?: { everyMs: number; gapMs?: number };
  publishDeadlineMs?: number;
  intakeHighWater?: number;
  provision?: ProvisionOptions;
  /** Start no services (tests that start them one by one). */
  servicesOff?: boolean;
  /** How long before a key or trust list expires the services warn (default two weeks). */
  expiryWarningMs?: number;
  /** Each organisation's webhooks, e-mail alerts and thresholds (none: streamed only). */
  notify?: (id: string) => NotifyConfig | undefined;
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
    private readonly seeds: ReadonlyMap<string, Uint8Array>,
  ) {}

  static async start(options: LocalCountryOptions): Promise<LocalCountry> {
    const code = options.code ?? "se";
    const country =
      options.country ?? (await createCountry({ code, municipalities: options.municipalities }));
    let seeds = options.nkeys;
    let server: NatsServer | undefined;
    if (options.natsUrl === undefined) {
      const users = createBrokerUsers(country.trustList);
      seeds = users.seeds;
      server = await startServer({
        config: { accounts: localAccounts(country.trustList, users.nkeys) },
      });
    } else if (seeds?.get(PROVISIONER) === undefined) {
      throw new Error(
        "a broker with Stafett's accounts needs the organisations' and the provisioner's nkeys",
      );
    }
    const natsUrl = [options.natsUrl ?? server?.url ?? ""].flat().join(",");
    const local = new LocalCountry(
      country,
      natsUrl,
      server,
      await createDevTokenIssuer(),
      mkdtempSync(join(tmpdir(), "stafett-state-")),
      options,
      seeds ?? new Map(),
    );
    try {
      await local.provision();
      for (const [cc, jws] of Object.entries(options.partnerTrust ?? {}))
        await local.withAdmin((bus) => publishTrustList(bus.nc, cc, jws, options.provision));
      if (options.servicesOff !== true) await local.startAll();
    } catch (err) {
      await local.stop();
      throw err;
    }
    return local;
  }

  /** Provisions (again): the stream, the quarantine, the consumers and the own trust list. */
  async provision(): Promise<void> {
    await this.withAdmin(async (bus) => {
      await provisionCountry(
        bus.nc,
        await bus.manager(),
        this.country.trustList,
        this.country.trustListJws,
        this.options.provision,
      );
    });
  }

  /** Runs `work` on a connection of the provisioner (the STAFETT account). */
  async withAdmin<T>(work: (bus: Bus) => Promise<T>): Promise<T> {
    const bus = await Bus.connect(
      { servers: this.natsUrl.split(","), name: "stafett-provision", connection: this.admin },
      this.options.log,
    );
    try {
      return await work(bus);
    } finally {
      await bus.close();
    }
  }

  /** Connection options of the provisioner, who administers the STAFETT account. */
  get admin(): Partial<ConnectionOptions> {
    return this.connectionOf(PROVISIONER);
  }

  /** The nkey seed of an organisation's NATS user (for a service run as its own process). */
  nkeySeed(id: string): Uint8Array | undefined {
    return this.seeds.get(id);
  }

  /** Connection options of one organisation's user (its own account), or the provisioner's. */
  connectionOf(id: string): Partial<ConnectionOptions> {
    const seed = this.seeds.get(id);
    if (seed === undefined) throw new Error(`no nkey for ${id}`);
    return {
      authenticator: nkeyAuthenticator(seed),
      ...(id === PROVISIONER ? {} : { inboxPrefix: inboxPrefixOf(id) }),
      ...(this.options.tls === undefined ? {} : { tls: { ...this.options.tls } }),
    };
  }

  /** The runtime of one organisation, with its own state directory. */
  runtime(id: string): ServiceRuntime {
    const notify = this.options.notify?.(id);
    const desk = this.options.desk?.(id, this.tokens);
    return {
      ...(notify === undefined ? {} : { notify }),
      identity: this.country.identity(id),
      anchors: [this.country.anchorPublic],
      nats: {
        servers: this.natsUrl.split(","),
        ...(this.seeds.get(id) === undefined ? {} : { nkeySeed: this.seeds.get(id) }),
        ...(this.options.tls === undefined ? {} : { tls: { ...this.options.tls } }),
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
    const reports = this.options.reports;
    const running = await startHub(
      {
        ...this.runtime(id),
        ...(this.options.tickMs === undefined ? {} : { tickMs: this.options.tickMs }),
        ...(reports === undefined ? {} : { reportEveryMs: reports.everyMs }),
        ...(reports?.gapMs === undefined ? {} : { reportGapMs: reports.gapMs }),
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

/** The accounts of a country's broker started by the devkit, with the generated users. */
export function localAccounts(
  list: TrustList,
  nkeys: ReadonlyMap<string, string>,
): Record<string, Record<string, unknown>> {
  return countryAccounts({ trustList: list, nkeys });
}
