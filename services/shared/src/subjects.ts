/**
 * Organisation ids, NATS subjects and consumer names (docs/contract.md, "Subjects, streams,
 * consumers"; every channel is described in schemas/asyncapi.yaml).
 *
 *   stafett.<cc>.<region>.hub.<event>            to a regional hub
 *   stafett.<cc>.<region>.<code>.<event>         to a municipality
 *   stafett.<cc>.out.<dest-cc>.<event>           to the own liaison, bound for dest-cc
 *   stafett.<cc>.in.<from-cc>.<event>            from a partner's liaison, to the own liaison
 *   stafett.<cc>.national.coordinator.<event>    to the national coordinator
 */
import { StafettError } from "./errors.js";
import { regionOfMunicipality } from "./geo.js";
import { isEventType, type EventType, type Role } from "./types.js";

export type Address =
  | { role: "municipality"; country: string; code: string }
  | { role: "hub"; country: string; region: string }
  | { role: "liaison"; country: string }
  | { role: "coordinator"; country: string };

const ORG_ID = /^([a-z]{2}):(?:(municipality):([0-9]{4})|(hub):([a-z]+)|(liaison)|(coordinator))$/;
const RESERVED_REGION_TOKENS = new Set(["out", "in", "national"]);

function invalid(reason: string, field: string): StafettError {
  return new StafettError("ERR_ADDRESS_INVALID", `not a valid ${field}`, { reason, field });
}

/** Parsed organisation ids, frozen: each message names a few, and they come from a small set. */
const parsedOrgIds = new Map<string, Readonly<Address>>();

export function parseOrgId(id: string): Address {
  const known = parsedOrgIds.get(id);
  if (known !== undefined) return known;
  if (parsedOrgIds.size >= 4_096) parsedOrgIds.clear();
  const address = Object.freeze(parseOrgIdOnce(id));
  parsedOrgIds.set(id, address);
  return address;
}

function parseOrgIdOnce(id: string): Address {
  const m = ORG_ID.exec(id);
  if (m === null) throw invalid("format", "organisation id");
  const country = m[1] ?? "";
  if (m[2] !== undefined) return { role: "municipality", country, code: m[3] ?? "" };
  if (m[4] !== undefined) {
    const region = m[5] ?? "";
    if (RESERVED_REGION_TOKENS.has(region)) throw invalid("reserved_region", "organisation id");
    return { role: "hub", country, region };
  }
  if (m[6] !== undefined) return { role: "liaison", country };
  return { role: "coordinator", country };
}

export function orgId(address: Address): string {
  switch (address.role) {
    case "municipality":
      return `${address.country}:municipality:${address.code}`;
    case "hub":
      return `${address.country}:hub:${address.region}`;
    case "liaison":
      return `${address.country}:liaison`;
    case "coordinator":
      return `${address.country}:coordinator`;
  }
}

export function roleOf(id: string): Role {
  return parseOrgId(id).role;
}

export const hubId = (country: string, region: string): string => `${country}:hub:${region}`;
export const municipalityId = (country: string, code: string): string =>
  `${country}:municipality:${code}`;
export const liaisonId = (country: string): string => `${country}:liaison`;
export const coordinatorId = (country: string): string => `${country}:coordinator`;

/** The region of a municipality address; Sweden's come from the reference data. */
function regionOf(address: { country: string; code: string }): string {
  if (address.country !== "se") throw invalid("unknown_country_geography", "municipality");
  return regionOfMunicipality(address.code);
}

/** The hub that serves a municipality. */
export function hubOfMunicipality(id: string): string {
  const a = parseOrgId(id);
  if (a.role !== "municipality") throw invalid("not_municipality", "organisation id");
  return hubId(a.country, regionOf(a));
}

export interface SubjectInput {
  type: EventType;
  source: string;
  addressee: string;
  /**
   * For events to the own liaison: the partner country it is bound for or concerns
   * (the `<dest-cc>` token).
   */
  partnerCountry?: string;
}

/** The one subject an event is published on, derived from its addressee (and issuer). */
export function subjectFor(input: SubjectInput): string {
  const to = parseOrgId(input.addressee);
  const from = parseOrgId(input.source);
  if (to.country !== from.country) {
    // Across a border, events travel only liaison to liaison: a domestic party's event goes to
    // its own liaison, bound for there; a liaison publishes into the other country's inbound
    // subjects (the only ones the federation link lets through), whoever the addressee is there.
    if (from.role !== "liaison") return `stafett.${from.country}.out.${to.country}.${input.type}`;
    return `stafett.${to.country}.in.${from.country}.${input.type}`;
  }
  const cc = to.country;
  switch (to.role) {
    case "municipality":
      return `stafett.${cc}.${regionOf(to)}.${to.code}.${input.type}`;
    case "hub":
      return `stafett.${cc}.${to.region}.hub.${input.type}`;
    case "coordinator":
      return `stafett.${cc}.national.coordinator.${input.type}`;
    case "liaison": {
      // A partner's liaison publishes into our inbound subjects over the federation link.
      if (from.role === "liaison" && from.country !== cc)
        return `stafett.${cc}.in.${from.country}.${input.type}`;
      const dest = input.partnerCountry;
      if (dest === undefined || !/^[a-z]{2}$/.test(dest) || dest === cc) {
        throw invalid("partner_country", "partner country");
      }
      return `stafett.${cc}.out.${dest}.${input.type}`;
    }
  }
}

