import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { app } from "../../worker/app";
import { config, parseConfig } from "../../worker/config";
import { BASE, BOOTSTRAP, expectError, json } from "./helpers/api";

const nodes = (vars: Record<string, string>) =>
  app.fetch(
    new Request(`${BASE}/api/v1/nodes`, {
      headers: { Authorization: `Bearer ${BOOTSTRAP}`, "CF-Connecting-IP": "203.0.113.10" },
    }),
    { ...env, ...vars } as Env,
  );

describe("config(env)", () => {
  it("gives the documented defaults when the optional vars are unset", () => {
    const c = parseConfig({});
    expect(c.pollWaitSeconds).toBe(25);
    expect(c.policyHubShards).toBe(4);
    expect(c.enrollRateLimit).toBe(20);
    expect(c.retentionDays).toBe(90);
    expect(c.archiveRetentionDays).toBe(30);
    expect(c.auditRetentionDays).toBe(365);
    expect(c.ingestFlushMs).toBe(1000);
    expect(c.session).toEqual({ idleMs: 30 * 60_000, maxAgeMs: 12 * 3600_000 });
    expect(c.access).toBeNull();
    expect(c.bootstrapToken).toBeUndefined();
  });

  it("reads wrangler.toml's vars and the test secrets, once per env object", () => {
    const c = config(env);
    expect(c.pollWaitSeconds).toBe(Number(env.POLL_WAIT_SECONDS));
    expect(c.bootstrapToken).toBe(BOOTSTRAP);
    expect(c.signingSeeds.current).toBe(env.FLEETGATE_SIGNING_KEY);
    expect(config(env)).toBe(c);
    expect(config({ ...env })).not.toBe(c);
  });

  it("clamps out-of-range numbers into their range and treats an empty var as unset", () => {
    const c = parseConfig({ POLL_WAIT_SECONDS: "500", POLICY_HUB_SHARDS: "0", RETENTION_DAYS: " " });
    expect(c.pollWaitSeconds).toBe(55);
    expect(c.policyHubShards).toBe(1);
    expect(c.retentionDays).toBe(90);
  });

  it("turns on Access SSO only with both the team domain and the audience", () => {
    expect(parseConfig({ ACCESS_TEAM_DOMAIN: "acme" }).access).toBeNull();
    const access = parseConfig({
      ACCESS_TEAM_DOMAIN: "acme",
      ACCESS_AUD: "aud",
      ACCESS_ADMINS: "A@x.io, ops",
    }).access;
    expect(access?.issuer).toBe("https://acme.cloudflareaccess.com");
    expect([...(access?.admins ?? [])]).toEqual(["a@x.io", "ops"]);
  });

  it("names every var that is not a number", () => {
    expect(() => parseConfig({ POLL_WAIT_SECONDS: "soon", SESSION_MAX_HOURS: "1.5" })).toThrow(
      /POLL_WAIT_SECONDS must be an integer.*SESSION_MAX_HOURS must be an integer/,
    );
  });

  it("fails the first request of a bad deployment with a generic 500, logging the var's name", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const body = await expectError(await nodes({ ENROLL_RATE_LIMIT: "lots" }), 500, "INTERNAL");
      expect(body.error.message).not.toContain("ENROLL_RATE_LIMIT");
      expect(logged.mock.calls.flat().join(" ")).toContain("ENROLL_RATE_LIMIT");
    } finally {
      logged.mockRestore();
    }
    await json(await nodes({}), 200);
  });
});
