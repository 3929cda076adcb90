/**
 * Where a referral goes, and to whom its personal part is sealed: the one answer every service
 * uses (the gateway opening a referral, a hub forwarding or re-routing it, the liaison routing a
 * partner's referral inward, a gateway reading its hub's notice).
 *
 * - Another country: to that country's liaison, through the own liaison, which reviews what
 *   leaves the country; sealed to both.
 * - A known municipality: to the hub of its region, sealed to that hub and the municipality.
 * - A region only: to that region's hub, sealed to it alone (it triages).
 * - Nothing that names a place: nobody is named; the caller decides (its own hub triages).
 */
import { isMunicipality } from "./geo.js";
import { hubId, hubOfMunicipality, liaisonId, municipalityId } from "./subjects.js";
import type { DestinationJson } from "./types.js";

export type Route =
  | {
      kind: "abroad";
      /** The partner country. */
      country: string;
      /** The partner's liaison: the addressee. */
      addressee: string;
      sealTo: readonly string[];
    }
  | { kind: "municipality"; municipality: string; hub: string; sealTo: readonly string[] }
  | { kind: "region"; hub: string; sealTo: readonly string[] }
  | {
      kind: "unknown";
      /** What could not be placed: a municipality code, a region no hub serves, or nothing named. */
      reason: "unknown_municipality" | "unknown_region" | "unnamed";
    };

/**
 * The route of a destination, seen from `country`. `serves(hub)` says whether a hub is known
 * (in the trust list); a region whose hub is not known routes nowhere.
 */
export function routeOf(
  dest: DestinationJson,
  country: string,
  serves: (hub: string) => boolean = () => true,
): Route {
  if (dest.country !== country) {
    const partner = liaisonId(dest.country);
    return {
      kind: "abroad",
      country: dest.country,
      addressee: partner,
      sealTo: [partner, liaisonId(country)],
    };
  }
  if (dest.municipality !== undefined) {
    if (!isMunicipality(dest.municipality))
      return { kind: "unknown", reason: "unknown_municipality" };
    const municipality = municipalityId(country, dest.municipality);
    const hub = hubOfMunicipality(municipality);
    return { kind: "municipality", municipality, hub, sealTo: [hub, municipality] };
  }
  if (dest.region !== undefined) {
    const hub = hubId(country, dest.region);
    if (!serves(hub)) return { kind: "unknown", reason: "unknown_region" };
    return { kind: "region", hub, sealTo: [hub] };
  }
  return { kind: "unknown", reason: "unnamed" };
}
