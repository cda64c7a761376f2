import { describe, expect, it } from "vitest";
import { createSite, enrollInSite } from "./fleet-helpers";
import { call, expectError, json } from "./helpers/api";
import { publish } from "./helpers/factories";

// Rule 2 names a missing site, so does list x; rule 0 names one that exists.
const policyNaming = (known: string, missing: string) => ({
  lists: {
    ok: { domains: ["ok.example"], sites: [known] },
    x: { domains: ["x.example"], sites: [missing] },
  },
  rules: [
    { id: "known", action: "block", match: { domains: ["a.example"], sites: [known] } },
    { id: "any", action: "block", match: { domains: ["b.example"] } },
    { id: "typo", action: "block", match: { domains: ["c.example"], sites: [known, missing] } },
    { id: "listed", action: "block", match: { domains: ["@x"] } },
  ],
  defaultAction: "allow",
});

const EXPECTED = (missing: string) => [
  { path: "rules[2].match.sites[1]", message: `unknown site "${missing}"` },
  { path: "lists.x.sites[0]", message: `unknown site "${missing}"` },
];

describe("a policy naming a site that does not exist", async () => {
  const site = await createSite();
  const missing = `gone-${Date.now().toString(36)}`;
  const bad = policyNaming(site.name, missing);

  it("validate answers 400 with the JSON path of each unknown site", async () => {
    const body = await expectError(
      await call("/api/v1/policy/validate", { body: { policy: bad } }),
      400,
      "VALIDATION_FAILED",
    );
    expect(body.error.details).toEqual(EXPECTED(missing));
    expect(body.error.message).toContain("rules[2].match.sites[1]");
  });

  it("publish refuses it and creates no version; the same policy with the site created publishes", async () => {
    const before = await json<{ versions: { version: number }[] }>(
      await call("/api/v1/policy/versions"),
      200,
    );
    const body = await expectError(
      await call("/api/v1/policy/versions", { body: { policy: bad, message: "typo" } }),
      400,
      "VALIDATION_FAILED",
    );
    expect(body.error.details).toEqual(EXPECTED(missing));
    const after = await json<{ versions: { version: number }[] }>(await call("/api/v1/policy/versions"), 200);
    expect(after.versions[0]?.version).toBe(before.versions[0]?.version);

    await createSite({ name: missing });
    await json(await call("/api/v1/policy/validate", { body: { policy: bad } }), 200);
    const published = await publish(bad, "now the site exists");
    expect(published.version).toBeGreaterThan(before.versions[0]?.version ?? 0);
  });

  it("rollout start refuses it and starts nothing", async () => {
    await publish({ rules: [], defaultAction: "allow" }, "base");
    await enrollInSite(site.name, "ring-node");
    const other = `other-${Date.now().toString(36)}`;
    const body = await expectError(
      await call("/api/v1/rollouts", {
        body: {
          policy: policyNaming(site.name, other),
          message: "staged typo",
          ring: { site: site.name },
          soakSeconds: 60,
        },
      }),
      400,
      "VALIDATION_FAILED",
    );
    expect(body.error.details).toEqual(EXPECTED(other));
    const rollouts = await json<{ rollouts: { state: string }[] }>(await call("/api/v1/rollouts"), 200);
    expect(rollouts.rollouts).toEqual([]);
  });

  it("a malformed policy is still POLICY_INVALID (422), checked before sites", async () => {
    await expectError(
      await call("/api/v1/policy/validate", { body: { policy: { rules: "no", defaultAction: "allow" } } }),
      422,
      "POLICY_INVALID",
    );
  });
});
