/** Where the repository's contract and reference data live, from this package's location. */
import { fileURLToPath } from "node:url";

// services/shared/{src,dist}/ -> repository root
const root = new URL("../../../", import.meta.url);

export const repoPath = (relative: string): string => fileURLToPath(new URL(relative, root));
