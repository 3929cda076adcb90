/**
 * The national coordinator's inbox of escalations: every referral that was not accepted by its
 * deadline, with who held it and where it was going. (Signing trust lists is done offline with
 * `stafett trust sign`.)
 */
import { Party, StafettError, parseOrgId, type Logger, type ServiceRuntime } from "@stafett/shared";
import { decide, type CoordinatorRecord, type Escalation } from "./decide.js";

export type { Escalation } from "./decide.js";

export class Coordinator {
  readonly escalations = new Map<string, Escalation>();
  /** The party runtime it runs on (its operations watch it; nothing else uses it from outside). */
  party!: Party<CoordinatorRecord>;

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
    await c.party.consume((v) => decide(v, c.party.now()));
    return c;
  }

  async stop(): Promise<void> {
    await this.party.stop();
  }
}
