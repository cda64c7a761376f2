import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getDb } from "../../worker/db/client";
import { auditPageQuery } from "../../worker/services/audit-search";
import { page, signedIn } from "./dashboard-helpers";
import { createSite } from "./fleet-helpers";
import { call, expectError, json } from "./helpers/api";
import { enrollNode, publish } from "./helpers/factories";

interface Named {
  name: string;
  kind: string;
  href?: string;
}
interface Entry {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  actorName: Named;
  targetName: Named | null;
}
type AuditPage = { entries: Entry[]; next: number | null };

const audit = async (query: string) => json<AuditPage>(await call(`/api/v1/audit?${query}`), 200);

describe("audit log: names, links, filters, paging", async () => {
  // A token acts for the test; the bootstrap token makes the rest.
  const token = await json<{ id: string; token: string }>(
    await call("/api/v1/tokens", { body: { name: "ci deployer", role: "admin" } }),
    201,
  );
  const v1 = await publish({ rules: [], defaultAction: "allow" }, "first", token.token);
  const v2 = await publish({ rules: [], defaultAction: "block" }, "second", token.token);
  const node = await enrollNode({ hostname: "edge-7.branch.example" });
  await json(await call(`/api/v1/nodes/${node.nodeId}`, { method: "DELETE" }), 200);
  const site = await createSite();
  const { user } = await signedIn("viewer");

  it("names actors and targets, with links to the dashboard", async () => {
    const { entries } = await audit("limit=100");
    const publishes = entries.filter((e) => e.action === "policy.publish");
    expect(publishes.map((e) => e.targetName)).toEqual([
      {
        name: `version ${v2.version}`,
        kind: "policy version",
        href: `/policy/history?from=${v1.version}&to=${v2.version}`,
      },
      expect.objectContaining({ name: `version ${v1.version}`, kind: "policy version" }),
    ]);
    for (const e of publishes) {
      expect(e.actor).toBe(`token:${token.id}`);
      expect(e.actorName).toEqual({ name: "ci deployer", kind: "token", href: "/settings/tokens" });
    }
    const revoke = entries.find((e) => e.action === "node.revoke")!;
    expect(revoke.targetName).toEqual({
      name: "edge-7.branch.example",
      kind: "node",
      href: `/nodes/${node.nodeId}`,
    });
    expect(revoke.actorName).toEqual({ name: "bootstrap token", kind: "system" });
    const created = entries.find((e) => e.action === "user.create" && e.target === user.id)!;
    expect(created.targetName).toMatchObject({ name: user.name, kind: "user", href: "/settings/users" });
    const siteEntry = entries.find((e) => e.action === "site.create" && e.target === site.name)!;
    expect(siteEntry.targetName).toEqual({ name: site.name, kind: "site", href: `/nodes?site=${site.name}` });
    const tokenEntry = entries.find((e) => e.action === "api-token.create")!;
    expect(tokenEntry.targetName).toMatchObject({ name: "ci deployer", kind: "api token" });
  });

  it("walks an index per filter, not the whole log (an action prefix is a range of that index)", async () => {
    const plan = async (input: Parameters<typeof auditPageQuery>[1]) => {
      const query = auditPageQuery(getDb(env.DB), input).toSQL();
      const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${query.sql}`)
        .bind(...query.params)
        .all<{ detail: string }>();
      return results.map((r) => r.detail).join("; ");
    };
    expect(await plan({ limit: 100, target: "node_rare" })).toMatch(/USING INDEX audit_log_target_idx/);
    expect(await plan({ limit: 100, actor: "anonymous" })).toMatch(/USING INDEX audit_log_actor_idx/);
    expect(await plan({ limit: 100, action: "node.revoke" })).toMatch(/USING INDEX audit_log_action_idx/);
    expect(await plan({ limit: 100, action: "policy." })).toMatch(
      /USING INDEX audit_log_action_idx \(action>\? AND action<\?\)/,
    );
    expect(await plan({ limit: 100, target: "node_rare", before: 50 })).toMatch(/audit_log_target_idx/);
  });

  it("filters by actor, by action or action prefix, by target, and by time", async () => {
    const byToken = await audit(`actor=token:${token.id}`);
    expect(byToken.entries.map((e) => e.action).sort()).toEqual(["policy.publish", "policy.publish"]);

    const policy = await audit("action=policy.");
    expect(policy.entries.length).toBeGreaterThanOrEqual(2);
    expect(policy.entries.every((e) => e.action.startsWith("policy."))).toBe(true);
    const exact = await audit("action=node.revoke");
    expect(exact.entries.map((e) => e.target)).toEqual([node.nodeId]);
    // "user.login" is exact: it does not also match user.login-failed.
    expect((await audit("action=user.login")).entries.every((e) => e.action === "user.login")).toBe(true);

    const target = await audit(`target=${node.nodeId}`);
    expect(target.entries.map((e) => e.action)).toEqual(["node.revoke"]);

    const all = (await audit("limit=500")).entries;
    const oldest = all[all.length - 1]!;
    const newest = all[0]!;
    const later = await audit(`from=${newest.at}&limit=500`);
    expect(later.entries.every((e) => e.at >= newest.at)).toBe(true);
    expect(later.entries.map((e) => e.id)).toContain(newest.id);
    const earlier = await audit(`to=${newest.at}&limit=500`);
    expect(earlier.entries.every((e) => e.at < newest.at)).toBe(true);
    expect(earlier.entries.length + later.entries.length).toBe(all.length);
    expect((await audit(`from=${new Date(oldest.at).toISOString()}&limit=500`)).entries).toHaveLength(
      all.length,
    );
    expect((await audit(`from=${newest.at + 1}`)).entries).toEqual([]);
  });

  it("pages in SQL: following next visits each filtered entry once, newest first", async () => {
    const whole = (await audit("action=policy.&limit=500")).entries.map((e) => e.id);
    const seen: number[] = [];
    let before: number | null = null;
    for (let i = 0; i < 20; i++) {
      const p: AuditPage = await audit(`action=policy.&limit=1${before ? `&before=${before}` : ""}`);
      seen.push(...p.entries.map((e) => e.id));
      if (p.next === null) break;
      expect(p.entries).toHaveLength(1);
      before = p.next;
    }
    expect(seen).toEqual(whole);
    expect(whole.length).toBeGreaterThanOrEqual(2);
  });

  it("refuses malformed filters with 400 and the query path", async () => {
    const bad = await expectError(await call("/api/v1/audit?action=policy;drop"), 400, "VALIDATION_FAILED");
    expect(bad.error.details?.[0]?.path).toContain("action");
    await expectError(await call("/api/v1/audit?actor=Robert'); --"), 400, "VALIDATION_FAILED");
    await expectError(await call("/api/v1/audit?from=2026-11-02&to=2026-11-01"), 400, "VALIDATION_FAILED");
    await expectError(await call("/api/v1/audit?from=yesterday"), 400, "VALIDATION_FAILED");
    await expectError(await call(`/api/v1/audit?target=${"x".repeat(201)}`), 400, "VALIDATION_FAILED");
    await expectError(await call("/api/v1/audit?limit=501"), 400, "VALIDATION_FAILED");
  });

  it("the dashboard audit page shows names with links and applies the filters", async () => {
    const { cookie } = await signedIn("admin");
    const res = await page(`/settings/audit?action=policy.&actor=token:${token.id}`, { cookie });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain(
      `<a href="/policy/history?from=${v1.version}&amp;to=${v2.version}">version ${v2.version}</a>`,
    );
    expect(html).toContain(`<a href="/settings/tokens">ci deployer</a>`);
    expect(html).not.toContain("<td>node.revoke</td>");
    expect(html).toContain("<td>policy.publish</td>");
    expect(html).toContain(`<option value="token:${token.id}" selected`);

    const nodes = await (await page(`/settings/audit?target=${node.nodeId}`, { cookie })).text();
    expect(nodes).toContain(`<a href="/nodes/${node.nodeId}">edge-7.branch.example</a>`);
    expect(nodes).not.toContain("<td>policy.publish</td>");

    const none = await (
      await page("/settings/audit?from=2001-01-01T00:00&to=2001-01-02T00:00", { cookie })
    ).text();
    expect(none).toContain("No entries match.");
    const junk = await page("/settings/audit?action=%3Cscript%3E", { cookie });
    expect(junk.status).toBe(200);
    expect(await junk.text()).toContain("ignored: not a valid action");
  });
});
