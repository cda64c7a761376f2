import { describe, expect, it } from "vitest";
import { call, expectError, json } from "./helpers/api";
import { createApiToken } from "./helpers/factories";

// The reproduction: `^.*.*.*.*.*b$` with a 300-character URL, sent by a viewer, kept the
// master from answering anything for over 90 s. On RE2 every pattern is linear in the URL.
const PATHOLOGICAL = ["^(a|a)+$", "^.*.*.*.*.*b$", "(x+x+)+y", "^(a+)+$"];
const INPUT = 100 * 1024;

const policyWith = (urlRegex: string) => ({
  rules: [{ id: "regex", action: "block", match: { urlRegex } }],
  defaultAction: "allow",
});

describe("urlRegex on the master runs on a linear-time engine", () => {
  it("validate accepts the pathological patterns (safe by construction) quickly", async () => {
    for (const pattern of PATHOLOGICAL) {
      const started = performance.now();
      expect(
        await json(await call("/api/v1/policy/validate", { body: { policy: policyWith(pattern) } }), 200),
      ).toEqual({ valid: true });
      expect(performance.now() - started, pattern).toBeLessThan(2000);
    }
  });

  it("simulate with a 100 KB URL answers in milliseconds, even for a viewer", async () => {
    const viewer = (await createApiToken("viewer")).token;
    let worst = 0;
    for (const pattern of PATHOLOGICAL) {
      for (const unit of ["a", "x"]) {
        const url = `http://example.com/${unit.repeat(INPUT)}!`;
        const started = performance.now();
        const body = await json<{ action: string }>(
          await call("/api/v1/policy/simulate", {
            token: viewer,
            body: { policy: policyWith(pattern), request: { client: "10.0.0.1", url } },
          }),
          200,
        );
        worst = Math.max(worst, performance.now() - started);
        expect(body.action, `${pattern} on ${unit}…`).toBe("allow");
      }
    }
    console.info(`worst simulate time on ${INPUT}-byte URLs: ${worst.toFixed(1)} ms`);
    expect(worst).toBeLessThan(2000);
    // The master still answers afterwards.
    expect((await call("/healthz", { token: null })).status).toBe(200);
  });

  it("refuses syntax RE2 cannot run in linear time, naming the JSON path", async () => {
    for (const pattern of ["(a)\\1", "^/x(?=y)", "(?<!a)b"]) {
      const body = await expectError(
        await call("/api/v1/policy/validate", { body: { policy: policyWith(pattern) } }),
        422,
        "POLICY_INVALID",
      );
      expect(body.error.details, pattern).toContainEqual({
        path: "rules[0].match.urlRegex",
        message: expect.stringMatching(/RE2/),
      });
    }
  });
});
