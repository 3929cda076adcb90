/**
 * @stafett/shared: the library every service, the `stafett` command and the dev kit use. Its
 * public API is named here, values and types apart: every name another package imports, and
 * every type those names' signatures mention (so a caller can name what it is given). What is
 * not listed (helpers such as the keyed mutex, the journal's internals, the trust watcher) is an
 * implementation detail of this package and may change without notice.
 */

export { isStafettError, StafettError } from "./errors.js";
export type { ErrorCode, Issue, StafettErrorJson, StafettErrorOptions } from "./errors.js";

export { dataschemaFor, EVENT_TYPES, isEventType, REPORTED_COUNTS } from "./types.js";
export type {
  AcceptedJson,
  CloseOutcome,
  ClosedJson,
  DeclinedJson,
  DeclineReason,
  DestinationJson,
  EscalatedJson,
  EventBodies,
  EventEnvelopeJson,
  EventJson,
  EventType,
  ForwardedJson,
  OpenedJson,
  PersonalJson,
  ReasonCategory,
  ReceivedJson,
  RejectedJson,
  ReportedCount,
  ReportedJson,
  Role,
  UpdatedJson,
  Urgency,
  WithdrawnJson,
  WithdrawReason,
} from "./types.js";

export { decodeEvent, decodeSignedEvent, encodeEvent, encodeSignedEvent } from "./codec.js";
export type { SignedEventParts } from "./codec.js";

export { fromBase64, toBase64 } from "./base64url.js";

export {
  CONTENT_ENC,
  generateEncryptionKey,
  generateSigningKey,
  importEncryptionKey,
  importSigningKey,
  KEY_WRAP_ALG,
  keyObjectOf,
  SIGNING_ALG,
} from "./keys.js";
export type { KeyHandle, KeyPairJwk, PrivateJwk, PublicJwk } from "./keys.js";

export { EVENT_JWS_TYP, signDetached, verifyDetached } from "./jws.js";

export { open, recipientKids, seal } from "./jwe.js";

export { SCHEMA_IDS, validate } from "./validate.js";

export {
  checkKeyUsable,
  checkRelayedKeyUsable,
  signTrustList,
  TrustStore,
  verifyPartnerList,
  verifyTrustList,
} from "./trust.js";
export type { Organisation, PartnerAnchors, PolicyRule, TrustKey, TrustList } from "./trust.js";

export {
  consumersOf,
  coordinatorId,
  hubId,
  hubOfMunicipality,
  liaisonId,
  municipalityId,
  parseOrgId,
  parseSubject,
  quarantineStreamName,
  quarantineSubject,
  roleOf,
  streamName,
  subjectFor,
} from "./subjects.js";
export type { Address, ConsumerSpec, SubjectParts } from "./subjects.js";

export { isMunicipality, regions } from "./geo.js";
export type { Overview, OverviewCounts, RegionOverview } from "./overview.js";

export { API_DOCUMENTS } from "./gen/api-documents.js";

export { countersign, digestOf, eventHeaders, issue, jsonDigest, receive } from "./pipeline.js";
export type {
  Identity,
  IssueContext,
  IssuedEvent,
  IssueInput,
  Reader,
  ReceiveContext,
  ReceiveResult,
  Signer,
  VerifiedEvent,
} from "./pipeline.js";

export { createLogger } from "./logger.js";
export type { Logger, LoggerConfig } from "./logger.js";

export { ConfigReader, parseDuration } from "./config.js";
export type { Env } from "./config.js";

export {
  buildTrustList,
  countryOrganisationIds,
  describeOrganisation,
  generateOrganisationKeys,
  identityFromJwks,
} from "./organisations.js";
export type { OrganisationDescription, OrganisationKeys, TrustListInput } from "./organisations.js";

export { Bus } from "./bus.js";
export type {
  BusConfig,
  ConsumeOptions,
  Consumption,
  Delivery,
  Outcome,
  OutgoingMessage,
} from "./bus.js";

export {
  consumerConfig,
  PROVISION_DEFAULTS,
  provisionCountry,
  publishTrustList,
  quarantineStreamConfig,
  streamConfig,
  TRUST_BUCKET,
  trustBucketConfig,
} from "./provision.js";
export type { ProvisionOptions, ProvisionReport } from "./provision.js";

export type { TrustHolder, TrustWatch } from "./trust-watch.js";

export { derivedId, keyedIds } from "./ids.js";
export type { DeriveId } from "./ids.js";

export { Journal } from "./journal.js";
export { systemNow } from "./faults.js";
export type { CheckReport, CompactReport, JournalRef, KeptLine } from "./journal.js";

export { compactLines, DEFAULT_RETENTION, MIN_METADATA_MS } from "./retention.js";
export type { ErasureCause, Holdings, Retention } from "./retention.js";

export {
  loadIdentity,
  readAnchorKeys,
  readJsonFile,
  readPrivateJwk,
  readPublicJwk,
  readSecretFile,
} from "./key-files.js";

export { DEFAULT_CONCURRENCY, natsAuth, Party } from "./party.js";
export type {
  ClockCheckOptions,
  ConsumerOptions,
  Decide,
  Erasure,
  JournalLine,
  PartyOptions,
  PartyReadiness,
  Problem,
  Seen,
} from "./party.js";

