/**
 * The regional hub (regionkoordinator): receives every referral addressed into its region,
 * answers the sender with a signed receipt, forwards it to the destination municipality or
 * re-routes it to the right region's hub, holds what has no known municipality for triage,
 * relays acceptances, declines and the sender's updates, and escalates to the national
 * coordinator when a referral is not accepted by its deadline.
 */
import {
  Notifier,
  decodeEvent,
  decodeSignedEvent,
  fromBase64,
  Party,
  coordinatorId,
  parseOrgId,
  plan,
  StafettError,
  isRefusal,
  systemNow,
  type Logger,
  type ServiceRuntime,
  type TrustStore,
  type Verdict,
  type ClockCheckOptions,
  type PartyReadiness,
  type Erasure,
  openPersonal,
} from "@stafett/shared";
import {
  decide,
  decideEscalation,
  decideTriageForward,
  decideTriageReroute,
  type Held,
  type HubContext,
  type HubView,
} from "./decide.js";
import { notificationsOf } from "./notifications.js";
import {
  DEFAULT_REPORT_EVERY_MS,
  DEFAULT_REPORT_GAP_MS,
  regionReport,
  reportDue,
  type LastReport,
} from "./report.js";
import { HubState, type HubRecord, type HubReferral } from "./state.js";

export interface HubOptions extends ServiceRuntime {
  /** How often deadlines are checked. */
  tickMs?: number;
  concurrency?: number;
  now?: () => Date;
  /** How long after a refused escalation it is sent again, doubling each time (default 60 s). */
  escalationRetryMs?: number;
  /** The comparison of the clock with the broker's (see Party); for tests. */
  clock?: ClockCheckOptions | false;
  /**
   * How often, at least, the hub reports its region's open referrals to the national coordinator
   * (`reported`); 0 or absent: never. The service's configuration gives 5 minutes
   * (STAFETT_REPORT_EVERY); a hub started in-process (tests) reports only when asked to.
   */
  reportEveryMs?: number;
  /** The least time between two reports, however often the counts change (default 2 s). */
  reportGapMs?: number;
}

export class Hub {
  readonly state = new HubState();
  readonly region: string;
  /** What its officers and systems are told (webhooks, GET /v1/events, e-mail alerts). */
  notifier!: Notifier;
  /** The party runtime it runs on (its operations watch it; nothing else uses it from outside). */
  party!: Party<HubRecord>;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private reportTimer: NodeJS.Timeout | undefined;
  private reporting = false;
  private lastReport: LastReport | undefined;
  private readonly now: () => Date;

  private constructor(
    private readonly options: HubOptions,
    private readonly log: Logger,
  ) {
    const address = parseOrgId(options.identity.id);
    if (address.role !== "hub")
      throw new StafettError("ERR_CONFIG_INVALID", "a hub's STAFETT_ORG must be a hub id", {
        reason: "role",
      });
    this.region = address.region;
    this.now = options.now ?? systemNow;
  }

  static async start(options: HubOptions, log: Logger): Promise<Hub> {
    const hub = new Hub(options, log.child({ component: "hub" }));
    hub.notifier = Notifier.open(options.stateDir, options.identity.id, options.notify, log, {
      now: hub.now,
    });
    try {
      hub.party = await Party.forService<HubRecord>(
        options,
        log,
        (r, at) => {
          hub.state.apply(r, at);
          hub.notifier.observe(notificationsOf(hub.id, r, hub.state));
        },
        {
          now: hub.now,
          ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
          ...(options.clock === undefined ? {} : { clock: options.clock }),
          holdings: hub.state,
          ...(options.sweepMs === undefined ? {} : { sweepMs: options.sweepMs }),
        },
      );
    } catch (err) {
      await hub.notifier.stop();
      throw err;
    }
    hub.notifier.replayed();
    await hub.party.consume((v, d) => decide(hub.context(), hub.view, v, d.data, hub.now()));
    hub.timer = setInterval(() => void hub.escalateOverdue(), options.tickMs ?? 1_000);
    if ((options.reportEveryMs ?? 0) > 0) {
      // The counts are looked at every second at most (a deadline passing changes them too).
      const look = Math.min(options.reportGapMs ?? DEFAULT_REPORT_GAP_MS, 1_000);
      hub.reportTimer = setInterval(() => void hub.report(), look);
    }
    return hub;
  }

  get id(): string {
    return this.options.identity.id;
  }

  /** The trust lists in force (watched: rotation and revocation apply without a restart). */
  get trust(): TrustStore {
    return this.party.trust;
  }

  /** Whether the hub can do its work now, and if not, why (journal, clock, bus). */
  readiness(): PartyReadiness {
    return this.party.readiness();
  }

  /** Who the hub is, for its decisions. */
  private context(): HubContext {
    return {
      id: this.id,
      derive: this.party.derive,
      country: this.party.country,
      region: this.region,
      serves: (hub) => this.party.trust.organisation(hub) !== undefined,
      ...(this.options.escalationRetryMs === undefined
        ? {}
        : { escalationRetryMs: this.options.escalationRetryMs }),
    };
  }

  /** What the hub holds, for its decisions: state in memory, bytes read back from the journal. */
  private readonly view: HubView = {
    referral: (referralId) => this.state.referrals.get(referralId),
    held: (ref) => this.held(ref),
  };

