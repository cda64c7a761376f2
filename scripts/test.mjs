#!/usr/bin/env node
// `npm test`: type-checks (both tsconfigs) and checks for import cycles, builds the agent binary
// the end-to-end tests run, then every vitest project (workerd pool, node, e2e, browser), and
// ends with one line "N passed, M failed".
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "..");
const resultsDir = path.join(root, "test-results");
const report = path.join(resultsDir, "vitest.json");
mkdirSync(resultsDir, { recursive: true });

const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_HIDE_BANNER: "true",
};
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: "inherit", env }).status ?? 1;

const fail = (what) => {
  console.error(what);
  writeFileSync(path.join(resultsDir, "summary.txt"), "0 passed, 1 failed\n");
  console.log("0 passed, 1 failed");
  process.exit(1);
};

// A type error fails the run before any test: vitest strips types and would run code tsc rejects.
if (!process.env.FLEETGATE_SKIP_TYPECHECK) {
  if (run("npm", ["run", "--silent", "typecheck"]) !== 0) fail("type check failed (npm run typecheck)");
  if (run(process.execPath, ["scripts/check-cycles.mjs"]) !== 0)
    fail("import cycles (scripts/check-cycles.mjs)");
}

const extra = process.argv.slice(2);
if (existsSync(path.join(root, "scripts/build-agent.mjs")) && !process.env.FLEETGATE_SKIP_BUILD) {
  // The e2e suite runs the linux-x64 binary; cross targets are for `npm run build:agent`.
  if (run(process.execPath, ["scripts/build-agent.mjs", "linux-x64"]) !== 0)
    fail("building the agent binary failed");
}

const status = run(path.join(root, "node_modules/.bin/vitest"), [
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${report}`,
  ...extra,
]);

let passed = 0;
let failed = status === 0 ? 0 : 1;
let skipped = 0;
if (existsSync(report)) {
  const data = JSON.parse(readFileSync(report, "utf8"));
  passed = data.numPassedTests ?? 0;
  skipped = (data.numPendingTests ?? 0) + (data.numTodoTests ?? 0);
  // Failed suites (e.g. an import error) count as failures even when no test inside ran.
  const failedSuites = (data.testResults ?? []).filter(
    (s) => s.status === "failed" && !(s.assertionResults ?? []).some((a) => a.status === "failed"),
  ).length;
  failed =
    (data.numFailedTests ?? 0) +
    failedSuites +
    (status !== 0 && (data.numFailedTests ?? 0) + failedSuites === 0 ? 1 : 0);
}
const line = `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`;
writeFileSync(path.join(resultsDir, "summary.txt"), `${line}\n`);
console.log(line);
process.exit(status === 0 && failed === 0 ? 0 : 1);