export interface SubjectParts {
  country: string;
  type: EventType;
  /** The organisation whose consumer receives this subject. */
  addressee: string;
  /** For liaison subjects: the partner country token. */
  partnerCountry?: string;
  direction?: "out" | "in";
}

/** The inverse of subjectFor: who a subject is for. Throws ERR_ADDRESS_INVALID otherwise. */
export function parseSubject(subject: string): SubjectParts {
  const t = subject.split(".");
  if (t.length !== 5 || t[0] !== "stafett") throw invalid("format", "subject");
  const [, cc = "", a = "", b = "", type = ""] = t;
  if (!/^[a-z]{2}$/.test(cc) || !isEventType(type)) throw invalid("format", "subject");
  if (a === "out" || a === "in") {
    if (!/^[a-z]{2}$/.test(b)) throw invalid("format", "subject");
    return { country: cc, type, addressee: liaisonId(cc), partnerCountry: b, direction: a };
  }
  if (a === "national" && b === "coordinator")
    return { country: cc, type, addressee: coordinatorId(cc) };
  if (!/^[a-z]+$/.test(a) || RESERVED_REGION_TOKENS.has(a)) throw invalid("format", "subject");
  if (b === "hub") return { country: cc, type, addressee: hubId(cc, a) };
  if (/^[0-9]{4}$/.test(b)) return { country: cc, type, addressee: municipalityId(cc, b) };
  throw invalid("format", "subject");
}

/** Everything a country's stream captures. */
export const countrySubjects = (cc: string): string => `stafett.${cc}.>`;
export const streamName = (cc: string): string => `STAFETT_${cc.toUpperCase()}`;
export const quarantineStreamName = (cc: string): string =>
  `STAFETT_QUARANTINE_${cc.toUpperCase()}`;
/**
 * Where a consumer's owner quarantines what it refused: under its own durable's name, the only
 * quarantine subject its account may publish to, so an entry cannot claim another consumer.
 */
export const quarantineSubject = (cc: string, durable: string, code: string): string =>
  `stafett-quarantine.${cc}.${durable}.${code}`;

/** The durable a quarantine subject names (the consumer whose owner wrote the entry). */
export function quarantineConsumerOf(subject: string): string | undefined {
  const t = subject.split(".");
  return t.length === 4 && t[0] === "stafett-quarantine" ? t[2] : undefined;
}

export interface ConsumerSpec {
  durable: string;
  filter: string;
}

/** The durable pull consumers of one organisation: one filter each (nats-server 2.9). */
export function consumersOf(id: string): ConsumerSpec[] {
  const a = parseOrgId(id);
  const cc = a.country;
  switch (a.role) {
    case "municipality":
      return [
        {
          durable: `${cc}-municipality-${a.code}`,
          filter: `stafett.${cc}.${regionOf(a)}.${a.code}.>`,
        },
      ];
    case "hub":
      return [{ durable: `${cc}-hub-${a.region}`, filter: `stafett.${cc}.${a.region}.hub.>` }];
    case "coordinator":
      return [{ durable: `${cc}-coordinator`, filter: `stafett.${cc}.national.coordinator.>` }];
    case "liaison":
      return [
        { durable: `${cc}-liaison-out`, filter: `stafett.${cc}.out.>` },
        { durable: `${cc}-liaison-in`, filter: `stafett.${cc}.in.>` },
      ];
  }
}

/** The consumer with this durable name, when it is one that `consumersOf` would give. */
export function consumerByDurable(durable: string): (ConsumerSpec & { org: string }) | undefined {
  const m =
    /^([a-z]{2})-(?:municipality-([0-9]{4})|hub-([a-z]+)|(coordinator)|liaison-(?:in|out))$/.exec(
      durable,
    );
  if (m === null) return undefined;
  const cc = m[1] ?? "";
  const org =
    m[2] !== undefined
      ? municipalityId(cc, m[2])
      : m[3] !== undefined
        ? hubId(cc, m[3])
        : m[4] !== undefined
          ? coordinatorId(cc)
          : liaisonId(cc);
  try {
    const spec = consumersOf(org).find((c) => c.durable === durable);
    return spec === undefined ? undefined : { ...spec, org };
  } catch {
    return undefined; // an address that does not exist (a municipality code, a reserved region)
  }
}
