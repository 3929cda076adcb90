/**
 * Swedish municipalities and the seven regions (police regions, which the regionkoordinatorer
 * against trafficking follow). Reference data: data/*.csv, sources in data/SOURCES.md, packaged
 * into the code by `npm run gen` (gen/reference-data.ts), so a build needs no file beside it.
 * Parsed once, on first use.
 */
import { StafettError } from "./errors.js";
import { REFERENCE_DATA } from "./gen/reference-data.js";

export interface Municipality {
  code: string;
  name: string;
  countyCode: string;
  countyName: string;
  region: string;
}

export interface Region {
  slug: string;
  name: string;
  countyCodes: readonly string[];
}

export interface CountryInfo {
  code: string;
  name: string;
  eu: boolean;
  eea: boolean;
  schengen: boolean;
}

interface Geo {
  municipalities: ReadonlyMap<string, Municipality>;
  regions: ReadonlyMap<string, Region>;
  countries: ReadonlyMap<string, CountryInfo>;
}

let geo: Geo | undefined;

function rows(file: keyof typeof REFERENCE_DATA): string[][] {
  const lines = REFERENCE_DATA[file].split("\n").filter((l) => l.length > 0);
  // These files have no quoted fields (see data/SOURCES.md); a plain split is exact.
  return lines.slice(1).map((l) => l.split(","));
}

function load(): Geo {
  if (geo !== undefined) return geo;
  const municipalities = new Map<string, Municipality>();
  for (const [code = "", name = "", countyCode = "", countyName = "", region = ""] of rows(
    "se-municipalities.csv",
  )) {
    municipalities.set(code, { code, name, countyCode, countyName, region });
  }
  const regions = new Map<string, Region>();
  for (const [slug = "", name = "", counties = ""] of rows("se-regions.csv")) {
    regions.set(slug, { slug, name, countyCodes: counties.split(" ") });
  }
  const countries = new Map<string, CountryInfo>();
  for (const [code = "", name = "", eu, eea, schengen] of rows("eu-countries.csv")) {
    countries.set(code.toLowerCase(), {
      code: code.toLowerCase(),
      name,
      eu: eu === "true",
      eea: eea === "true",
      schengen: schengen === "true",
    });
  }
  geo = { municipalities, regions, countries };
  return geo;
}

export function municipality(code: string): Municipality {
  const m = load().municipalities.get(code);
  if (m === undefined) {
    throw new StafettError("ERR_UNKNOWN_MUNICIPALITY", "not a Swedish municipality code", {
      reason: "unknown",
      field: "municipality",
    });
  }
  return m;
}

export function isMunicipality(code: string): boolean {
  return load().municipalities.has(code);
}

/** The region of a municipality; the county (first two digits of the code) decides it. */
export function regionOfMunicipality(code: string): string {
  return municipality(code).region;
}

export function region(slug: string): Region {
  const r = load().regions.get(slug);
  if (r === undefined) {
    throw new StafettError("ERR_ADDRESS_INVALID", "not a region", {
      reason: "unknown_region",
      field: "region",
    });
  }
  return r;
}

export function regions(): Region[] {
  return [...load().regions.values()];
}

export function municipalities(): Municipality[] {
  return [...load().municipalities.values()];
}

/** EU/EEA partner countries (ISO 3166-1 alpha-2, lower case here as on subjects). */
export function country(code: string): CountryInfo | undefined {
  return load().countries.get(code.toLowerCase());
}
