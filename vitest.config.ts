import { availableParallelism } from "node:os";
import { defaultClientConditions, defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

/**
 * Workspace packages export `"source": "./src/mod.ts"`; resolving that condition lets tests
 * run the TypeScript sources without a build (tsconfig.base.json has the same customConditions).
 */
const conditions = ["source"];

export default defineConfig({
  resolve: { conditions: [...conditions, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [...conditions, ...defaultServerConditions] } },
  test: {
    pool: "forks",
    // Integration files spend most of their time waiting on nats-server; two workers keep a
    // 2-core machine busy without starving the servers' elections.
    maxWorkers: Math.max(2, availableParallelism()),
    passWithNoTests: true,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["services/**/src/**/*.test.ts"],
          environment: "node",
          testTimeout: 5_000,
          hookTimeout: 10_000,
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/**/*.test.ts"],
          environment: "node",
          testTimeout: 30_000,
          hookTimeout: 30_000,
          // Each file starts its own servers: files may run in parallel, tests in a file do not.
          fileParallelism: true,
        },
      },
    ],
  },
});
