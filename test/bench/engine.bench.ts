// Policy engine benchmark (Bun, like the agent in production):
//   node_modules/.bin/bun test/bench/engine.bench.ts
// 1,000,000 realistic domains from a seeded PRNG; compile time, memory added, lookups/s for the
// domain table alone and for evaluate() with one rule on the list, on ~50% hits (listed names and
// their subdomains) and ~50% misses, and the false-negative and false-positive counts and rates
// against a Set + suffix walk (every listed name plus every query). Writes bench-results/engine.json.
//
// Queries are materialised contiguously (a JSON round trip) before timing: a proxy looks up the
// host it has just parsed, which is in cache; without this the loop would mostly measure cache
// misses on the generator's scattered 1M-string heap. The Set baseline runs on the same queries.

import { mkdirSync, writeFileSync } from "node:fs";
import { compilePolicy } from "../../protocol/policy/compile";
import { DomainTableBuilder } from "../../protocol/policy/domain-table-builder";
import { validatePolicy } from "../../protocol/policy/schema";
import type { RequestFacts } from "../../protocol/policy/types";

const DOMAINS = 1_000_000;
const QUERIES = 1_000_000;

function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const SYLLABLES = (
  "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge gi go ha he hi ho ka ke ki ko la le li lo " +
  "lu ma me mi mo mu na ne ni no nu pa pe pi po ra re ri ro ru sa se si so su ta te ti to tu va ve vi vo za " +
  "ze zi zo shop news cloud data net tech media game bank mail web app"
).split(" ");
const TLDS = "com com com com net org de co.uk io ru fr info com.au nl it xyz online co.jp es pl".split(" ");
const SUBDOMAINS = "www api cdn m static img mail app login eu us assets".split(" ");

function generate(seed: number) {
  const random = rng(seed);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const word = () => {
    let out = "";
    const syllables = 2 + Math.floor(random() * 3);
    for (let i = 0; i < syllables; i++) out += pick(SYLLABLES);
    return random() < 0.3 ? out + Math.floor(random() * 100) : out;
  };
  const registered = () => `${word()}.${pick(TLDS)}`;
  // 70% registrable names, 25% one subdomain, 5% two levels: 2-5 labels in all.
  const domain = () => {
    const r = random();
    if (r < 0.7) return registered();
    if (r < 0.95) return `${pick(SUBDOMAINS)}.${registered()}`;
    return `${word()}.${pick(SUBDOMAINS)}.${registered()}`;
  };
  const listed = new Set<string>();
  while (listed.size < DOMAINS) listed.add(domain());
  const list = [...listed];
  const queries: string[] = [];
  const expected: boolean[] = [];
  for (let i = 0; i < QUERIES; i++) {
    if (random() < 0.5) {
      const hit = pick(list);
      queries.push(random() < 0.5 ? hit : `${pick(SUBDOMAINS)}.${hit}`);
      expected.push(true);
    } else {
      let miss: string;
      do miss = random() < 0.6 ? `${pick(SUBDOMAINS)}.${domain()}` : domain();
      while (isListed(listed, miss));
      queries.push(miss);
      expected.push(false);
    }
  }
  return { list, queries: JSON.parse(JSON.stringify(queries)) as string[], expected };
}

function isListed(listed: Set<string>, host: string): boolean {
  for (let name = host; ; ) {
    if (listed.has(name)) return true;
    const dot = name.indexOf(".");
    if (dot < 0) return false;
    name = name.slice(dot + 1);
  }
}

function memory() {
  Bun.gc(true);
  const usage = process.memoryUsage();
  return { rss: usage.rss, heap: usage.heapUsed };
}

function perSecond(iterations: number, run: (i: number) => void): number {
  for (let i = 0; i < 200_000; i++) run(i); // warm-up for the JIT
  const start = performance.now();
  for (let i = 0; i < iterations; i++) run(i);
  return iterations / ((performance.now() - start) / 1000);
}

const round = (value: number, digits = 2) => Number(value.toFixed(digits));
const MB = 1024 * 1024;

const { list, queries, expected } = generate(20_260_304);
const mask = QUERIES; // queries are indexed modulo their count

const before = memory();
let start = performance.now();
const builder = new DomainTableBuilder(list.length);
for (const domain of list) builder.add(domain, 0);
const table = builder.build();
const tableSeconds = (performance.now() - start) / 1000;
const after = memory();

