// Event-loop stall while the agent applies a 1M-domain policy: the real pipeline (parse, verify,
// validate, compile) in-thread (before) and on the bundle worker (after), side by side in one run.
// Each runs test/agent/fixtures/apply-stall.ts under Bun three times; medians. Writes bench-results/apply.json.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");
const bun = path.join(root, "node_modules/.bin/bun");
const domains = Number(process.env.APPLY_BENCH_DOMAINS ?? 1_000_000);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const runs = { "in-thread": [], worker: [] };
for (let round = 0; round < 3; round++) {
  for (const mode of Object.keys(runs)) {
    const result = spawnSync(bun, ["test/agent/fixtures/apply-stall.ts", mode, String(domains)], {
      cwd: root,
      encoding: "utf8",
      timeout: 300_000,
    });
    if (result.status !== 0) throw new Error(`${mode}: ${result.stderr}`);
    const line = JSON.parse(result.stdout.trim().split("\n").at(-1));
    console.log(line);
    runs[mode].push(line);
  }
}
const rows = [];
for (const [mode, lines] of Object.entries(runs)) {
  rows.push({
    metric: `${mode}: longest event-loop gap, ${domains.toLocaleString("en")} domains`,
    value: median(lines.map((l) => l.maxGapMs)),
    unit: "ms",
    target: mode === "worker" ? "≤ ~50" : "",
  });
  rows.push({
    metric: `${mode}: bundle bytes to compiled policy`,
    value: median(lines.map((l) => l.ms)),
    unit: "ms",
  });
}
mkdirSync(path.join(root, "bench-results"), { recursive: true });
writeFileSync(
  path.join(root, "bench-results/apply.json"),
  `${JSON.stringify({ name: "apply", rows }, null, 2)}\n`,
);
for (const row of rows) console.log(`${row.metric}: ${row.value} ${row.unit}`);
