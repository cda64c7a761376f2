import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { verifyBundle } from "../../protocol/signing";
import { bundleTag, type PolicyBundle } from "../../protocol/wire";
import { call, expectError, json } from "./helpers/api";
import { blockPolicy, enrollNode, MINIMAL_POLICY, publish } from "./helpers/factories";

const officePolicy = {
  lists: { social: { domains: ["facebook.com", "tiktok.com"] }, office: { cidrs: ["10.1.0.0/16"] } },
  rules: [
    {
      id: "no-social",
      name: "No social media",
      action: "block",
      match: { domains: ["@social"], clients: ["@office"] },
    },
    { id: "block-exe", action: "block", enabled: false, match: { urlRegex: "\\.exe$" } },
  ],
  defaultAction: "allow",
};

describe("policy validation", () => {
  it("accepts a valid policy", async () => {
    expect(
      await json(await call("/api/v1/policy/validate", { body: { policy: officePolicy } }), 200),
    ).toEqual({ valid: true });
  });

  it("names the JSON path of each problem", async () => {
    const bad = {
      lists: { social: { domains: ["facebook.com"] } },
      rules: [
        { id: "a", action: "block", match: { domains: ["@nope"] } },
        { id: "a", action: "block", match: { clients: ["10.0.0.0/33"] } },
      ],
      defaultAction: "allow",
    };
    const res = await call("/api/v1/policy/validate", { body: { policy: bad } });
    const body = await expectError(res, 422, "POLICY_INVALID");
    const paths = body.error.details!.map((d) => d.path);
    expect(paths).toContain("rules[0].match.domains[0]");
    expect(paths).toContain("rules[1].match.clients[0]");
    expect(paths.some((p) => p.startsWith("rules[1]"))).toBe(true);
  });

  it("never publishes an invalid policy", async () => {
    await expectError(
      await call("/api/v1/policy/versions", { body: { policy: { rules: "x" }, message: "broken" } }),
      422,
      "POLICY_INVALID",
    );
    const versions = await json<{ versions: unknown[] }>(await call("/api/v1/policy/versions"), 200);
    expect(versions.versions).toHaveLength(0);
  });
});

