/**
 * TypeScript shapes of the canonical JSON form (proto3 JSON mapping) of proto/stafett/v1.
 * The JSON Schemas in schemas/ are the contract; these types only help the compiler.
 */
export const EVENT_TYPES = [
  "opened",
  "received",
  "rejected",
  "forwarded",
  "accepted",
  "declined",
  "updated",
  "withdrawn",
  "escalated",
  "closed",
  "reported",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

export type Urgency = "URGENCY_IMMEDIATE" | "URGENCY_HIGH" | "URGENCY_NORMAL";
export type ReasonCategory =
  | "REASON_CATEGORY_MISSING"
  | "REASON_CATEGORY_TRAFFICKING_SUSPECTED"
  | "REASON_CATEGORY_EXPLOITATION_SUSPECTED"
  | "REASON_CATEGORY_UNACCOMPANIED_MINOR"
  | "REASON_CATEGORY_MOVED"
  | "REASON_CATEGORY_OTHER";
export type DeclineReason =
  | "DECLINE_REASON_NOT_RESIDENT"
  | "DECLINE_REASON_WRONG_MUNICIPALITY"
  | "DECLINE_REASON_INSUFFICIENT_INFORMATION"
  | "DECLINE_REASON_ALREADY_KNOWN"
  | "DECLINE_REASON_OTHER";
export type WithdrawReason =
  "WITHDRAW_REASON_CHILD_FOUND" | "WITHDRAW_REASON_SENT_IN_ERROR" | "WITHDRAW_REASON_OTHER";
export type CloseOutcome =
  "CLOSE_OUTCOME_ACCEPTED" | "CLOSE_OUTCOME_WITHDRAWN" | "CLOSE_OUTCOME_OTHER";

export interface DestinationJson {
  country: string;
  region?: string;
  municipality?: string;
}

export interface OpenedJson {
  urgency: Urgency;
  reason: ReasonCategory;
  destination: DestinationJson;
  deadline: string;
  personal: string;
}
export interface ReceivedJson {
  ofEventId: string;
  digest: string;
}
export interface RejectedJson {
  ofEventId?: string;
  code: string;
  reason: string;
  field?: string;
  digest?: string;
}
export interface ForwardedJson {
  /** Standard base64 of the relayed SignedEvent bytes. */
  original: string;
  personal?: string;
  destination?: DestinationJson;
  deadline?: string;
}
export interface AcceptedJson {
  ofEventId: string;
}
export interface DeclinedJson {
  ofEventId: string;
  reason: DeclineReason;
  suggested?: DestinationJson;
}
export interface UpdatedJson {
  urgency?: Urgency;
  personal?: string;
  deadline?: string;
}
export interface WithdrawnJson {
  reason: WithdrawReason;
}
export interface EscalatedJson {
  deadline: string;
  urgency?: Urgency;
  holder: string;
  destination?: DestinationJson;
}
export interface ClosedJson {
  outcome: CloseOutcome;
  holder?: string;
}

/**
 * The counts of a regional hub's report (`reported`): its open referrals by where they stand,
 * by urgency, overdue and escalated. In this order in the proto, the report and the overview.
 */
export const REPORTED_COUNTS = [
  "triage",
  "forwarded",
  "rerouted",
  "immediate",
  "high",
  "normal",
  "overdue",
  "escalated",
] as const;
export type ReportedCount = (typeof REPORTED_COUNTS)[number];

/** A regional hub's aggregate of its region's open referrals (an absent count is zero). */
export type ReportedJson = { region: string; nearestDeadline?: string } & {
  [K in ReportedCount]?: number;
};

export interface EventBodies {
  opened: OpenedJson;
  received: ReceivedJson;
  rejected: RejectedJson;
  forwarded: ForwardedJson;
  accepted: AcceptedJson;
  declined: DeclinedJson;
  updated: UpdatedJson;
  withdrawn: WithdrawnJson;
  escalated: EscalatedJson;
  closed: ClosedJson;
  reported: ReportedJson;
}

export interface EventEnvelopeJson {
  id: string;
  type: EventType;
  source: string;
  addressee: string;
  time: string;
  dataschema: string;
  /**
   * The referral the event belongs to. Absent in `reported` alone, which belongs to no referral
   * and is read by the coordinator's `decide` alone; typed as always there so that the rules of
   * every other type need not check it (the schemas require it for all of them).
   */
  referralId: string;
}

export type EventJson = EventEnvelopeJson & { [K in EventType]?: EventBodies[K] };

/** The plaintext of the sealed personal part (schemas/personal.schema.json). */
export type PersonalJson = Record<string, unknown>;

export type Role = "municipality" | "hub" | "liaison" | "coordinator";
export const ROLES: readonly Role[] = ["municipality", "hub", "liaison", "coordinator"];

/** Base URI of the JSON Schemas; `dataschema` = base + "events/<type>.schema.json". */
export const SCHEMA_BASE = "https://stafett.eu/schemas/v1/";

export function dataschemaFor(type: EventType): string {
  return `${SCHEMA_BASE}events/${type}.schema.json`;
}
