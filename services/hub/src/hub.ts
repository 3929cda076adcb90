/**
 * The regional hub (regionkoordinator): receives every referral addressed into its region,
 * answers the sender with a signed receipt, forwards it to the destination municipality or
 * re-routes it to the right region's hub, holds what has no known municipality for triage,
 * relays acceptances, declines and the sender's updates, and escalates to the national
 * coordinator when a referral is not accepted by its deadline.
 */
import {
  coordinatorId,
  decodeEvent,
  decodeSignedEvent,
  derivedId,
  fromBase64,
  hubId,
  hubOfMunicipality,
  isMunicipality,
  municipalityId,
  open,
  Party,
  parseOrgId,
  recipientKids,
  seal,
  StafettError,
  toBase64,
  type Decision,
  type Delivery,
  type DestinationJson,
  type EventJson,
  type IssueInput,
  type Logger,
  type ServiceRuntime,
  type TrustStore,
  type VerifiedEvent,
} from "@stafett/shared";
import { HubState, type HubRecord, type HubReferral } from "./state.js";

/** What routing needs to know of a referral. */
type Routable = Pick<
  HubReferral,
  "referralId" | "openedId" | "origin" | "deadline" | "destination"
>;

/** The bytes the hub holds of a referral: the opened SignedEvent (base64), a relay's JWE. */
interface Held {
  opened: string;
  sealed?: string;
  /** The opened's own sealed part, when the opened is at hand decoded (saves decoding it again). */
  openedPersonal?: string;
}

/** A routing decision: the events to send, in order, and the records once they are sent. */
interface Plan {
  send: IssueInput[];
  records: HubRecord[];
}

export interface HubOptions extends ServiceRuntime {
  /** How often deadlines are checked. */
  tickMs?: number;
  concurrency?: number;
  now?: () => Date;
}

