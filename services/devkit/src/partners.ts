/**
 * Two partner countries on one machine, Sweden and Norway, as the federation tests, the Desk's
 * partner test and the demo need them: each country's keys and trust list (each naming the
 * other's anchor), their brokers joined by a federation link (Sweden connects out to Norway, as
 * `npm start` has it; each broker with the accounts of its own trust list), and each country's
 * services running in-process on its own broker with its own nkeys.
 */
import { generateSigningKey, type Logger } from "@stafett/shared";
import { createCountry, type Country } from "./country.js";
import { startFederation, type Federation, type FederationOptions } from "./federation.js";
import { LocalCountry, type LocalCountryOptions } from "./local-country.js";

/** What each country's services get besides their broker, keys and partner's list. */
export type CountryExtras = Partial<
  Omit<LocalCountryOptions, "country" | "natsUrl" | "nkeys" | "partnerTrust" | "log">
>;

export interface SwedenNorwayOptions {
  log: Logger;
  /** Sweden's municipalities in its trust list (Norway has none: the reference data is Swedish). */
  municipalities: readonly string[];
  /** Per country ("se", "no"): notification settings, the Desk, tokens, timers, … */
  extras?: (cc: "se" | "no") => CountryExtras;
  /** How the brokers run: in network namespaces of a test's own, with a short ping, … */
  federation?: FederationOptions;
}

export interface SwedenNorway {
  fed: Federation;
  se: LocalCountry;
  no: LocalCountry;
  seCountry: Country;
  noCountry: Country;
  /** Stops both countries' services, then their brokers. */
  stop(): Promise<void>;
}

export async function startSwedenNorway(o: SwedenNorwayOptions): Promise<SwedenNorway> {
  const [seAnchor, noAnchor] = await Promise.all([generateSigningKey(), generateSigningKey()]);
  const seCountry = await createCountry({
    code: "se",
    municipalities: [...o.municipalities],
    anchor: seAnchor,
    partnerAnchors: [{ country: "no", anchors: [noAnchor.publicJwk] }],
  });
  const noCountry = await createCountry({
    code: "no",
    municipalities: [],
    anchor: noAnchor,
    partnerAnchors: [{ country: "se", anchors: [seAnchor.publicJwk] }],
  });
  const fed = await startFederation(
    "no",
    ["se"],
    { se: seCountry.trustList, no: noCountry.trustList },
    o.federation,
  );
  try {
    const [se, no] = await Promise.all([
      LocalCountry.start({
        municipalities: [],
        ...o.extras?.("se"),
        country: seCountry,
        natsUrl: fed.server("se").url,
        nkeys: fed.seeds("se"),
        partnerTrust: { no: noCountry.trustListJws },
        log: o.log,
      }),
      LocalCountry.start({
        municipalities: [],
        ...o.extras?.("no"),
        country: noCountry,
        natsUrl: fed.server("no").url,
        nkeys: fed.seeds("no"),
        partnerTrust: { se: seCountry.trustListJws },
        log: o.log,
      }),
    ]);
    return {
      fed,
      se,
      no,
      seCountry,
      noCountry,
      async stop() {
        await Promise.all([se.stop(), no.stop()]);
        await fed.stop();
      },
    };
  } catch (err) {
    await fed.stop();
    throw err;
  }
}
