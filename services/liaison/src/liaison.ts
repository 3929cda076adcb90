/**
 * The national liaison (contact point). Outbound: every event a domestic party addresses to a
 * partner country passes the outbound policy, gets the liaison's countersignature (the issuer's
 * signature is untouched) and goes to the partner's inbound subject with the same message id;
 * while the link is down it waits, in order. Inbound: partner events for domestic parties are
 * relayed to them; a partner's referral gets a signed receipt and is routed to the regional hub
 * of its destination municipality, or waits for the contact point's decision.
 */
import { randomUUID } from "node:crypto";
import {
  decodeEvent,
  decodeSignedEvent,
  fromBase64,
  isRefusal,
  Notifier,
  Party,
  parseOrgId,
  parseSubject,
  StafettError,
  type ClockCheckOptions,
  type Erasure,
  type Logger,
  type Delivery,
  type ServiceRuntime,
  type TrustStore,
  type PartyReadiness,
  type Verdict,
  type VerifiedEvent,
  openPersonal,
} from "@stafett/shared";
import {
  decide,
  decideAnswer,
  decideBorderEscalation,
  decideFollowAbroad,
  decideReferAbroad,
  decideRouteTo,
  DEFAULT_OUTBOUND_POLICY,
  type LiaisonContext,
  type LiaisonView,
  type OutboundPolicy,
  type ReferAbroad,
} from "./decide.js";
import {
  LiaisonState,
  type InboundReferral,
  type LiaisonRecord,
  type SentAbroad,
} from "./state.js";
import { notificationsOf } from "./notifications.js";

export { DEFAULT_OUTBOUND_POLICY, type OutboundPolicy } from "./decide.js";

export interface LiaisonOptions extends ServiceRuntime {
  outbound?: OutboundPolicy;
  /** How long to wait between attempts while a partner's link is down. */
  retryMs?: number;
  /** How often the deadlines of referrals at the border are checked. */
  tickMs?: number;
  /** The party's clock (tests move it ahead to pass a retention period). */
  now?: () => Date;
  /** The comparison of the clock with the broker's (see Party); for tests. */
  clock?: ClockCheckOptions | false;
}

/** The personal part of this referral was erased here (on request, or its retention ended). */
function erased(): StafettError {
  return new StafettError("ERR_GONE", "the personal part of this referral was erased", {
    reason: "erased",
  });
}

export class Liaison {
  readonly state = new LiaisonState();
  /** What the contact point's people and systems are told (webhooks, GET /v1/events, e-mail alerts). */
  notifier!: Notifier;
  /** The party runtime it runs on (its operations watch it; nothing else uses it from outside). */
  party!: Party<LiaisonRecord>;
  private readonly policy: OutboundPolicy;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;

  private constructor(
    private readonly options: LiaisonOptions,
    private readonly log: Logger,
  ) {
    if (parseOrgId(options.identity.id).role !== "liaison") {
      throw new StafettError("ERR_CONFIG_INVALID", "a liaison's STAFETT_ORG must be a liaison id", {
        reason: "role",
      });
    }
    this.policy = options.outbound ?? DEFAULT_OUTBOUND_POLICY;
  }

  static async start(options: LiaisonOptions, log: Logger): Promise<Liaison> {
    const l = new Liaison(options, log.child({ component: "liaison" }));
    const org = options.identity.id;
    l.notifier = Notifier.open(options.stateDir, org, options.notify, log);
    try {
      l.party = await Party.forService<LiaisonRecord>(
        options,
        log,
        (r) => {
          l.state.apply(r);
          l.notifier.observe(notificationsOf(org, r));
        },
        {
          ...(options.retryMs === undefined ? {} : { linkRetryMs: options.retryMs }),
          // No signal of a link's state exists on the bus yet: it is derived from the store
          // and forward's publishes to the partner (the first failure, the first success after).
          onLink: (subject, up) => l.notifier.linkState(parseSubject(subject).country, up),
          ...(options.now === undefined ? {} : { now: options.now }),
          ...(options.clock === undefined ? {} : { clock: options.clock }),
          // Retention and erasure (retention.ts); the periods and the sweep come with the runtime.
          holdings: l.state,
          ...(options.sweepMs === undefined ? {} : { sweepMs: options.sweepMs }),
        },
      );
    } catch (err) {
      await l.notifier.stop();
      throw err;
    }
    l.notifier.replayed();
    const cc = l.party.country;
    await l.party.consume(
      (v, d) => l.decide(v, d),
      [
        // One at a time, so that what waits for a partner's link leaves in the order it came.
        { durable: `${cc}-liaison-out`, concurrency: 1, mode: "relay" },
        { durable: `${cc}-liaison-in`, concurrency: 4, mode: "relay" },
      ],
    );
    l.timer = setInterval(() => void l.escalateOverdue(), options.tickMs ?? 1_000);
    return l;
  }

