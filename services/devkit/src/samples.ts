/**
 * Synthetic referral content for the demo, the benchmarks and the tests. Every name here is
 * invented; no real child is described.
 */
import { randomUUID } from "node:crypto";
import type { IssueInput, PersonalJson } from "@stafett/shared";

const GIVEN = ["Alva", "Noor", "Elias", "Mira", "Tilde", "Amir", "Juni", "Sami", "Leia", "Omar"];
const FAMILY = ["Testsson", "Exempelberg", "Provlund", "Fiktivsdotter", "Påhittad"];

/** A valid personal part; `n` varies the invented names. */
export function samplePersonal(n = 0): PersonalJson {
  return {
    child: {
      givenNames: GIVEN[n % GIVEN.length] ?? "Alva",
      familyName: FAMILY[n % FAMILY.length] ?? "Testsson",
      aliases: ["Ally"],
      estimatedAgeYears: 14 + (n % 3),
      sex: n % 2 === 0 ? "female" : "male",
      nationalities: ["SE"],
      languages: ["sv", "ar"],
      description: "Synthetic test person. Dark jacket, red backpack.",
    },
    lastKnown: { location: "Centralstationen (synthetic)", time: "2026-11-27T18:30:00Z" },
    asylumStatus: "none",
    guardianship: "unknown",
    riskIndicators: ["missing_repeatedly"],
    childViewsHeard: { heard: false, note: "Could not be reached before the handoff." },
    legalBasis: "SoL 2001:453 ch. 12 s. 10",
    contact: { unit: "Socialtjänsten, mottagningsenheten (test)", email: "mottagning@example.org" },
  };
}

/**
 * A valid `opened` referral to Göteborg (1480) through the Väst hub, sealed to both: the input
 * of `issue()` that the tests and benchmarks share. `overrides` replace whole fields.
 */
export function sampleOpened(overrides: Partial<IssueInput> = {}, n = 1): IssueInput {
  return {
    type: "opened",
    addressee: "se:hub:vast",
    referralId: randomUUID(),
    body: {
      urgency: "URGENCY_HIGH",
      reason: "REASON_CATEGORY_MISSING",
      destination: { country: "se", region: "vast", municipality: "1480" },
      deadline: new Date(Date.now() + 12 * 3_600_000).toISOString(),
    },
    personal: samplePersonal(n),
    sealTo: ["se:hub:vast", "se:municipality:1480"],
    ...overrides,
  };
}
