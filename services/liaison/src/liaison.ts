/**
 * The national liaison (contact point). Outbound: every event a domestic party addresses to a
 * partner country passes the outbound policy, gets the liaison's countersignature (the issuer's
 * signature is untouched) and goes to the partner's inbound subject with the same message id;
 * while the link is down it waits, in order. Inbound: partner events for domestic parties are
 * relayed to them; a partner's referral gets a signed receipt and is routed to the regional hub
 * of its destination municipality, or waits for the contact point's decision.
 */
import {
  decodeEvent,
  decodeSignedEvent,
  derivedId,
  fromBase64,
  hubOfMunicipality,
  isMunicipality,
  municipalityId,
  open,
  Party,
  parseOrgId,
  parseSubject,
  countersign,
  recipientKids,
  seal,
  StafettError,
  toBase64,
  type Decision,
  type Delivery,
  type EventType,
  type Logger,
  type ReasonCategory,
  type ServiceRuntime,
  type VerifiedEvent,
} from "@stafett/shared";
import { LiaisonState, type InboundReferral, type LiaisonRecord } from "./state.js";

export interface OutboundPolicy {
  /** Countries referrals may go to; default: every partner the trust list names. */
  partners?: readonly string[];
  /** Event types that may leave the country. */
  types: readonly EventType[];
  /** Reason categories for which a referral may leave the country. */
  reasons: readonly ReasonCategory[];
}

export const DEFAULT_OUTBOUND_POLICY: OutboundPolicy = {
  types: [
    "opened",
    "updated",
    "withdrawn",
    "closed",
    "accepted",
    "declined",
    "received",
    "rejected",
    "forwarded",
  ],
  // "Other" states no ground a partner authority could act on; it stays at home.
  reasons: [
    "REASON_CATEGORY_MISSING",
    "REASON_CATEGORY_TRAFFICKING_SUSPECTED",
    "REASON_CATEGORY_EXPLOITATION_SUSPECTED",
    "REASON_CATEGORY_UNACCOMPANIED_MINOR",
    "REASON_CATEGORY_MOVED",
  ],
};

export interface LiaisonOptions extends ServiceRuntime {
  outbound?: OutboundPolicy;
  /** How long to wait between attempts while a partner's link is down. */
  retryMs?: number;
}

const refuse = (reason: string, message: string, field?: string): StafettError =>
  new StafettError("ERR_OUTBOUND_POLICY", message, {
    reason,
    ...(field === undefined ? {} : { field }),
  });