  /**
   * Escalates every referral at the border whose deadline passed with nobody having taken it
   * (decideBorderEscalation); once each, also across restarts (the escalation is journaled).
   */
  async escalateOverdue(): Promise<number> {
    if (this.ticking) return 0;
    this.ticking = true;
    let n = 0;
    try {
      for (const w of this.state.overdue(new Date())) {
        await this.party.locks.run(w.referralId, async () => {
          const escalation = decideBorderEscalation(this.context(), w, new Date());
          if (escalation === undefined) return;
          await this.party.carryOut(escalation);
          n += 1;
        });
      }
    } catch (err) {
      this.log.error({ err }, "border escalation failed; will retry on the next tick");
    } finally {
      this.ticking = false;
    }
    return n;
  }

  /** The personal part of a partner's referral, opened now with the liaison's key (never stored in clear). */
  async personalOf(item: InboundReferral): Promise<unknown> {
    if (item.erased === true) throw erased();
    const sealed = decodeEvent(decodeSignedEvent(fromBase64(item.opened)).event).opened?.personal;
    return openPersonal(this.options.identity, sealed, item.referralId);
  }

  /** Erases a partner's referral's personal part from the liaison's store, on request (Party.erase). */
  erase(referralId: string): Promise<Erasure> {
    return this.party.erase(referralId, "request");
  }

  /** The trust lists in force (watched: rotation and revocation apply without a restart). */
  get trust(): TrustStore {
    return this.party.trust;
  }

  get id(): string {
    return this.options.identity.id;
  }

  /** Whether the liaison can do its work now, and if not, why (journal, clock, bus). */
  readiness(): PartyReadiness {
    return this.party.readiness();
  }

  private context(): LiaisonContext {
    return {
      id: this.id,
      derive: this.party.derive,
      country: this.party.country,
      trust: this.party.trust,
      policy: this.policy,
    };
  }

  private readonly view: LiaisonView = {
    inbound: (id) => this.state.inbound.get(id),
    crossed: (id) => this.state.crossed.get(id),
    sent: (id) => this.state.sent.get(id),
  };

  private decide(v: VerifiedEvent, d: Delivery): Verdict<LiaisonRecord> {
    const parts = parseSubject(d.subject);
    const verdict = decide(
      this.context(),
      this.view,
      v,
      {
        bytes: d.data,
        ...(parts.direction === "out" ? { partnerCountry: parts.partnerCountry ?? "" } : {}),
      },
      this.party.now(),
    );
    if (!isRefusal(verdict))
      for (const r of verdict.records)
        if (r.k === "refused")
          this.log.warn(
            { event_id: r.eventId, code: "ERR_OUTBOUND_POLICY", reason: r.reason },
            "outbound policy refused an event",
          );
    return verdict;
  }

  /** Carries out a command's verdict under the referral's lock; a refusal is thrown to the caller. */
  private command(
    referralId: string,
    decideNow: () => Verdict<LiaisonRecord>,
  ): Promise<InboundReferral> {
    return this.party.locks.run(referralId, async () => {
      const verdict = decideNow();
      if (isRefusal(verdict)) throw verdict.refuse;
      await this.party.carryOut(verdict);
      const item = this.state.inbound.get(referralId);
      if (item === undefined) throw new Error("inbound referral vanished from state");
      return item;
    });
  }

  /** The contact point accepts or declines a partner's referral on behalf of its country. */
  answer(
    referralId: string,
    decision: "accepted" | "declined",
    reason?: string,
  ): Promise<InboundReferral> {
    return this.command(referralId, () =>
      decideAnswer(this.context(), this.view, referralId, decision, reason, this.party.now()),
    );
  }

  /** The contact point hands a waiting partner referral to a domestic municipality (through its hub). */
  routeTo(referralId: string, municipality: string): Promise<InboundReferral> {
    return this.command(referralId, () => {
      // Erased while it waited: nothing left to seal anew for the hub (an answer needs none).
      if (this.state.inbound.get(referralId)?.erased === true) throw erased();
      return decideRouteTo(this.context(), this.view, referralId, municipality, this.party.now());
    });
  }

  /**
   * The contact point refers a child to a partner country itself (decideReferAbroad); the
   * referral id is random, chosen here. Returns the referral as sent.
   */
  referAbroad(input: Omit<ReferAbroad, "referralId">): Promise<SentAbroad> {
    const referralId = randomUUID();
    return this.party.locks.run(referralId, async () => {
      const verdict = decideReferAbroad(
        this.context(),
        this.view,
        { ...input, referralId },
        new Date(),
      );
      if (isRefusal(verdict)) throw verdict.refuse;
      await this.party.carryOut(verdict);
      const sent = this.state.sent.get(referralId);
      if (sent === undefined) throw new Error("referral abroad vanished from state");
      return sent;
    });
  }

  /** The contact point withdraws or closes a referral it sent abroad (decideFollowAbroad). */
  followAbroad(
    referralId: string,
    follow: { type: "withdrawn"; reason: string } | { type: "closed"; outcome: string },
  ): Promise<void> {
    return this.party.locks.run(referralId, async () => {
      const verdict = decideFollowAbroad(
        this.context(),
        this.view,
        referralId,
        follow,
        randomUUID(),
        new Date(),
      );
      if (isRefusal(verdict)) throw verdict.refuse;
      await this.party.carryOut(verdict);
    });
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.party.stop();
    await this.notifier.stop();
  }
}
