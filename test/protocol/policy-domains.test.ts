import { describe, expect, it } from "vitest";
import { buildDomainTable, DomainTableBuilder } from "../../protocol/policy/domain-table-builder";
import { blockIf, facts } from "./policy-helpers";

describe("domain table semantics", () => {
  const table = buildDomainTable(["example.com", "=exact.org", "*.sub.net", "Mixed.Case.IO.", "bücher.de"]);

  it("plain entries match themselves and every subdomain", () => {
    expect(table.has("example.com")).toBe(true);
    expect(table.has("www.example.com")).toBe(true);
    expect(table.has("a.b.c.example.com")).toBe(true);
    expect(table.has("notexample.com")).toBe(false);
    expect(table.has("example.com.evil.net")).toBe(false);
    expect(table.has("com")).toBe(false);
  });

  it("=exact matches only the name itself", () => {
    expect(table.has("exact.org")).toBe(true);
    expect(table.has("www.exact.org")).toBe(false);
  });

  it("*.sub matches only subdomains", () => {
    expect(table.has("sub.net")).toBe(false);
    expect(table.has("a.sub.net")).toBe(true);
    expect(table.has("x.y.sub.net")).toBe(true);
  });

  it("is case-insensitive and ignores a trailing dot, in entries and hosts", () => {
    expect(table.has("WWW.EXAMPLE.COM")).toBe(true);
    expect(table.has("www.example.com.")).toBe(true);
    expect(table.has("mixed.case.io")).toBe(true);
    expect(table.has("API.MIXED.case.io.")).toBe(true);
  });

  it("matches IDN hosts through their punycode form", () => {
    expect(table.has("xn--bcher-kva.de")).toBe(true);
    expect(table.has("www.xn--bcher-kva.de")).toBe(true);
    expect(table.has("www.bücher.de")).toBe(true);
    expect(table.has("BÜCHER.de")).toBe(true);
    expect(buildDomainTable(["xn--bcher-kva.de"]).has("bücher.de")).toBe(true);
  });

  it("a name can be plain in one set and exact in another", () => {
    const builder = new DomainTableBuilder();
    builder.add("=shared.com", 0);
    builder.add("*.shared.com", 1);
    builder.add("shared.com", 2);
    const t = builder.build();
    const stamps = new Uint32Array(3);
    t.collect("shared.com", stamps, 7);
    expect(Array.from(stamps)).toEqual([7, 0, 7]);
    t.collect("www.shared.com", stamps, 8);
    expect(Array.from(stamps)).toEqual([7, 8, 8]);
    expect(t.explain("www.shared.com").map((m) => m.pattern)).toEqual(["*.shared.com", "shared.com"]);
  });

  it("set ids beyond the inline 15 bits still match", () => {
    const builder = new DomainTableBuilder();
    builder.add("far.com", 40_000);
    builder.add("near.com", 3);
    const t = builder.build();
    const stamps = new Uint32Array(t.setCount);
    expect(t.collect("www.far.com", stamps, 1)).toBe(true);
    expect(stamps[40_000]).toBe(1);
    expect(t.collect("near.com", stamps, 2)).toBe(true);
    expect(stamps[3]).toBe(2);
    expect(t.has("other.com")).toBe(false);
  });

  it("empty and odd hosts never match or throw", () => {
    for (const host of ["", ".", "..", "[::1]", "1.2.3.4", "exa mple.com", "\u0000"]) {
      expect(table.has(host)).toBe(false);
    }
  });

  it("resists collisions: 200k random domains, no false positive on 200k other hosts", () => {
    let seed = 0x9e3779b9;
    const random = () => {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return seed;
    };
    const name = () => {
      let out = "";
      const length = 4 + (random() % 10);
      for (let i = 0; i < length; i++) out += String.fromCharCode(97 + (random() % 26));
      return out;
    };
    const listed = new Set<string>();
    while (listed.size < 200_000) listed.add(`${name()}.${["com", "net", "org", "de"][random() % 4]}`);
    const builder = new DomainTableBuilder(listed.size);
    for (const domain of listed) builder.add(domain, 0);
    const big = builder.build();
    expect(big.size).toBe(200_000);
    let falsePositives = 0;
    let checked = 0;
    while (checked < 200_000) {
      const host = `${name()}.${["com", "net", "org", "de", "io"][random() % 5]}`;
      if (listed.has(host)) continue;
      checked++;
      if (big.has(host) || big.has(`www.${host}`)) falsePositives++;
    }
    expect(falsePositives).toBe(0);
    for (const domain of Array.from(listed).slice(0, 1000)) expect(big.has(`www.${domain}`)).toBe(true);
  });
});

describe("domains in rules", () => {
  it("combines @lists and inline entries with OR", () => {
    const policy = blockIf(
      { domains: ["@social", "=news.example", "*.ads.example"] },
      { lists: { social: { domains: ["facebook.com", "TikTok.com."] } } },
    );
    const verdict = (host: string) => policy.evaluate(facts({ host })).action;
    expect(verdict("www.facebook.com")).toBe("block");
    expect(verdict("tiktok.com")).toBe("block");
    expect(verdict("news.example")).toBe("block");
    expect(verdict("www.news.example")).toBe("allow");
    expect(verdict("ads.example")).toBe("allow");
    expect(verdict("x.ads.example")).toBe("block");
    expect(verdict("example.org")).toBe("allow");
  });

  it("each rule only matches its own sets", () => {
    const policy = blockIf(
      {},
      {
        lists: { a: { domains: ["a.com"] }, b: { domains: ["b.com"] } },
        rules: [
          { id: "ra", action: "allow", match: { domains: ["@a"] } },
          { id: "rb", action: "block", match: { domains: ["@b", "c.com"] } },
        ],
      },
    );
    expect(policy.evaluate(facts({ host: "x.a.com" })).rule?.id).toBe("ra");
    expect(policy.evaluate(facts({ host: "x.b.com" })).rule?.id).toBe("rb");
    expect(policy.evaluate(facts({ host: "c.com" })).rule?.id).toBe("rb");
    expect(policy.evaluate(facts({ host: "d.com" })).reason).toBe("default");
  });

  it("IDN entries in policies match punycode and unicode hosts", () => {
    const policy = blockIf({ domains: ["münchen.de"] });
    expect(policy.evaluate(facts({ host: "xn--mnchen-3ya.de" })).action).toBe("block");
    expect(policy.evaluate(facts({ host: "www.München.de" })).action).toBe("block");
  });
});
