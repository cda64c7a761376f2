// The domain table against an independent reference model: a plain Map of names walked suffix by
// suffix. The property test builds tables from seeded random lists (1 to 200,000 names, 1-6 labels,
// every mode, several sets, random order, builders sized right, too small or not at all so the
// table grows mid-build) and counts every disagreement as a false negative or a false positive.

import { describe, expect, it } from "vitest";
import { MODE_EXACT, MODE_SUB } from "../../protocol/policy/domain-name";
import { DomainTableBuilder } from "../../protocol/policy/domain-table-builder";
import { blockIf, facts } from "./policy-helpers";

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

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

/**
 * Reference matcher: name → modes per set, two bits per set index (at most 15 sets), walked
 * suffix by suffix. Answers a bit mask of the set indexes with a matching pattern.
 */
class ReferenceMatcher {
  private readonly names = new Map<string, number>();

  add(host: string, mode: number, setIndex: number): void {
    this.names.set(host, (this.names.get(host) ?? 0) | (mode << (setIndex * 2)));
  }

  match(host: string): number {
    let sets = 0;
    const exact = this.names.get(host) ?? 0;
    for (let k = 0; exact >>> (k * 2) !== 0; k++) if ((exact >>> (k * 2)) & MODE_EXACT) sets |= 1 << k;
    for (let dot = host.indexOf("."); dot >= 0; dot = host.indexOf(".", dot + 1)) {
      const below = this.names.get(host.slice(dot + 1)) ?? 0;
      for (let k = 0; below >>> (k * 2) !== 0; k++) if ((below >>> (k * 2)) & MODE_SUB) sets |= 1 << k;
    }
    return sets;
  }
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const TOP = ["com", "net", "org", "de", "uk", "io", "1", "0", "local", "xn--p1ai"];

function nameGenerator(random: () => number) {
  const label = () => {
    let out = "";
    const length = 1 + Math.floor(random() * 10);
    for (let i = 0; i < length; i++) out += ALPHABET[Math.floor(random() * ALPHABET.length)];
    return length > 2 && random() < 0.1 ? `${out.slice(0, 1)}-${out.slice(1)}` : out;
  };
  // Shared upper labels make names share parents (interior slots), as real lists do.
  const second = Array.from({ length: 40 }, label);
  return () => {
    const labels = 1 + Math.floor(random() * 6);
    if (labels === 1) return random() < 0.5 ? TOP[Math.floor(random() * TOP.length)]! : label();
    const parts = [TOP[Math.floor(random() * TOP.length)]!];
    if (labels >= 3) parts.unshift(second[Math.floor(random() * second.length)]!);
    while (parts.length < labels) parts.unshift(label());
    return parts.join(".");
  };
}

interface TrialResult {
  queries: number;
  falseNegatives: string[];
  falsePositives: string[];
}

function runTrial(random: () => number, size: number): TrialResult {
  const nextName = nameGenerator(random);
  const reference = new ReferenceMatcher();
  const setCount = 1 + Math.floor(random() * 4);
  // Set ids past the inline 15 bits go through the overflow map.
  const setIds = Array.from({ length: setCount }, (_, i) => (random() < 0.1 ? 40_000 + i : i));
  /** [host, mode, index into setIds] */
  const patterns: [string, number, number][] = [];
  const hosts: string[] = [];
  while (patterns.length < size) {
    const host = nextName();
    const r = random();
    const mode = r < 0.6 ? MODE_EXACT | MODE_SUB : r < 0.8 ? MODE_EXACT : MODE_SUB;
    patterns.push([host, mode, Math.floor(random() * setCount)]);
    hosts.push(host);
    // Some names again, in another set or mode.
    if (random() < 0.05 && patterns.length < size) {
      patterns.push([host, random() < 0.5 ? MODE_EXACT : MODE_SUB, Math.floor(random() * setCount)]);
    }
  }
  for (let i = patterns.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [patterns[i], patterns[j]] = [patterns[j]!, patterns[i]!];
  }
  // Sized right (as compile does), far too small, or not at all: the table must grow mid-build.
  const sizing = random();
  const builder = new DomainTableBuilder(
    sizing < 0.4 ? size : sizing < 0.7 ? Math.max(1, size >> 3) : undefined,
  );
  for (const [host, mode, setIndex] of patterns) {
    const text = mode === MODE_EXACT ? `=${host}` : mode === MODE_SUB ? `*.${host}` : host;
    if (!builder.add(text, setIds[setIndex]!)) throw new Error(`not a domain: ${text}`);
    reference.add(host, mode, setIndex);
  }
  const table = builder.build();

  const queries: string[] = [];
  for (const host of hosts) {
    queries.push(host, `${nextName().split(".")[0]}.${host}`);
    const dot = host.indexOf(".");
    if (dot >= 0) queries.push(host.slice(dot + 1));
    if (random() < 0.1) queries.push(`a.b.${host}`);
  }
  for (let i = Math.min(size, 20_000); i > 0; i--) queries.push(nextName());

  const stamps = new Uint32Array(table.setCount);
  const result: TrialResult = { queries: 0, falseNegatives: [], falsePositives: [] };
  let gen = 0;
  for (const query of queries) {
    const want = reference.match(query);
    gen++;
    const any = table.collect(query, stamps, gen);
    let got = 0;
    for (let k = 0; k < setCount; k++) if (stamps[setIds[k]!] === gen) got |= 1 << k;
    result.queries++;
    // A miss in any set it belongs to is a false negative, a hit in any other set a false positive.
    if ((want & ~got) !== 0 || (want !== 0 && (!any || !table.has(query)))) result.falseNegatives.push(query);
    if ((got & ~want) !== 0 || (want === 0 && (any || table.has(query)))) result.falsePositives.push(query);
  }
  return result;
}

describe("domain table regressions", () => {
  const addresses = ["127.0.0.1", "0.0.0.0", "localhost", "169.254.169.254"];

  it("blocks each of 127.0.0.1, 0.0.0.0, localhost, 169.254.169.254 in all 24 orderings", () => {
    const orderings = permutations(addresses);
    expect(orderings).toHaveLength(24);
    const missed: string[] = [];
    for (const domains of orderings) {
      const policy = blockIf({ domains });
      for (const host of addresses) {
        if (policy.evaluate(facts({ host })).action !== "block") missed.push(`${domains.join(",")}: ${host}`);
      }
      expect(policy.evaluate(facts({ host: "127.0.0.2" })).action).toBe("allow");
      // The same list straight into a builder that starts at its smallest size.
      const builder = new DomainTableBuilder(1);
      for (const domain of domains) builder.add(domain, 0);
      const table = builder.build();
      for (const host of addresses) if (!table.has(`www.${host}`)) missed.push(`${domains}: www.${host}`);
    }
    expect(missed).toEqual([]);
  });
});

describe("domain table property", () => {
  it("zero false negatives and zero false positives against a reference model, sizes 1 to 200,000", () => {
    const random = rng(0x2026_0308);
    // Fixed sizes first (small ones around the first grows, and the largest), then at least 40
    // log-uniform sizes up to 20,000, then log-uniform sizes up to 200,000 while the time budget
    // lasts. The seed makes every run the same up to where the budget stops it.
    const sizes = [1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 16, 23, 24, 45, 46, 91, 92, 200_000];
    const required = sizes.length + 40;
    const logUniform = (max: number) => Math.max(1, Math.floor(Math.exp(random() * Math.log(max))));
    const budgetMs = 6_000;
    const started = performance.now();
    let trials = 0;
    let queries = 0;
    let names = 0;
    const falseNegatives: string[] = [];
    const falsePositives: string[] = [];
    while (trials < required || (performance.now() - started < budgetMs && trials < 1_000)) {
      const size = sizes[trials] ?? logUniform(trials < required ? 20_000 : 200_000);
      const result = runTrial(random, size);
      trials++;
      names += size;
      queries += result.queries;
      falseNegatives.push(...result.falseNegatives.slice(0, 5).map((q) => `size ${size}: ${q}`));
      falsePositives.push(...result.falsePositives.slice(0, 5).map((q) => `size ${size}: ${q}`));
    }
    console.log(
      `domain table property: ${trials} tables, ${names} patterns, ${queries} queries, ` +
        `${falseNegatives.length} false negatives, ${falsePositives.length} false positives`,
    );
    expect(falseNegatives).toEqual([]);
    expect(falsePositives).toEqual([]);
  }, 60_000);
});
