#!/usr/bin/env node
// `npm run bench`: runs each benchmark in turn (they share two cores, so never in parallel),
// then prints one table from the JSON each wrote to bench-results/.
// Usage: npm run bench [-- name ... --flag value]   e.g. npm run bench -- engine longpoll
// Flags (--x) go to every benchmark run: npm run bench -- fleet --nodes 5000
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const root = path.resolve(import.meta.dirname, "../..");
const bun = path.join(root, "node_modules/.bin/bun");
const out = path.join(root, "bench-results");
mkdirSync(out, { recursive: true });

// name → [runtime, script]
const BENCHES = {
  engine: [bun, "test/bench/engine.bench.ts"],
  longpoll: [process.execPath, "test/bench/longpoll.bench.mjs"],
  proxy: [process.execPath, "test/bench/proxy.bench.mjs"],
  agent: [process.execPath, "test/bench/agent.bench.mjs"],
  reports: [process.execPath, "test/bench/reports.bench.mjs"],
  fleet: [process.execPath, "test/bench/fleet.bench.mjs"],
  search: [process.execPath, "test/bench/request-search.bench.mjs"],
  apply: [process.execPath, "test/bench/apply.bench.mjs"],
  squid: [process.execPath, "test/bench/squid.bench.mjs"],
};

const argv = process.argv.slice(2);
const firstFlag = argv.findIndex((a) => a.startsWith("--"));
const names = firstFlag < 0 ? argv : argv.slice(0, firstFlag);
const flags = firstFlag < 0 ? [] : argv.slice(firstFlag);
const wanted = names.length ? names : Object.keys(BENCHES);
const failures = [];
for (const name of wanted) {
  const bench = BENCHES[name];
  if (!bench) {
    console.error(`unknown benchmark ${name}; known: ${Object.keys(BENCHES).join(", ")}`);
    process.exit(2);
  }
  const [runtime, script] = bench;
  if (!existsSync(path.join(root, script))) {
    console.log(`- ${name}: ${script} not present, skipped`);
    continue;
  }
  console.log(`\n=== ${name} (${script})`);
  const status = spawnSync(runtime, [script, ...flags], {
    cwd: root,
    stdio: "inherit",
    env: process.env,
  }).status;
  if (status !== 0) failures.push(name);
}

const rows = [];
for (const name of wanted) {
  const file = path.join(out, `${name}.json`);
  if (!existsSync(file)) continue;
  for (const row of JSON.parse(readFileSync(file, "utf8")).rows ?? []) rows.push({ bench: name, ...row });
}
const fmt = (v) =>
  typeof v === "number"
    ? Math.abs(v) >= 100
      ? Math.round(v).toLocaleString("en")
      : v.toFixed(2)
    : String(v);
console.log("\n| bench | metric | value | unit | target |\n| --- | --- | ---: | --- | --- |");
for (const r of rows)
  console.log(`| ${r.bench} | ${r.metric} | ${fmt(r.value)} | ${r.unit ?? ""} | ${r.target ?? ""} |`);
writeFileSync(
  path.join(out, "summary.json"),
  JSON.stringify({ at: new Date().toISOString(), rows }, null, 2),
);
if (failures.length) {
  console.error(`benchmarks that failed: ${failures.join(", ")}`);
  process.exit(1);
}
