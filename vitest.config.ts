import path from "node:path";
import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Fixed secrets for the workerd test pool only; real deployments set their own with `wrangler secret put`.
export const TEST_BOOTSTRAP_TOKEN = "fgb_test-bootstrap-token-0123456789abcdef";
export const TEST_SIGNING_SEED = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest(async () => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                TEST_MIGRATIONS: await readD1Migrations(path.join(import.meta.dirname, "migrations")),
                FLEETGATE_BOOTSTRAP_TOKEN: TEST_BOOTSTRAP_TOKEN,
                FLEETGATE_SIGNING_KEY: TEST_SIGNING_SEED,
                // Coalescers flush when a test says so (helpers/logs.ts), not on their own timer.
                INGEST_FLUSH_MS: "600000",
                // Replays one fuzz run (test/worker/fuzz.test.ts prints its seed).
                ...(process.env.FUZZ_SEED ? { FUZZ_SEED: process.env.FUZZ_SEED } : {}),
              },
            },
          })),
        ],
        test: {
          name: "worker",
          include: ["test/worker/**/*.test.ts"],
          // Tests that walk every route send hundreds of requests; a loaded CI core needs slack.
          testTimeout: 30_000,
          setupFiles: ["test/worker/setup/apply-migrations.ts"],
        },
      },
      {
        test: {
          name: "node",
          include: ["test/protocol/**/*.test.ts", "test/agent/**/*.test.ts"],
          testTimeout: 30_000,
          environment: "node",
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