// Correctness on the same queries against the Set + suffix-walk answer: misses of listed names
// (false negatives) and hits on unlisted ones (false positives), counted apart, for the pre-sized
// table and for one grown from its smallest size (every grow rehashes mid-build), and for every
// listed name itself, not only the sampled queries.
const grownBuilder = new DomainTableBuilder();
for (const domain of list) grownBuilder.add(domain, 0);
const grown = grownBuilder.build();
let falseNegatives = 0;
let falsePositives = 0;
let listedMissed = 0;
for (const t of [table, grown]) {
  for (let i = 0; i < QUERIES; i++) {
    const got = t.has(queries[i]!);
    if (!got && expected[i]) falseNegatives++;
    if (got && !expected[i]) falsePositives++;
  }
  for (const domain of list) if (!t.has(domain)) listedMissed++;
}
const hits = expected.filter(Boolean).length;
const hitRate = hits / QUERIES;
const falseNegativeRate = (falseNegatives + listedMissed) / (2 * (hits + list.length));
const falsePositiveRate = falsePositives / (2 * (QUERIES - hits));

let found = 0;
const tableRate = perSecond(10_000_000, (i) => {
  if (table.has(queries[i % mask]!)) found++;
});

const set = new Set(list);
const setRate = perSecond(2_000_000, (i) => {
  if (isListed(set, queries[i % mask]!)) found++;
});

const policyInput = {
  lists: { blocked: { domains: list } },
  rules: [{ id: "blocked", action: "block", match: { domains: ["@blocked"] } }],
  defaultAction: "allow",
};
start = performance.now();
const validated = validatePolicy(policyInput);
const validateSeconds = (performance.now() - start) / 1000;
if (!validated.ok)
  throw new Error(`generated policy does not validate: ${JSON.stringify(validated.issues[0])}`);
start = performance.now();
const compiled = compilePolicy(validated.policy);
const compileSeconds = (performance.now() - start) / 1000;

const facts: RequestFacts[] = queries.slice(0, 200_000).map((host) => ({
  client: "10.1.2.3",
  method: "CONNECT",
  scheme: "connect",
  host,
  port: 443,
  now: Date.now(),
}));
let blocked = 0;
const evaluateRate = perSecond(5_000_000, (i) => {
  if (compiled.evaluate(facts[i % facts.length]!).action === "block") blocked++;
});

const rows = [
  { metric: "compile 1M domains (domain table)", value: round(tableSeconds, 3), unit: "s", target: "<= 1.5" },
  {
    metric: "compilePolicy, 1M-domain list + 1 rule",
    value: round(compileSeconds, 3),
    unit: "s",
    target: "<= 1.5",
  },
  {
    metric: "memory added by table (rss)",
    value: round((after.rss - before.rss) / MB, 1),
    unit: "MB",
    target: "<= 100",
  },
  {
    metric: "memory added by table (heapUsed)",
    value: round((after.heap - before.heap) / MB, 1),
    unit: "MB",
    target: "<= 100",
  },
  { metric: "domain table lookups", value: round(tableRate / 1e6), unit: "M/s", target: ">= 5" },
  { metric: "evaluate() with 1 rule on the list", value: round(evaluateRate / 1e6), unit: "M/s" },
  { metric: "baseline: Set + suffix walk", value: round(setRate / 1e6), unit: "M/s" },
  { metric: "validatePolicy, 1M-domain list", value: round(validateSeconds, 3), unit: "s" },
  { metric: "query hit rate", value: round(hitRate, 3), unit: "ratio", target: "~0.5" },
  {
    metric: "false negatives (listed names and hit queries missed)",
    value: falseNegatives + listedMissed,
    unit: `count of ${(2 * (hits + list.length)).toLocaleString("en")}, rate ${falseNegativeRate}`,
    target: "0",
  },
  {
    metric: "false positives (miss queries matched)",
    value: falsePositives,
    unit: `count of ${(2 * (QUERIES - hits)).toLocaleString("en")}, rate ${falsePositiveRate}`,
    target: "0",
  },
];

console.table(rows);
console.log(
  `false-negative rate ${falseNegativeRate}, false-positive rate ${falsePositiveRate} ` +
    `(checksums ${found} ${blocked}, ${table.size} names)`,
);
mkdirSync("bench-results", { recursive: true });
writeFileSync("bench-results/engine.json", `${JSON.stringify({ name: "engine", rows }, null, 2)}\n`);
