import { describe, expect, it } from "vitest";
import { compileUrlRegex } from "../../protocol/policy/regex-safety";
import { blockIf, facts } from "./policy-helpers";

// Patterns that take a backtracking engine exponential or high-polynomial time in the input length.
const PATHOLOGICAL = ["^(a|a)+$", "^.*.*.*.*.*b$", "(x+x+)+y", "^(a+)+$", "(\\w+\\.)*\\w+-$"];
const INPUT = 100 * 1024;
/** Strings that make each pattern almost match (the worst case for backtracking); none matches. */
const UNITS = ["a", "x", "a."];
const hostile = (unit: string) => `${unit.repeat(Math.ceil(INPUT / unit.length)).slice(0, INPUT)}!`;

describe("urlRegex on a linear-time engine", () => {
  it("pathological patterns on bare 100 KB strings finish in milliseconds, not hours", () => {
    let worst = 0;
    for (const pattern of PATHOLOGICAL) {
      const regex = compileUrlRegex(pattern);
      for (const unit of UNITS) {
        const started = performance.now();
        expect(regex.test(hostile(unit)), `${pattern} on ${unit}…!`).toBe(false);
        worst = Math.max(worst, performance.now() - started);
      }
    }
    console.info(`worst pattern time on ${INPUT}-byte strings: ${worst.toFixed(1)} ms`);
    // A backtracking engine needs far beyond this bound (hours); a loaded machine stays well under it.
    expect(worst).toBeLessThan(2000);
  });

  it("the engine decides 100 KB URLs against pathological rules in milliseconds", () => {
    let worst = 0;
    for (const pattern of PATHOLOGICAL) {
      const policy = blockIf({ urlRegex: pattern });
      for (const unit of UNITS) {
        const started = performance.now();
        const decision = policy.evaluate(facts({ path: `/${hostile(unit)}` }));
        worst = Math.max(worst, performance.now() - started);
        expect(decision.action, `${pattern} on /${unit}…!`).toBe("allow");
      }
    }
    console.info(`worst evaluate time on ${INPUT}-byte URLs: ${worst.toFixed(1)} ms`);
    expect(worst).toBeLessThan(2000);
  });

  it("still matches what the pattern says, case flags and anchors included", () => {
    const policy = blockIf({ urlRegex: "(?i)^http://(www\\.)?example\\.com:80/(admin|wp-login)" });
    expect(policy.evaluate(facts({ path: "/ADMIN/x" })).action).toBe("block");
    expect(policy.evaluate(facts({ path: "/wp-login.php" })).action).toBe("block");
    expect(policy.evaluate(facts({ path: "/public" })).action).toBe("allow");
    const big = blockIf({ urlRegex: "^http://[^/]+/a+$" });
    expect(big.evaluate(facts({ path: `/${"a".repeat(INPUT)}` })).action).toBe("block");
    expect(big.evaluate(facts({ path: `/${"a".repeat(INPUT)}b` })).action).toBe("allow");
    expect(compileUrlRegex("^(a|a)+$").test("a".repeat(INPUT))).toBe(true);
  });
});
