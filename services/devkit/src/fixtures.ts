/**
 * Development fixtures: a country with freshly generated keys, and synthetic referral content.
 * They live in the dev kit, not in @stafett/shared, so that nothing a service ships depends on
 * them. `@stafett/devkit/fixtures` loads only these (and @stafett/shared), for unit tests.
 */
export { createCountry } from "./country.js";
export type { Country, CountryOptions } from "./country.js";
export { sampleOpened, samplePersonal } from "./samples.js";