export {
  AuthError,
  createAuthenticator,
  createDevTokenIssuer,
  createTokenVerifier,
  principalOf,
} from "./http-auth.js";
export type {
  AuthConfig,
  Authenticator,
  DevTokenIssuer,
  Principal,
  TokenVerifier,
  VerifiedToken,
} from "./http-auth.js";

export {
  DEFAULT_EXPIRY_WARNING_MS,
  loadServiceConfig,
  readServiceEnv,
  resolveServiceRuntime,
} from "./service-config.js";
export type { ServiceEnvConfig, ServiceRuntime } from "./service-config.js";

export {
  clusterNodeConfig,
  countryServerConfig,
  federationHubConfig,
  HUB_JOIN_STEPS,
  HUB_LINKS_PER_MEMBER,
  NO_CREDENTIALS_ACCOUNT,
  HUB_ROUTER_ACCOUNT,
  hubAccountOf,
} from "./infra.js";
export type {
  ClusterNodeOptions,
  CountryServerOptions,
  FederationHubOptions,
  HubMember,
  ServerTls,
} from "./infra.js";

export {
  accountOf,
  BROKER_LIMITS,
  countryAccounts,
  createBrokerUsers,
  linkAccountOf,
  LINKS_PER_PARTNER,
  VIA_HUB,
  ORG_API_PREFIX,
  organisationImports,
  PROVISIONER,
  publishSubjects,
  STAFETT_ACCOUNT,
} from "./accounts.js";
export type {
  BrokerLimits,
  BrokerUsers,
  CountryAccountsOptions,
  LinkCredentials,
} from "./accounts.js";

export { inboxPrefixOf, provisionerPermissions } from "./permissions.js";
export type { Permissions } from "./permissions.js";

export type { BusHealth, BusProblem } from "./bus-health.js";

export { eraseQuarantine, listQuarantine, replayQuarantine, showQuarantine } from "./quarantine.js";
export type { QuarantineDetail, QuarantineEntry } from "./quarantine.js";

export { errorReply } from "./http-errors.js";
export type { ErrorReply } from "./http-errors.js";

export { isRefusal, join, plan, refusal } from "./decision.js";
export type { Outgoing, Plan, Refusal, Reseal, Verdict } from "./decision.js";

export { routeOf } from "./routing.js";
export type { Route } from "./routing.js";

export { runService, startupFailure } from "./run-service.js";
export type { Stoppable } from "./run-service.js";

export { AUDIT_FILE, AUDIT_JWS_TYP, AuditLog, CHECKPOINT_EVERY, verifyAudit } from "./audit.js";
export type {
  AuditAction,
  AuditCheckpoint,
  AuditEntry,
  AuditFilter,
  AuditRecord,
  AuditVerdict,
} from "./audit.js";

export {
  BODY_LIMIT,
  EVENT_STREAM_PING_MS,
  httpService,
  PURPOSE_HEADER,
  requestBody,
} from "./http-service.js";

export { failing, logReadiness, passing, Readiness } from "./readiness.js";
export type { Check, CheckState, ReadinessOptions, ReadinessReport } from "./readiness.js";

export { ServiceMetrics, serveMetrics, tallyReferrals, URGENCIES } from "./metrics.js";
export type { ReferralTally, ReferralView } from "./metrics.js";

export { keyStates, listExpiry, Operations } from "./operations.js";
export type { OperationsOptions, WatchedParty } from "./operations.js";

export type { PartyObserver } from "./observer.js";

export {
  currentSigningKey,
  decryptionKeyFor,
  decryptionKeysOf,
  Keyring,
  openPersonal,
} from "./keyring.js";
export type { HttpServiceOptions, RouteAccess } from "./http-service.js";

export { DeadlineWatch } from "./deadlines.js";

export { serveApi } from "./serve.js";
export type { ServedApi } from "./serve.js";

export {
  deadlineWatch,
  isAlert,
  isNotificationType,
  NOTIFICATION_TYPES,
  notificationId,
  payloadOf,
} from "./notifications.js";
export type {
  DeadlineNotice,
  Derived,
  Notification,
  NotificationData,
  NotificationPayload,
  NotificationType,
} from "./notifications.js";

export { DEFAULT_NOTIFY_CONFIG, DEFAULT_RETRY_MS, Notifier } from "./notifier.js";
export type {
  DeliveryOutcome,
  MailSettings,
  NotifierOptions,
  NotifyConfig,
  StreamListener,
  WebhookEndpoint,
} from "./notifier.js";

export { MAIL, NOTIFICATIONS_FILE, NotificationStore } from "./notify-store.js";
export type { OutboxLine, PendingDelivery } from "./notify-store.js";

export { readNotifyEnv, resolveNotifyConfig } from "./notify-config.js";
export type { NotifyEnvConfig } from "./notify-config.js";

export { alertMail } from "./alert-mail.js";
export type { AlertMail } from "./alert-mail.js";

export { registerDesk } from "./desk/plugin.js";
export type { DeskOidcOptions, DeskOptions } from "./desk/plugin.js";
