/**
 * The e-mail an alert sends to the people on duty: subject and body in Swedish and English,
 * with ids, urgency, deadline, codes and a link to the item, never anything about the child
 * (docs/contract.md, principles 5 and 11).
 */
import type { Notification } from "./notifications.js";

export interface AlertMail {
  subject: string;
  text: string;
  /** `<notification id@stafett>`: a receiving system can drop a repeated message. */
  messageId: string;
}

const URGENCY: Record<string, [string, string]> = {
  URGENCY_IMMEDIATE: ["omedelbar", "immediate"],
  URGENCY_HIGH: ["hög", "high"],
  URGENCY_NORMAL: ["normal", "normal"],
};

/** The Swedish and English headline of an alert. */
function headline(n: Notification): [string, string] {
  const d = n.data;
  switch (n.type) {
    case "inbox.new":
      return d.urgency === "URGENCY_IMMEDIATE"
        ? ["Ny omedelbar hänvisning att ta emot", "New immediate referral to take over"]
        : ["Ny hänvisning att ta emot", "New referral to take over"];
    case "referral.deadline":
      return [
        "Hänvisning nära sin tidsfrist, ingen har tagit emot den",
        "Referral near its deadline, nobody has accepted it",
      ];
    case "referral.escalated":
      return [
        "Hänvisning eskalerad: tidsfristen passerade",
        "Referral escalated: its deadline passed",
      ];
    case "referral.rejected":
      return ["Ett av era meddelanden avvisades", "One of your messages was refused"];
    case "link.down":
      return [
        `Förbindelsen till partnerlandet ${(d.partner ?? "").toUpperCase()} är nere`,
        `The link to partner country ${(d.partner ?? "").toUpperCase()} is down`,
      ];
    case "link.up":
      return ["Förbindelsen är uppe igen", "The link is up again"];
    case "inbox.changed":
    case "referral.changed":
      return ["Hänvisning ändrad", "Referral changed"];
  }
}

/** The alert's e-mail; `url` is the item's URL in the service's API. */
export function alertMail(n: Notification, url: string): AlertMail {
  const [sv, en] = headline(n);
  const d = n.data;
  const urgency = d.urgency === undefined ? undefined : URGENCY[d.urgency];
  const rows: [string, string, string | undefined][] = [
    ["Organisation", "Organisation", d.org],
    ["Hänvisning", "Referral", d.referralId],
    ["Händelse", "Event", d.eventId],
    ["Brådska", "Urgency", urgency === undefined ? undefined : `${urgency[0]} / ${urgency[1]}`],
    ["Tidsfrist", "Deadline", d.deadline],
    ["Hos", "Held by", d.to],
    ["Från", "From", d.by],
    ["Kod", "Code", d.code === undefined ? undefined : `${d.code} (${d.reason ?? ""})`],
    ["Nere sedan", "Down since", d.since],
    ["Tid", "Time", n.at],
  ];
  const lines = (lang: 0 | 1) =>
    rows
      .filter((r): r is [string, string, string] => r[2] !== undefined && r[2] !== "")
      .map((r) => `${r[lang]}: ${r[2]}`);
  const text = [
    sv,
    "",
    ...lines(0),
    "",
    `Öppna: ${url}`,
    "",
    "Uppgifter om barnet skickas aldrig med e-post; logga in i ert system för att läsa dem.",
    "",
    "----",
    "",
    en,
    "",
    ...lines(1),
    "",
    `Open: ${url}`,
    "",
    "Nothing about the child is ever sent by e-mail; sign in to your system to read it.",
    "",
  ].join("\n");
  return {
    subject: `[Stafett] ${sv} / ${en}`,
    text,
    messageId: `<${n.id}@stafett>`,
  };
}