describe("publishing", () => {
  it("creates immutable numbered versions with hash and signature, and lists them", async () => {
    const v1 = await publish(MINIMAL_POLICY, "first");
    const v2 = await publish(officePolicy, "office rules");
    expect(v2.version).toBe(v1.version + 1);
    expect(v2.hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const listed = await json<{ versions: { version: number; message: string }[]; latest: number }>(
      await call("/api/v1/policy/versions"),
      200,
    );
    expect(listed.latest).toBe(v2.version);
    expect(listed.versions.map((v) => v.message).slice(0, 2)).toEqual(["office rules", "first"]);
    const one = await json<{ policy: typeof officePolicy; hash: string }>(
      await call(`/api/v1/policy/versions/${v2.version}`),
      200,
    );
    expect(one.hash).toBe(v2.hash);
    expect(one.policy.rules[0]!.id).toBe("no-social");
  });

  it("publishing identical content creates no new version", async () => {
    const first = await publish(blockPolicy("same.example"), "same");
    const again = await json<{ version: number; unchanged: boolean }>(
      await call("/api/v1/policy/versions", {
        body: { policy: blockPolicy("same.example"), message: "same again" },
      }),
      200,
    );
    expect(again).toMatchObject({ version: first.version, unchanged: true });
  });

  it("a bundle verifies with the key from enrollment and fails after one policy byte changes", async () => {
    const node = await enrollNode();
    await publish(blockPolicy("signed.example"), "signed");
    const res = await call("/api/agent/v1/policy", { token: node.nodeToken });
    const text = await res.text();
    expect(res.status).toBe(200);
    const bundle = JSON.parse(text) as PolicyBundle;
    expect(res.headers.get("ETag")).toBe(`"${bundleTag(bundle)}"`);
    expect(await verifyBundle(bundle, node.masterKey)).toMatchObject({ ok: true, generation: 0 });

    const tampered = JSON.parse(text.replace("signed.example", "signed.exampla")) as PolicyBundle;
    expect((await verifyBundle(tampered, node.masterKey)).ok).toBe(false);
    const renumbered = { ...bundle, version: bundle.version + 1 };
    expect((await verifyBundle(renumbered, node.masterKey)).ok).toBe(false);
  });

  it("stores and serves a large policy (200k domains) intact", async () => {
    const domains = Array.from({ length: 200_000 }, (_, i) => `host${i}.big-list.example`);
    const policy = {
      lists: { big: { domains } },
      rules: [{ id: "big", action: "block", match: { domains: ["@big"] } }],
      defaultAction: "allow",
    };
    const published = await publish(policy, "big list");
    const node = await enrollNode();
    const bundle = (await (
      await call("/api/agent/v1/policy", { token: node.nodeToken })
    ).json()) as PolicyBundle;
    expect(bundle.version).toBe(published.version);
    expect((bundle.policy.lists as { big: { domains: string[] } }).big.domains).toHaveLength(200_000);
    expect(await verifyBundle(bundle, node.masterKey)).toMatchObject({ ok: true, generation: 0 });

    // D1 refuses rows over 2 MB in production: the audit entry references the big version instead
    // of copying ~5 MB of policy into one row, and the next publish references it as "before".
    await publish(MINIMAL_POLICY, "small again");
    const rows = await env.DB.prepare(
      "SELECT target, length(before) AS beforeSize, length(after) AS afterSize FROM audit_log WHERE action = 'policy.publish' ORDER BY id DESC LIMIT 2",
    ).all<{ target: string; beforeSize: number | null; afterSize: number }>();
    for (const row of rows.results) {
      expect(row.afterSize).toBeLessThan(300_000);
      expect(row.beforeSize ?? 0).toBeLessThan(300_000);
    }
    const audit = await json<{ entries: { target: string; after: { policy: unknown; size?: number } }[] }>(
      await call("/api/v1/audit"),
      200,
    );
    const big = audit.entries.find((e) => e.target === `v${published.version}`)!;
    expect(big.after.policy).toBe(`stored as version ${published.version}`);
    expect(big.after.size).toBeGreaterThan(1_000_000);
  });
});

describe("diff and rollback", () => {
  it("diffs two versions per section and rolls back by republishing", async () => {
    const a = await publish(officePolicy, "a");
    const changed = structuredClone(officePolicy);
    changed.rules.reverse();
    changed.lists.social.domains.push("instagram.com");
    changed.rules.push({
      id: "new-rule",
      action: "block",
      match: { domains: ["ads.example"] },
    } as (typeof changed.rules)[number]);
    const b = await publish(changed, "b");
    const diff = await json<{
      sections: { section: string; changes: { kind: string; path: string; summary: string }[] }[];
    }>(await call(`/api/v1/policy/diff?from=${a.version}&to=${b.version}`), 200);
    const rules = diff.sections.find((s) => s.section === "rules")!;
    expect(rules.changes.some((c) => c.kind === "added" && c.path === "rules.new-rule")).toBe(true);
    expect(rules.changes.some((c) => c.kind === "moved" && c.path === "rules.no-social")).toBe(true);
    const lists = diff.sections.find((s) => s.section === "lists")!;
    expect(lists.changes).toContainEqual(
      expect.objectContaining({
        kind: "added",
        path: "lists.social.domains",
        summary: "1 added to lists.social.domains",
      }),
    );

    const rolled = await json<{ version: number; hash: string }>(
      await call(`/api/v1/policy/versions/${a.version}/rollback`, { method: "POST" }),
      201,
    );
    expect(rolled.version).toBe(b.version + 1);
    expect(rolled.hash).toBe(a.hash);
    const audit = await json<{ entries: { action: string; before: unknown; after: unknown }[] }>(
      await call("/api/v1/audit"),
      200,
    );
    const entry = audit.entries.find((e) => e.action === "policy.rollback")!;
    expect(entry.before).toBeTruthy();
    expect(entry.after).toBeTruthy();
  });

  it("answers 404 for unknown versions and 400 for bad version numbers", async () => {
    await expectError(await call("/api/v1/policy/versions/9999"), 404, "NOT_FOUND");
    await expectError(await call("/api/v1/policy/versions/abc"), 400, "VALIDATION_FAILED");
    await expectError(await call("/api/v1/policy/diff?from=1"), 400, "VALIDATION_FAILED");
  });
});

describe("simulate", () => {
  it("evaluates a described request and explains the deciding rule", async () => {
    await publish({ ...officePolicy, logging: { includeQuery: true } }, "for simulate");
    const blocked = await json<{ action: string; rule?: { id: string }; trace: unknown[] }>(
      await call("/api/v1/policy/simulate", {
        body: { request: { client: "10.1.2.3", url: "https://www.facebook.com/" } },
      }),
      200,
    );
    expect(blocked.action).toBe("block");
    expect(blocked.rule?.id).toBe("no-social");
    expect(blocked.trace.length).toBeGreaterThan(0);

    const allowed = await json<{ action: string; reason: string }>(
      await call("/api/v1/policy/simulate", {
        body: { request: { client: "10.2.0.1", url: "http://www.facebook.com/x" } },
      }),
      200,
    );
    expect(allowed).toMatchObject({ action: "allow", reason: "default" });
  });

  it("simulates against a draft and rejects bad requests", async () => {
    const draft = await json<{ action: string }>(
      await call("/api/v1/policy/simulate", {
        body: {
          policy: blockPolicy("draft.example"),
          request: { client: "10.0.0.1", url: "http://a.draft.example/" },
        },
      }),
      200,
    );
    expect(draft.action).toBe("block");
    await expectError(
      await call("/api/v1/policy/simulate", { body: { request: { client: "not-an-ip", url: "http://x/" } } }),
      400,
      "VALIDATION_FAILED",
    );
    await expectError(
      await call("/api/v1/policy/simulate", { body: { request: { client: "10.0.0.1", url: "ftp://x/" } } }),
      400,
      "VALIDATION_FAILED",
    );
  });
});