  /** Carries out an officer's or the clock's verdict: a refusal is thrown to the caller. */
  private async carryOut(verdict: Verdict<HubRecord>): Promise<void> {
    if (isRefusal(verdict)) throw verdict.refuse;
    await this.party.carryOut(verdict);
  }

  /** Erases a referral's personal part from this hub's store, on request (see Party.erase). */
  erase(referralId: string): Promise<Erasure> {
    return this.party.erase(referralId, "request");
  }

  /** The opened SignedEvent (standard base64) the hub holds for `referralId`, from its journal. */
  openedOf(referralId: string): string | undefined {
    const ref = this.state.referrals.get(referralId);
    return ref === undefined ? undefined : this.held(ref).opened;
  }

  /**
   * The personal part of a referral as the hub holds it, opened with the hub's own key: the
   * regional coordinator triages on it. The caller records the read first (the access audit).
   */
  async personalOf(referralId: string): Promise<unknown> {
    const opened = this.openedOf(referralId);
    const sealed =
      opened === undefined
        ? undefined
        : decodeEvent(decodeSignedEvent(fromBase64(opened)).event).opened?.personal;
    return openPersonal(this.options.identity, sealed, referralId);
  }

  /** What the hub holds of a referral from its journal: the opened bytes, and a relay's JWE. */
  private held(ref: HubReferral): Held {
    if (ref.erased === true)
      throw new StafettError("ERR_GONE", "the personal part of this referral was erased", {
        reason: "erased",
      });
    const r = this.party.stored(ref.stored);
    if (r.k !== "received" || r.referralId !== ref.referralId)
      throw new Error(`journal record for ${ref.referralId} is not its receipt`);
    return { opened: r.opened, ...(r.sealed === undefined ? {} : { sealed: r.sealed }) };
  }

  /** Sends `escalated` to the national coordinator (and tells the origin) for every overdue referral. */
  async escalateOverdue(): Promise<number> {
    if (this.ticking) return 0;
    // Nothing can be journaled or issued now (the party says why, once): wait for the next tick.
    if (this.party.readiness().problems.some((p) => p.code !== "ERR_UNAVAILABLE")) return 0;
    this.ticking = true;
    let n = 0;
    try {
      for (const ref of this.state.overdue(this.now())) {
        await this.party.locks.run(ref.referralId, async () => {
          const escalation = decideEscalation(this.context(), ref, this.now());
          if (escalation === undefined) return;
          await this.party.carryOut(escalation);
          n += 1;
        });
      }
    } catch (err) {
      this.log.error({ err }, "escalation failed; will retry on the next tick");
    } finally {
      this.ticking = false;
    }
    return n;
  }

  /**
   * Sends the region's report to the national coordinator when it is due (report.ts: changed
   * counts at most once per gap, and a heartbeat), through the journaled plan like every event
   * the hub issues. Answers whether it sent one. Counts only: nothing about a referral leaves.
   */
  async report(): Promise<boolean> {
    if (this.reporting) return false;
    this.reporting = true;
    // Everything inside the try: the timer drops the promise, so a rejection would end the hub.
    try {
      if (this.party.readiness().problems.some((p) => p.code !== "ERR_UNAVAILABLE")) return false;
      // A list without a coordinator has nobody to report to (and no subject to publish on).
      const coordinator = coordinatorId(this.party.country);
      if (this.trust.organisation(coordinator) === undefined) return false;
      const now = this.now();
      const current = regionReport(this.region, this.state.referrals.values(), now);
      const timing = {
        everyMs: this.options.reportEveryMs ?? DEFAULT_REPORT_EVERY_MS,
        ...(this.options.reportGapMs === undefined ? {} : { gapMs: this.options.reportGapMs }),
      };
      if (!reportDue(this.lastReport, current, now.getTime(), timing)) return false;
      await this.party.carryOut(
        plan<HubRecord>(
          [],
          [
            {
              issue: { type: "reported", addressee: coordinator, body: { ...current }, time: now },
            },
          ],
        ),
      );
      this.lastReport = { report: current, at: now.getTime() };
      return true;
    } catch (err) {
      this.log.warn({ err }, "the region's report was not sent; tried again on the next look");
      return false;
    } finally {
      this.reporting = false;
    }
  }

  /** Forwards a referral held for triage to a municipality (an officer's decision). */
  async triageForward(referralId: string, municipality: string): Promise<HubReferral> {
    return this.party.locks.run(referralId, async () => {
      await this.carryOut(
        decideTriageForward(this.context(), this.view, referralId, municipality, this.now()),
      );
      const ref = this.state.referrals.get(referralId);
      if (ref === undefined) throw new Error("referral vanished from state");
      return ref;
    });
  }

  /** Re-routes a referral held for triage to another region's hub (an officer's decision). */
  async triageReroute(referralId: string, region: string): Promise<HubReferral> {
    return this.party.locks.run(referralId, async () => {
      await this.carryOut(
        decideTriageReroute(this.context(), this.view, referralId, region, this.now()),
      );
      const ref = this.state.referrals.get(referralId);
      if (ref === undefined) throw new Error("referral vanished from state");
      return ref;
    });
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.reportTimer !== undefined) clearInterval(this.reportTimer);
    await this.party.stop();
    await this.notifier.stop();
  }
}
