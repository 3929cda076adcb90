/**
 * The national coordinator's inbox of escalations: every referral that was not accepted by its
 * deadline, with who held it and where it was going. (Signing trust lists is done offline with
 * `stafett trust sign`.)
 */
import {
  Party,
  StafettError,
  parseOrgId,
  type Logger,
  type ServiceRuntime,
  type VerifiedEvent,
} from "@stafett/shared";

export interface Escalation {
  referralId: string;
  eventId: string;
  from: string;
  holder: string;
  deadline: string;
  urgency?: string;
  destination?: { country: string; region?: string; municipality?: string };
  at: string;
}

type CoordinatorRecord = { k: "escalation"; escalation: Escalation };

export class Coordinator {
  readonly escalations = new Map<string, Escalation>();
  private party!: Party<CoordinatorRecord>;

  static async start(options: ServiceRuntime, log: Logger): Promise<Coordinator> {
    if (parseOrgId(options.identity.id).role !== "coordinator") {
      throw new StafettError(
        "ERR_CONFIG_INVALID",
        "the coordinator's STAFETT_ORG must be a coordinator id",
        { reason: "role" },
      );
    }
    const c = new Coordinator();
    c.party = await Party.forService<CoordinatorRecord>(options, log, (r) =>
      c.escalations.set(r.escalation.eventId, r.escalation),
    );
    await c.party.consume(async (v) => c.handle(v));
    return c;
  }

  private handle(v: VerifiedEvent): CoordinatorRecord[] {
    const esc = v.event.escalated;
    if (v.event.type !== "escalated" || esc === undefined) return [];
    return [
      {
        k: "escalation",
        escalation: {
          referralId: v.event.referralId,
          eventId: v.event.id,
          from: v.issuer.id,
          holder: esc.holder,
          deadline: esc.deadline,
          ...(esc.urgency === undefined ? {} : { urgency: esc.urgency }),
          ...(esc.destination === undefined ? {} : { destination: esc.destination }),
          at: new Date().toISOString(),
        },
      },
    ];
  }

  async stop(): Promise<void> {
    await this.party.stop();
  }
}
