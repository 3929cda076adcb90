/**
 * Partner countries on one machine, as the federation tests, the Desk's partner test and the
 * demo need them: each country's keys and trust list (each naming its partners' anchors), their
 * brokers joined by federation links (directly to the first country, or each once to a routing
 * hub), and each country's services running in-process on its own broker with its own nkeys.
 * `startSwedenNorway` is the case of two: Sweden connects out to Norway, as `npm start` has it.
 */
import { generateSigningKey, type KeyPairJwk, type Logger } from "@stafett/shared";
import { createCountry, type Country } from "./country.js";
import { startFederation, type Federation, type FederationOptions } from "./federation.js";
import { LocalCountry, type LocalCountryOptions } from "./local-country.js";

/** What each country's services get besides their broker, keys and partners' lists. */
export type CountryExtras = Partial<
  Omit<LocalCountryOptions, "country" | "natsUrl" | "nkeys" | "partnerTrust" | "log">
>;

export interface CountriesOptions {
  log: Logger;
  /** The countries; without `viaHub` the first accepts the others' links. */
  countries: readonly string[];
  /** Pairs of partners: each names the other's anchor in its trust list. */
  partnerships: readonly (readonly [string, string])[];
  /** Join every country once to a routing hub (`startFederation`'s `hub`). */
  viaHub?: boolean;
  /** Sweden's municipalities in its trust list (the reference data is Swedish; others have none). */
  municipalities: readonly string[];
  /** Per country: notification settings, the Desk, tokens, timers, … */
  extras?: (cc: string) => CountryExtras;
  /** How the brokers run: in network namespaces of a test's own, with a short ping, … */
  federation?: Omit<FederationOptions, "hub">;
}

export interface Countries {
  fed: Federation;
  /** Each country's running services, by country code. */
  local: ReadonlyMap<string, LocalCountry>;
  /** Each country's keys and trust list, by country code. */
  countries: ReadonlyMap<string, Country>;
  /** Each country's anchor key pair (to name it as a partner in a later trust list). */
  anchors: ReadonlyMap<string, KeyPairJwk>;
  /** The running services of one country. */
  of(cc: string): LocalCountry;
  /** Stops every country's services, then the brokers. */
  stop(): Promise<void>;
}

const partnersOf = (cc: string, pairs: CountriesOptions["partnerships"]): string[] =>
  pairs.flatMap(([a, b]) => (a === cc ? [b] : b === cc ? [a] : []));

export async function startCountries(o: CountriesOptions): Promise<Countries> {
  const anchors = new Map<string, KeyPairJwk>();
  for (const cc of o.countries) anchors.set(cc, await generateSigningKey());
  const countries = new Map<string, Country>();
  await Promise.all(
    o.countries.map(async (cc) => {
      countries.set(
        cc,
        await createCountry({
          code: cc,
          municipalities: cc === "se" ? [...o.municipalities] : [],
          anchor: anchors.get(cc),
          partnerAnchors: partnersOf(cc, o.partnerships).map((p) => ({
            country: p,
            anchors: [anchors.get(p)?.publicJwk ?? fail(p)],
          })),
        }),
      );
    }),
  );
  const country = (cc: string): Country => countries.get(cc) ?? fail(cc);
  const [first, ...others] = o.countries;
  if (first === undefined) throw new Error("no countries");
  const fed = await startFederation(
    first,
    others,
    Object.fromEntries(o.countries.map((cc) => [cc, country(cc).trustList])),
    { ...o.federation, ...(o.viaHub === true ? { hub: { partnerships: o.partnerships } } : {}) },
  );
  const local = new Map<string, LocalCountry>();
  try {
    await Promise.all(
      o.countries.map(async (cc) => {
        local.set(
          cc,
          await LocalCountry.start({
            municipalities: [],
            ...o.extras?.(cc),
            country: country(cc),
            natsUrl: fed.server(cc).url,
            nkeys: fed.seeds(cc),
            partnerTrust: Object.fromEntries(
              partnersOf(cc, o.partnerships).map((p) => [p, country(p).trustListJws]),
            ),
            log: o.log,
          }),
        );
      }),
    );
  } catch (err) {
    await Promise.all([...local.values()].map((l) => l.stop()));
    await fed.stop();
    throw err;
  }
  return {
    fed,
    local,
    countries,
    anchors,
    of: (cc) => local.get(cc) ?? fail(cc),
    async stop() {
      await Promise.all([...local.values()].map((l) => l.stop()));
      await fed.stop();
    },
  };
}

function fail(cc: string): never {
  throw new Error(`no country ${cc}`);
}

export interface SwedenNorwayOptions {
  log: Logger;
  /** Sweden's municipalities in its trust list (Norway has none: the reference data is Swedish). */
  municipalities: readonly string[];
  /** Per country ("se", "no"): notification settings, the Desk, tokens, timers, … */
  extras?: (cc: "se" | "no") => CountryExtras;
  /** How the brokers run: in network namespaces of a test's own, with a short ping, … */
  federation?: Omit<FederationOptions, "hub">;
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
  const started = await startCountries({
    log: o.log,
    countries: ["no", "se"],
    partnerships: [["se", "no"]],
    municipalities: o.municipalities,
    ...(o.federation === undefined ? {} : { federation: o.federation }),
    ...(o.extras === undefined
      ? {}
      : { extras: (cc: string) => o.extras?.(cc === "se" ? "se" : "no") ?? {} }),
  });
  return {
    fed: started.fed,
    se: started.of("se"),
    no: started.of("no"),
    seCountry: started.countries.get("se") ?? fail("se"),
    noCountry: started.countries.get("no") ?? fail("no"),
    stop: () => started.stop(),
  };
}