export class Liaison {
  readonly state = new LiaisonState();
  private party!: Party<LiaisonRecord>;
  private stopping = false;
  private readonly policy: OutboundPolicy;

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
    l.party = await Party.forService<LiaisonRecord>(options, log, (r) => l.state.apply(r));
    const cc = l.party.country;
    await l.party.consume(
      (v, d) => l.handle(v, d),
      [
        // One at a time, so that what waits for a partner's link leaves in the order it came.
        { durable: `${cc}-liaison-out`, concurrency: 1, mode: "relay" },
        { durable: `${cc}-liaison-in`, concurrency: 4, mode: "relay" },
      ],
    );
    return l;
  }

  get id(): string {
    return this.options.identity.id;
  }

  private at(): string {
    return new Date().toISOString();
  }

  private async handle(v: VerifiedEvent, d: Delivery): Promise<Decision<LiaisonRecord>> {
    const parts = parseSubject(d.subject);
    if (parts.direction === "out") return this.outbound(v, d, parts.partnerCountry ?? "");
    return this.inbound(v, d);
  }

  /** Checks the outbound policy; throws a coded refusal that the sender will see. */
  private checkOutbound(v: VerifiedEvent, partner: string): void {
    const e = v.event;
    const partnerLiaison = `${partner}:liaison`;
    const trust = this.party.trust;
    const named = (trust.lists[0]?.partners ?? []).some((p) => p.country === partner);
    if (
      !named ||
      trust.organisation(partnerLiaison) === undefined ||
      (this.policy.partners !== undefined && !this.policy.partners.includes(partner))
    ) {
      throw refuse(
        "unknown_partner",
        `${partner} is not a partner country referrals may go to`,
        "/addressee",
      );
    }
    if (parseOrgId(e.addressee).country !== partner)
      throw refuse(
        "addressee_country",
        "the addressee is not in the partner country of the subject",
        "/addressee",
      );
    if (!this.policy.types.includes(e.type))
      throw refuse("type_not_allowed", `${e.type} events do not leave the country`, "/type");
    const opened = e.opened;
    if (opened !== undefined && !this.policy.reasons.includes(opened.reason)) {
      throw refuse(
        "reason_not_allowed",
        "this reason category does not justify a referral abroad",
        "/opened/reason",
      );
    }
    const sealed = opened?.personal ?? e.updated?.personal;
    if (sealed !== undefined) {
      const partnerKey = trust
        .organisation(partnerLiaison)
        ?.keys.find((k) => k.use === "enc" && k.revokedAt === undefined);
      if (partnerKey === undefined || !recipientKids(sealed).includes(partnerKey.kid)) {
        throw refuse(
          "not_sealed_to_partner",
          "the personal part is not sealed to the partner's liaison",
          "/opened/personal",
        );
      }
      // The contact point reviews what leaves the country: it must be a recipient, and a legal basis stated.
      const personal = v.personal as { legalBasis?: unknown } | undefined;
      if (personal === undefined)
        throw refuse(
          "not_sealed_to_liaison",
          "the personal part is not sealed to the own liaison for review",
          "/opened/personal",
        );
      if (typeof personal.legalBasis !== "string" || personal.legalBasis.trim().length === 0) {
        throw refuse(
          "no_legal_basis",
          "no legal basis is stated for the disclosure",
          "/personal/legalBasis",
        );
      }
    }
  }

  private async outbound(v: VerifiedEvent, d: Delivery, partner: string): Promise<LiaisonRecord[]> {
    const e = v.event;
    try {
      this.checkOutbound(v, partner);
    } catch (err) {
      if (!(err instanceof StafettError)) throw err;
      this.log.warn(
        { event_id: e.id, code: err.code, reason: err.reason },
        "outbound policy refused an event",
      );
      await this.party.send({
        type: "rejected",
        addressee: v.issuer.id,
        referralId: e.referralId,
        id: derivedId(this.id, "rejected", e.id),
        body: {
          ofEventId: e.id,
          code: err.code,
          reason: err.reason,
          ...(err.field === undefined ? {} : { field: err.field }),
          digest: v.digest,
        },
      });
      return [
        {
          k: "refused",
          eventId: e.id,
          referralId: e.referralId,
          partner,
          from: v.issuer.id,
          reason: err.reason,
          at: this.at(),
        },
      ];
    }
    const bytes = await countersign(d.data, this.options.identity.signing);
    const subject = `stafett.${partner}.in.${this.party.country}.${e.type}`;
    // Store and forward: the event stays unacked in our stream until the partner's stream has it.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.party.bus.publish({ subject, bytes, headers: d.headers }, { deadlineMs: 5_000 });
        break;
      } catch (err) {
        if (this.stopping) throw err;
        if (attempt === 1 || attempt % 10 === 0)
          this.log.warn(
            { event_id: e.id, subject, attempt },
            "partner link unavailable; the event waits",
          );
        await new Promise((r) => setTimeout(r, this.options.retryMs ?? 1_000));
      }
    }
    if (e.type === "opened" && parseOrgId(v.issuer.id).role === "municipality") {
      await this.party.send({
        type: "forwarded",
        addressee: v.issuer.id,
        referralId: e.referralId,
        id: derivedId(this.id, "notify", e.id),
        body: { original: toBase64(d.data), destination: { country: partner } },
      });
    }
    return [
      {
        k: "out",
        eventId: e.id,
        referralId: e.referralId,
        type: e.type,
        partner,
        from: v.issuer.id,
        at: this.at(),
      },
    ];
  }

  private async inbound(v: VerifiedEvent, d: Delivery): Promise<LiaisonRecord[]> {
    const e = v.event;
    if (e.addressee !== this.id) {
      // For a domestic party: relay it, with the partner's signatures inside.
      const to = parseOrgId(e.addressee);
      if (to.country !== this.party.country)
        throw new StafettError("ERR_NOT_ADDRESSEE", "inbound event for another country", {
          reason: "mismatch",
          field: "/addressee",
        });
      const relay = await this.party.send({
        type: "forwarded",
        addressee: e.addressee,
        referralId: e.referralId,
        id: derivedId(this.id, "relay-in", e.id),
        body: { original: toBase64(d.data) },
      });
      return [
        {
          k: "relayed-in",
          eventId: relay.id,
          referralId: e.referralId,
          type: e.type,
          to: e.addressee,
          at: this.at(),
        },
      ];
    }
    if (e.type !== "opened" || e.opened === undefined) return [];
    if (this.state.inbound.has(e.referralId)) {
      throw new StafettError("ERR_REPLAY", "this referral already arrived", {
        reason: "duplicate_referral",
        field: "/referralId",
      });
    }
    await this.party.send({
      type: "received",
      addressee: v.issuer.id,
      referralId: e.referralId,
      id: derivedId(this.id, "received", e.id),
      body: { ofEventId: e.id, digest: v.digest },
    });
    const o = e.opened;
    const base = {
      k: "inbound" as const,
      referralId: e.referralId,
      openedId: e.id,
      origin: v.issuer.id,
      urgency: o.urgency,
      reason: o.reason,
      deadline: o.deadline,
      opened: toBase64(d.data),
      at: this.at(),
    };
    const code = o.destination.municipality;
    if (
      o.destination.country === this.party.country &&
      code !== undefined &&
      isMunicipality(code)
    ) {
      const target = municipalityId(this.party.country, code);
      const hub = await this.route(
        base,
        hubOfMunicipality(target),
        [hubOfMunicipality(target), target],
        v.personal,
      );
      return [{ ...base, routedTo: hub }];
    }
    // No known municipality: it waits for the contact point (GET /v1/inbound).
    return [base];
  }

  /** Forwards a partner's referral to a domestic party, the personal part sealed to `recipients`. */
  private async route(
    item: { referralId: string; openedId: string; opened: string; deadline: string },
    to: string,
    recipients: string[],
    personal: unknown,
  ): Promise<string> {
    const plaintext = personal ?? (await this.openInbound(item));
    const keys = await this.party.trust.encryptionKeys(recipients, new Date());
    const resealed = await seal(plaintext, keys, item.referralId);
    const dest = decodeEvent(decodeSignedEvent(fromBase64(item.opened)).event).opened?.destination;
    await this.party.send({
      type: "forwarded",
      addressee: to,
      referralId: item.referralId,
      id: derivedId(this.id, "route", item.openedId, to),
      body: {
        original: item.opened,
        personal: resealed,
        deadline: item.deadline,
        ...(dest === undefined ? {} : { destination: dest }),
      },
    });
    return to;
  }

  private async openInbound(item: { referralId: string; opened: string }): Promise<unknown> {
    const sealed = decodeEvent(decodeSignedEvent(fromBase64(item.opened)).event).opened?.personal;
    if (sealed === undefined)
      throw new StafettError("ERR_NOT_RECIPIENT", "no personal part", {
        reason: "missing",
        field: "personal",
      });
    return open(sealed, this.options.identity.encryption, item.referralId);
  }

  /** The contact point accepts or declines a partner's referral on behalf of its country. */
  async answer(
    referralId: string,
    decision: "accepted" | "declined",
    reason?: string,
  ): Promise<InboundReferral> {
    return this.party.locks.run(referralId, async () => {
      const item = this.state.inbound.get(referralId);
      if (item === undefined || item.status !== "pending") {
        throw new StafettError(
          "ERR_NOT_AUTHORISED",
          "no inbound referral waiting for a decision with this id",
          { reason: "not_pending", field: "referralId" },
        );
      }
      const issued = await this.party.send({
        type: decision,
        addressee: item.origin,
        referralId,
        id: derivedId(this.id, decision, item.openedId),
        body:
          decision === "accepted"
            ? { ofEventId: item.openedId }
            : { ofEventId: item.openedId, reason: reason ?? "DECLINE_REASON_OTHER" },
      });
      await this.party.record([
        { k: "answered", referralId, decision, eventId: issued.id, at: this.at() },
      ]);
      return item;
    });
  }

  /** The contact point hands a waiting partner referral to a domestic municipality (through its hub). */
  async routeTo(referralId: string, municipality: string): Promise<InboundReferral> {
    return this.party.locks.run(referralId, async () => {
      const item = this.state.inbound.get(referralId);
      if (item === undefined || item.status !== "pending") {
        throw new StafettError(
          "ERR_NOT_AUTHORISED",
          "no inbound referral waiting for a decision with this id",
          { reason: "not_pending", field: "referralId" },
        );
      }
      if (!isMunicipality(municipality))
        throw new StafettError("ERR_UNKNOWN_MUNICIPALITY", "not a municipality code", {
          reason: "unknown",
          field: "municipality",
        });
      const target = municipalityId(this.party.country, municipality);
      const hub = await this.route(
        item,
        hubOfMunicipality(target),
        [hubOfMunicipality(target), target],
        undefined,
      );
      await this.party.record([
        {
          k: "inbound",
          referralId,
          openedId: item.openedId,
          origin: item.origin,
          urgency: item.urgency,
          reason: item.reason,
          deadline: item.deadline,
          opened: item.opened,
          routedTo: hub,
          at: this.at(),
        },
      ]);
      return item;
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.party.stop();
  }
}
