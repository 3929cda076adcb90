/**
 * The national coordinator's inbox of escalations: every referral that was not accepted by its
 * deadline, with who held it and where it was going. (Signing trust lists is done offline with
 * `stafett trust sign`.)
 */
import {
  Notifier,
  Party,
  StafettError,
  isRefusal,
  parseOrgId,
  regions as geoRegions,
  type ClockCheckOptions,
  type Overview,
  type Logger,
  type PartyReadiness,
  type ServiceRuntime,
} from "@stafett/shared";
import {
  decide,
  decideHandling,
  evolve,
  type CoordinatorRecord,
  type Escalation,
  type Handling,
  type Officer,
  type RegionReport,
} from "./decide.js";
import { notificationsOf } from "./notifications.js";
import { DEFAULT_STALE_AFTER_MS, overviewOf } from "./overview.js";

export type { Escalation, Handling, Officer, RegionReport } from "./decide.js";
export type { Overview, RegionOverview } from "@stafett/shared";

export interface CoordinatorOptions extends ServiceRuntime {
  now?: () => Date;
  /** A region whose latest report is older than this is stale in the overview (default 12 min). */
  staleAfterMs?: number;
  /** The comparison of the clock with the broker's (see Party); for tests. */
  clock?: ClockCheckOptions | false;
}

export class Coordinator {
  readonly escalations = new Map<string, Escalation>();
  /** Each region's latest report, for the national overview (overview.ts). */
  readonly reports = new Map<string, RegionReport>();
  /** What the coordinator's people and systems are told (webhooks, GET /v1/events, e-mail). */
  notifier!: Notifier;
  /** The party runtime it runs on (its operations watch it; nothing else uses it from outside). */
  party!: Party<CoordinatorRecord>;
  private staleAfterMs: number | undefined;

  static async start(options: CoordinatorOptions, log: Logger): Promise<Coordinator> {
    if (parseOrgId(options.identity.id).role !== "coordinator") {
      throw new StafettError(
        "ERR_CONFIG_INVALID",
        "the coordinator's STAFETT_ORG must be a coordinator id",
        { reason: "role" },
      );
    }
    const c = new Coordinator();
    c.staleAfterMs = options.staleAfterMs;
    const org = options.identity.id;
    c.notifier = Notifier.open(options.stateDir, org, options.notify, log);
    try {
      c.party = await Party.forService<CoordinatorRecord>(
        options,
        log,
        (r) => {
          evolve(c, r);
          if ("escalation" in r) c.notifier.observe(notificationsOf(org, r));
        },
        {
          ...(options.now === undefined ? {} : { now: options.now }),
          ...(options.clock === undefined ? {} : { clock: options.clock }),
        },
      );
    } catch (err) {
      await c.notifier.stop();
      throw err;
    }
    c.notifier.replayed();
    await c.party.consume((v) => decide(v, c.reports, c.party.now()));
    return c;
  }

  /** An officer's step with an escalation (by its event id), journaled before it counts. */
  async handle(eventId: string, handling: Handling, by: Officer): Promise<Escalation> {
    return this.party.locks.run(eventId, async () => {
      const verdict = decideHandling(
        this.escalations.get(eventId),
        eventId,
        handling,
        by,
        this.party.now(),
      );
      if (isRefusal(verdict)) throw verdict.refuse;
      await this.party.carryOut(verdict);
      const e = this.escalations.get(eventId);
      if (e === undefined) throw new Error("escalation vanished from state");
      return e;
    });
  }

  /**
   * The national overview now: every region of the country (Sweden's seven from the reference
   * data, and every hub the trust list names) and every region that reported.
   */
  overview(): Overview {
    const country = this.party.trust.country;
    const regions = new Set(country === "se" ? geoRegions().map((r) => r.slug) : []);
    for (const o of this.party.trust.organisations())
      if (o.role === "hub" && o.country === country && o.region !== undefined)
        regions.add(o.region);
    return overviewOf(
      this.reports,
      regions,
      this.party.now(),
      this.staleAfterMs ?? DEFAULT_STALE_AFTER_MS,
    );
  }

  /** Whether the coordinator can do its work now, and if not, why (journal, clock, bus). */
  readiness(): PartyReadiness {
    return this.party.readiness();
  }

  async stop(): Promise<void> {
    await this.party.stop();
    await this.notifier.stop();
  }
}
