/**
 * Synthetic referral content for the demo, the benchmarks and the tests. Every name here is
 * invented; no real child is described.
 */
import type { PersonalJson } from "./types.js";

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