export class Hub {
  readonly state = new HubState();
  readonly region: string;
  private party!: Party<HubRecord>;
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
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
    this.now = options.now ?? (() => new Date());
  }

  static async start(options: HubOptions, log: Logger): Promise<Hub> {
    const hub = new Hub(options, log.child({ component: "hub" }));
    hub.party = await Party.forService<HubRecord>(
      options,
      log,
      (r, at) => hub.state.apply(r, at),
      options.concurrency === undefined ? {} : { concurrency: options.concurrency },
    );
    await hub.party.consume((v, d) => hub.handle(v, d));
    hub.timer = setInterval(() => void hub.escalateOverdue(), options.tickMs ?? 1_000);
    return hub;
  }

  get id(): string {
    return this.options.identity.id;
  }

  /** The trust lists in force (watched: rotation and revocation apply without a restart). */
  get trust(): TrustStore {
    return this.party.trust;
  }

  private at(): string {
    return this.now().toISOString();
  }

  private async handle(v: VerifiedEvent, d: Delivery): Promise<Decision<HubRecord>> {
    const e = v.event;
    switch (e.type) {
      case "opened":
        return this.take({
          opened: toBase64(d.data),
          openedEvent: e,
          origin: v.issuer.id,
          from: v.issuer.id,
          receiptOf: e.id,
          digest: v.digest,
          personal: v.personal,
        });
      case "forwarded": {
        const inner = v.original;
        if (inner?.event.type === "opened") {
          return this.take({
            opened: e.forwarded?.original ?? "",
            openedEvent: inner.event,
            origin: inner.issuer.id,
            from: v.issuer.id,
            receiptOf: e.id,
            digest: v.digest,
            personal: v.personal,
            ...(e.forwarded?.personal === undefined ? {} : { sealed: e.forwarded.personal }),
            ...(e.forwarded?.destination === undefined
              ? {}
              : { destination: e.forwarded.destination }),
          });
        }
        return [
          {
            k: "note",
            referralId: e.referralId,
            type: `forwarded:${inner?.event.type ?? "?"}`,
            eventId: e.id,
            from: v.issuer.id,
            at: this.at(),
          },
        ];
      }
      case "accepted":
        return this.fromHolder(v, d, "accepted");
      case "declined":
        return this.fromHolder(v, d, "declined");
      case "updated":
      case "withdrawn":
      case "closed":
        return this.fromOrigin(v, d);
      default:
        return [
          {
            k: "note",
            referralId: e.referralId,
            type: e.type,
            eventId: e.id,
            from: v.issuer.id,
            at: this.at(),
          },
        ];
    }
  }

  /** A referral arrives (from its origin or relayed by another hub): receipt, then route. */
  private async take(input: {
    opened: string;
    openedEvent: EventJson;
    origin: string;
    from: string;
    receiptOf: string;
    digest: string;
    personal: unknown;
    sealed?: string;
    destination?: DestinationJson;
  }): Promise<HubRecord[]> {
    const o = input.openedEvent.opened;
    if (o === undefined)
      throw new StafettError("ERR_SCHEMA_INVALID", "relayed event is not a referral", {
        reason: "type",
        field: "/forwarded/original",
      });
    const referralId = input.openedEvent.referralId;
    if (
      this.state.referrals.has(referralId) &&
      this.state.referrals.get(referralId)?.status !== "rerouted"
    ) {
      throw new StafettError("ERR_REPLAY", "this referral is already held here", {
        reason: "duplicate_referral",
        field: "/referralId",
      });
    }
    const receipt: IssueInput = {
      type: "received",
      addressee: input.from,
      referralId,
      id: derivedId(this.id, "received", input.receiptOf),
      body: { ofEventId: input.receiptOf, digest: input.digest },
    };
    const records: HubRecord[] = [
      {
        k: "received",
        referralId,
        openedId: input.openedEvent.id,
        origin: input.origin,
        opened: input.opened,
        ...(input.sealed === undefined ? {} : { sealed: input.sealed }),
        urgency: o.urgency,
        deadline: o.deadline,
        destination: input.destination ?? o.destination,
        from: input.from,
        at: this.at(),
      },
    ];
    const ref: Routable = {
      referralId,
      openedId: input.openedEvent.id,
      origin: input.origin,
      deadline: o.deadline,
      destination: input.destination ?? o.destination,
    };
    const held: Held = {
      opened: input.opened,
      ...(input.sealed === undefined ? {} : { sealed: input.sealed }),
      ...(o.personal === undefined ? {} : { openedPersonal: o.personal }),
    };
    // The receipt goes out with the hand-on, before it in the stream (see Party.sendAll).
    records.push(
      ...(await this.carryOut(await this.route(ref, held, ref.destination, input.personal), [
        receipt,
      ])),
    );
    return records;
  }

  /** Sends what a routing decision needs (after `before`, in order) and returns its records. */
  private async carryOut(plan: Plan, before: IssueInput[] = []): Promise<HubRecord[]> {
    await this.party.sendAll([...before, ...plan.send]);
    return plan.records;
  }

  /**
   * Forward to the municipality, re-route to its region's hub, or hold for triage: the events
   * to send, in order, and the records once they are sent.
   */
  private async route(
    ref: Routable,
    held: Held,
    dest: DestinationJson,
    personal: unknown,
  ): Promise<Plan> {
    if (
      dest.country === this.party.country &&
      dest.municipality !== undefined &&
      isMunicipality(dest.municipality)
    ) {
      const target = municipalityId(dest.country, dest.municipality);
      const targetHub = hubOfMunicipality(target);
      if (targetHub === this.id) {
        return this.handOn(
          "forwarded",
          ref,
          held,
          target,
          { ...dest, region: this.region },
          personal,
          [target],
        );
      }
      return this.handOn("rerouted", ref, held, targetHub, dest, personal, [targetHub, target]);
    }
    if (
      dest.country === this.party.country &&
      dest.region !== undefined &&
      dest.region !== this.region &&
      dest.municipality === undefined
    ) {
      const targetHub = hubId(dest.country, dest.region);
      if (this.party.trust.organisation(targetHub) !== undefined)
        return this.handOn("rerouted", ref, held, targetHub, dest, personal, [targetHub]);
    }
    return { send: [], records: [{ k: "triage", referralId: ref.referralId, at: this.at() }] };
  }

  /** The personal part sealed to `recipients`, reusing the original JWE when it already is. */
  private async sealedFor(
    ref: Routable,
    held: Held,
    recipients: string[],
    personal: unknown,
  ): Promise<string | undefined> {
    const original =
      held.sealed ??
      held.openedPersonal ??
      decodeEvent(decodeSignedEvent(fromBase64(held.opened)).event).opened?.personal;
    const keys = await this.party.trust.encryptionKeys(recipients, this.now());
    // Already sealed to them: the opened's own JWE (nothing to add) or the one a relay made.
    if (original !== undefined && keys.every((k) => recipientKids(original).includes(k.kid)))
      return held.sealed;
    const plaintext =
      personal ??
      (original === undefined
        ? undefined
        : await open(original, this.options.identity.encryption, ref.referralId));
    if (plaintext === undefined) {
      throw new StafettError(
        "ERR_NOT_RECIPIENT",
        "the hub cannot read the personal part to re-seal it",
        { reason: "not_recipient", field: "personal" },
      );
    }
    return seal(plaintext, keys, ref.referralId);
  }

  /** The opened SignedEvent (standard base64) the hub holds for `referralId`, from its journal. */
  openedOf(referralId: string): string | undefined {
    const ref = this.state.referrals.get(referralId);
    return ref === undefined ? undefined : this.held(ref).opened;
  }

  /** What the hub holds of a referral from its journal: the opened bytes, and a relay's JWE. */
  private held(ref: HubReferral): Held {
    const r = this.party.stored(ref.stored);
    if (r.k !== "received" || r.referralId !== ref.referralId)
      throw new Error(`journal record for ${ref.referralId} is not its receipt`);
    return { opened: r.opened, ...(r.sealed === undefined ? {} : { sealed: r.sealed }) };
  }

  /**
   * Hands the referral on: to a municipality of this region ("forwarded") or to the hub that
   * serves the destination ("rerouted"), with the personal part sealed to `recipients`, and tells
   * the origin where it went. The event id derives from the referral and the target, so doing
   * this again after a crash publishes the same id.
   */
  private async handOn(
    kind: "forwarded" | "rerouted",
    ref: Routable,
    held: Held,
    to: string,
    destination: DestinationJson,
    personal: unknown,
    recipients: string[],
  ): Promise<Plan> {
    const resealed = await this.sealedFor(ref, held, recipients, personal);
    const id =
      kind === "forwarded"
        ? derivedId(this.id, "forwarded", ref.openedId, to)
        : derivedId(this.id, "rerouted", ref.openedId, to, destination.municipality ?? "");
    return {
      // The origin hears first: sent in this order in one batch, its notice is in the stream
      // before the next hub has the referral, so the next hub's own notice does not overtake it
      // on the origin's timeline. Only a retried publish (a broker fault) can reorder them.
      send: [
        ...this.noticeToOrigin(ref, held, kind, to, destination),
        {
          type: "forwarded",
          addressee: to,
          referralId: ref.referralId,
          id,
          body: {
            original: held.opened,
            destination,
            deadline: ref.deadline,
            ...(resealed === undefined ? {} : { personal: resealed }),
          },
        },
      ],
      records: [{ k: kind, referralId: ref.referralId, to, eventId: id, at: this.at() }],
    };
  }

  /** What tells the referral's origin where its referral went: a forward of its own opened event. */
  private noticeToOrigin(
    ref: Routable,
    held: Held,
    what: string,
    to: string,
    destination: DestinationJson,
  ): IssueInput[] {
    const origin = parseOrgId(ref.origin);
    // A partner country's sender hears from its own contact point, not from our hubs.
    if (origin.role !== "municipality" || origin.country !== this.party.country) return [];
    return [
      {
        type: "forwarded",
        addressee: ref.origin,
        referralId: ref.referralId,
        id: derivedId(this.id, "notify", what, ref.openedId, to),
        body: { original: held.opened, destination },
      },
    ];
  }

  /** accepted or declined: only from the municipality that holds the referral; relayed to its origin. */
  private async fromHolder(
    v: VerifiedEvent,
    d: Delivery,
    kind: "accepted" | "declined",
  ): Promise<HubRecord[]> {
    const e = v.event;
    const ref = this.state.referrals.get(e.referralId);
    if (ref === undefined || ref.holder !== v.issuer.id || ref.status !== "forwarded") {
      throw new StafettError(
        "ERR_NOT_AUTHORISED",
        `only the municipality holding the referral may send ${kind}`,
        { reason: "not_holder", field: "/source" },
      );
    }
    await this.relay(ref, ref.origin, d, e);
    if (kind === "accepted")
      return [
        {
          k: "accepted",
          referralId: ref.referralId,
          by: v.issuer.id,
          eventId: e.id,
          at: this.at(),
        },
      ];
    const records: HubRecord[] = [
      {
        k: "declined",
        referralId: ref.referralId,
        by: v.issuer.id,
        eventId: e.id,
        reason: e.declined?.reason ?? "",
        at: this.at(),
      },
    ];
    const suggested = e.declined?.suggested;
    if (suggested !== undefined)
      records.push(
        ...(await this.carryOut(await this.route(ref, this.held(ref), suggested, undefined))),
      );
    else records.push({ k: "triage", referralId: ref.referralId, at: this.at() });
    return records;
  }

  /** updated, withdrawn or closed: only from the origin; relayed to whoever holds the referral. */
  private async fromOrigin(v: VerifiedEvent, d: Delivery): Promise<HubRecord[]> {
    const e = v.event;
    const ref = this.state.referrals.get(e.referralId);
    if (ref === undefined || ref.origin !== v.issuer.id) {
      throw new StafettError(
        "ERR_NOT_AUTHORISED",
        `only the referral's origin may send ${e.type}`,
        { reason: "not_origin", field: "/source" },
      );
    }
    if (ref.holder !== undefined && ref.holder !== ref.origin)
      await this.relay(ref, ref.holder, d, e, v.personal);
    const base = { referralId: ref.referralId, eventId: e.id, at: this.at() };
    if (e.type === "updated") return [{ k: "updated", ...base }];
    if (e.type === "withdrawn") return [{ k: "withdrawn", ...base }];
    return [{ k: "closed", ...base }];
  }

  private async relay(
    ref: HubReferral,
    to: string,
    d: Delivery,
    e: EventJson,
    personal?: unknown,
  ): Promise<void> {
    let resealed: string | undefined;
    const sealed = e.updated?.personal;
    if (sealed !== undefined && personal !== undefined) {
      const [key] = await this.party.trust.encryptionKeys([to], this.now());
      if (key !== undefined && !recipientKids(sealed).includes(key.kid))
        resealed = await seal(personal, [key], ref.referralId);
    }
    await this.party.send({
      type: "forwarded",
      addressee: to,
      referralId: ref.referralId,
      id: derivedId(this.id, "relay", e.id, to),
      body: {
        original: toBase64(d.data),
        ...(resealed === undefined ? {} : { personal: resealed }),
      },
    });
  }

  /** Sends `escalated` to the national coordinator (and tells the origin) for every overdue referral. */
  async escalateOverdue(): Promise<number> {
    if (this.ticking) return 0;
    this.ticking = true;
    let n = 0;
    try {
      for (const ref of this.state.overdue(this.now())) {
        await this.party.locks.run(ref.referralId, async () => {
          if (ref.escalated) return;
          const body = {
            deadline: ref.deadline,
            urgency: ref.urgency,
            holder: ref.holder ?? this.id,
            destination: ref.destination,
          };
          const escId = derivedId(this.id, "escalated", ref.referralId, ref.deadline);
          const origin = parseOrgId(ref.origin);
          await this.party.sendAll([
            {
              type: "escalated",
              addressee: coordinatorId(this.party.country),
              referralId: ref.referralId,
              id: escId,
              body,
            },
            ...(origin.role === "municipality" && origin.country === this.party.country
              ? [
                  {
                    type: "escalated" as const,
                    addressee: ref.origin,
                    referralId: ref.referralId,
                    id: derivedId(this.id, "escalated-notify", ref.referralId, ref.deadline),
                    body,
                  },
                ]
              : []),
          ]);
          await this.party.record([
            { k: "escalated", referralId: ref.referralId, eventId: escId, at: this.at() },
          ]);
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

  /** Forwards a referral held for triage to a municipality (an officer's decision). */
  async triageForward(referralId: string, municipality: string): Promise<HubReferral> {
    return this.party.locks.run(referralId, async () => {
      const ref = this.state.referrals.get(referralId);
      if (ref === undefined || ref.status !== "triage") {
        throw new StafettError("ERR_NOT_AUTHORISED", "no referral held for triage with this id", {
          reason: "not_in_triage",
          field: "referralId",
        });
      }
      if (!isMunicipality(municipality))
        throw new StafettError("ERR_UNKNOWN_MUNICIPALITY", "not a municipality code", {
          reason: "unknown",
          field: "municipality",
        });
      const records = await this.carryOut(
        await this.route(
          ref,
          this.held(ref),
          { country: this.party.country, municipality },
          undefined,
        ),
      );
      await this.party.record(records);
      return ref;
    });
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.party.stop();
  }
}
