// Regression tests for the correctness findings: surrogate pairs at a chunk boundary, far-future
// export ranges, a failing Access JWKS fetch.
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { canonicalJson } from "../../protocol/canonical";
import { toBase64Url, utf8 } from "../../protocol/encoding";
import { validatePolicy } from "../../protocol/policy/schema";
import { policyHash } from "../../protocol/signing";
import { app } from "../../worker/app";
import { signedIn } from "./dashboard-helpers";
import { call, expectError, json } from "./helpers/api";
import { publish } from "./helpers/factories";

const CHUNK_CHARS = 500_000;
const EMOJI = "\u{1F600}";

function policyWithEmojiAt(boundary: number) {
  // Fixed-width domain names: every entry adds the same number of characters.
  const build = (domains: number, prefix: number) => ({
    lists: {
      pad: {
        domains: Array.from(
          { length: domains },
          (_, i) => `d${String(i).padStart(6, "0")}.surrogate.example`,
        ),
      },
    },
    rules: [
      {
        id: "smile",
        action: "block",
        match: { domains: ["@pad"] },
        message: `${"m".repeat(prefix)}${EMOJI} blocked`,
      },
    ],
    defaultAction: "allow",
  });
  const indexOf = (p: unknown) => {
    const result = validatePolicy(p);
    if (!result.ok) throw new Error(JSON.stringify(result.issues[0]));
    return canonicalJson(result.policy).indexOf(EMOJI);
  };
  const base = indexOf(build(1, 0));
  const per = indexOf(build(2, 0)) - base;
  const domains = 1 + Math.floor((boundary - 1 - base) / per);
  const policy = build(domains, boundary - 1 - indexOf(build(domains, 0)));
  // The high surrogate is the last character of the first chunk, the low one the first of the next.
  expect(indexOf(policy)).toBe(boundary - 1);
  return policy;
}

describe("policy chunks", () => {
  it("an emoji across a chunk boundary is stored whole; the stored text still has the signed hash", async () => {
    const policy = policyWithEmojiAt(CHUNK_CHARS);
    const published = await publish(policy, "emoji at the boundary");
    const stored = await json<{ hash: string; policy: { rules: { message: string }[] } }>(
      await call(`/api/v1/policy/versions/${published.version}`),
      200,
    );
    expect(stored.policy.rules[0]!.message.endsWith(`${EMOJI} blocked`)).toBe(true);
    expect(await policyHash(stored.policy)).toBe(published.hash);
  });
});

describe("export.csv", () => {
  it("answers 400, not 500, for ranges beyond what a date can hold", async () => {
    for (const report of ["summary", "timeseries", "top"]) {
      for (const [from, to] of [
        ["9000000000000000", "9000000000001000"],
        ["8639999999999000", "8640000000000000"],
        ["275760-09-13T00:00:00Z", "275760-09-13T00:00:01Z"],
      ]) {
        const r = await call(`/api/v1/reports/export.csv?report=${report}&by=host&from=${from}&to=${to}`);
        expect(r.status, `${report} ${from}..${to}: ${await r.clone().text()}`).toBeLessThan(500);
        await expectError(r, 400, "VALIDATION_FAILED");
      }
    }
  });

  it("still exports a plain future range inside the calendar", async () => {
    const r = await call(
      "/api/v1/reports/export.csv?report=summary&from=2999-01-01T00:00:00Z&to=2999-01-02T00:00:00Z",
    );
    expect(r.status).toBe(200);
    expect(await r.text()).toContain("2999-01-01");
  });
});

describe("Cloudflare Access JWKS", () => {
  afterEach(() => vi.restoreAllMocks());

  const b64 = (v: unknown) => toBase64Url(utf8(JSON.stringify(v)));
  const token = `${b64({ alg: "RS256", kid: "k1" })}.${b64({ email: "a@example.com" })}.${toBase64Url(new Uint8Array(256))}`;
  const accessEnv = {
    ...env,
    ACCESS_TEAM_DOMAIN: "127.0.0.1:9",
    ACCESS_AUD: "aud",
    ACCESS_ADMINS: "a@example.com",
  };

  async function visit() {
    const ctx = createExecutionContext();
    const response = await app.fetch(
      new Request("https://master.test/overview", {
        headers: { "Cf-Access-Jwt-Assertion": token, "CF-Connecting-IP": "192.0.2.60" },
        redirect: "manual",
      }),
      accessEnv,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    await response.text();
    return response;
  }

  it("a failed key fetch answers 503 and is not retried on every request", async () => {
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const first = await visit();
    expect(first.status).toBe(503);
    expect(Number(first.headers.get("Retry-After"))).toBeGreaterThan(0);
    const second = await visit();
    expect(second.status).toBe(503);
    const certCalls = fetchSpy.mock.calls.filter(([url]) => String(url).includes("/cdn-cgi/access/certs"));
    expect(certCalls.length).toBe(1);
  });
});

describe("dashboard forms", () => {
  it("a multipart form without a boundary is a 400 page, not a 500 (found by the fuzz test)", async () => {
    const s = await signedIn();
    const r = await exports.default.fetch(
      new Request("https://master.test/settings/users", {
        method: "POST",
        headers: {
          Cookie: `__Host-fg_session=${s.cookie}`,
          "Content-Type": "multipart/form-data",
          Origin: "https://master.test",
          "X-CSRF-Token": s.csrf,
          "CF-Connecting-IP": "192.0.2.61",
        },
        body: "name=x&role=admin",
        redirect: "manual",
      }),
    );
    expect(r.status).toBe(400);
    expect(await r.text()).toContain("form body cannot be read");
  });
});
