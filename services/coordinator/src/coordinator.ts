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
  type ClockCheckOptions,
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
} from "./decide.js";
import { notificationsOf } from "./notifications.js";

export type { Escalation, Handling, Officer } from "./decide.js";

export interface CoordinatorOptions extends ServiceRuntime {
  now?: () => Date;
  /** The comparison of the clock with the broker's (see Party); for tests. */
  clock?: ClockCheckOptions | false;
}

export class Coordinator {
  readonly escalations = new Map<string, Escalation>();
  /** What the coordinator's people and systems are told (webhooks, GET /v1/events, e-mail). */
  notifier!: Notifier;
  /** The party runtime it runs on (its operations watch it; nothing else uses it from outside). */
  party!: Party<CoordinatorRecord>;

  static async start(options: CoordinatorOptions, log: Logger): Promise<Coordinator> {
    if (parseOrgId(options.identity.id).role !== "coordinator") {
      throw new StafettError(
        "ERR_CONFIG_INVALID",
        "the coordinator's STAFETT_ORG must be a coordinator id",
        { reason: "role" },
      );
    }
    const c = new Coordinator();
    const org = options.identity.id;
    c.notifier = Notifier.open(options.stateDir, org, options.notify, log);
    try {
      c.party = await Party.forService<CoordinatorRecord>(
        options,
        log,
        (r) => {
          evolve(c.escalations, r);
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
    await c.party.consume((v) => decide(v, c.party.now()));
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

  /** Whether the coordinator can do its work now, and if not, why (journal, clock, bus). */
  readiness(): PartyReadiness {
    return this.party.readiness();
  }

  async stop(): Promise<void> {
    await this.party.stop();
    await this.notifier.stop();
  }
}
