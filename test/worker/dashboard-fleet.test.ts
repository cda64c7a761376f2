import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { nodes } from "../../worker/db/schema";
import { evaluateAlerts, fireAlert, listAlerts } from "../../worker/services/alerts";
import { listFleet } from "../../worker/services/fleet";
import { db, page, signedIn, submit } from "./dashboard-helpers";
import { call, json } from "./helpers/api";
import { createEnrollmentKey, enrollNode, publish } from "./helpers/factories";
import { record, uploadChunk } from "./helpers/logs";

const tag = () => `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;

describe("fleet listing (listFleet, /nodes)", () => {
  it("searches hostname, address and id, filters by state and version, sorts and pages in SQL", async () => {
    const t = tag();
    const a = await enrollNode({ hostname: `${t}-alpha.example`, agentVersion: "0.1.0" }, "192.0.2.41");
    const b = await enrollNode({ hostname: `${t}-beta.example`, agentVersion: "0.2.0" }, "192.0.2.42");
    const c = await enrollNode({ hostname: `${t}-gamma.example`, agentVersion: "0.2.0" }, "192.0.2.43");
    // gamma went quiet an hour ago: offline.
    await db()
      .update(nodes)
      .set({ lastSeenAt: Date.now() - 3600_000 })
      .where(eq(nodes.id, c.nodeId));
    const byName = await listFleet({ db: db(), env, input: { q: t } });
    expect(byName.nodes.map((n) => n.hostname)).toEqual([
      `${t}-alpha.example`,
      `${t}-beta.example`,
      `${t}-gamma.example`,
    ]);
    const byId = await listFleet({ db: db(), env, input: { q: b.nodeId } });
    expect(byId.nodes.map((n) => n.id)).toEqual([b.nodeId]);
    const offline = await listFleet({ db: db(), env, input: { q: t, state: "offline" } });
    expect(offline.nodes.map((n) => n.id)).toEqual([c.nodeId]);
    const v2 = await listFleet({ db: db(), env, input: { q: t, version: "0.2.0", sort: "-hostname" } });
    expect(v2.nodes.map((n) => n.id)).toEqual([c.nodeId, b.nodeId]);
    const paged = await listFleet({ db: db(), env, input: { q: t, size: 2, page: 2 } });
    expect({ total: paged.total, pages: paged.pages, ids: paged.nodes.map((n) => n.id) }).toEqual({
      total: 3,
      pages: 2,
      ids: [c.nodeId],
    });
    // A literal % in the search is not a wildcard.
    expect((await listFleet({ db: db(), env, input: { q: `${t}%beta` } })).total).toBe(0);
    expect(a.nodeId).toMatch(/^node_/);
  });

  it("renders the filtered nodes page and answers a bad filter with 400", async () => {
    const s = await signedIn();
    const t = tag();
    await enrollNode({ hostname: `${t}-one.example` });
    await enrollNode({ hostname: `other-${t}.example` });
    const html = await (await page(`/nodes?q=${t}-one`, { cookie: s.cookie })).text();
    expect(html).toContain(`${t}-one.example`);
    expect(html).not.toContain(`other-${t}.example`);
    expect(html).toMatch(/1 of \d+ nodes match/);
    expect((await page("/nodes?state=sideways", { cookie: s.cookie })).status).toBe(400);
    // The API still lists the whole fleet through the same verb.
    const api = await json<{ nodes: { hostname: string }[] }>(await call("/api/v1/nodes"), 200);
    expect(api.nodes.some((n) => n.hostname === `other-${t}.example`)).toBe(true);
  });
});

describe("policy editor additions", () => {
  it("shows the draft against the published version and each rule's 24 h hits", async () => {
    const s = await signedIn();
    const rule = `hits-${tag()}`;
    await publish({
      rules: [{ id: rule, action: "block", match: { domains: ["blocked.example"] } }],
      defaultAction: "allow",
    });
    const { nodeToken } = await enrollNode();
    const now = new Date().toISOString();
    const blocked = Array.from({ length: 7 }, () =>
      record({ ts: now, host: "blocked.example", action: "block", rule, status: 403 }),
    );
    expect((await uploadChunk(nodeToken, "1.1", blocked)).status).toBe(200);
    let html = await (await page("/policy", { cookie: s.cookie })).text();
    expect(html).toMatch(new RegExp(`data-testid="hits-${rule}"[^>]*>\\s*7\\s*<`));
    expect(html).not.toContain('data-testid="draft-diff"');
    await submit("/policy/settings", s, { defaultAction: "block", title: "Blocked", body: "no" });
    html = await (await page("/policy", { cookie: s.cookie })).text();
    expect(html).toContain('data-testid="draft-diff"');
    expect(html).toContain("defaultAction changed");
  });
});

describe("server-side confirmation", () => {
  it("asks before revoking a key and only revokes on the confirmed second POST", async () => {
    const s = await signedIn();
    const key = await createEnrollmentKey({ name: "confirm me" });
    const first = await submit(`/settings/keys/${key.id}/revoke`, s);
    const text = await first.text();
    expect(text).toContain("Revoke this enrollment key?");
    expect(text).toContain('name="_confirmed" value="1"');
    const keys = async () =>
      (
        await json<{ keys: { id: string; revokedAt: number | null }[] }>(
          await call("/api/v1/enrollment-keys"),
          200,
        )
      ).keys;
    expect((await keys()).find((k) => k.id === key.id)?.revokedAt).toBeNull();
    await submit(`/settings/keys/${key.id}/revoke`, s, { _confirmed: "1" });
    expect((await keys()).find((k) => k.id === key.id)?.revokedAt).not.toBeNull();
  });
});

describe("alerts", () => {
  it("fires once per open condition, resolves when it clears, and fires again after", async () => {
    const subject = `node_${tag()}`;
    const first = await fireAlert({ db: db(), env, kind: "rollout.halted", subject, details: { step: 2 } });
    const again = await fireAlert({ db: db(), env, kind: "rollout.halted", subject });
    expect(first.fired).toBe(true);
    expect(first.delivery).toBe("off"); // no webhook configured in this test
    expect(again).toMatchObject({ fired: false, id: first.id });

    const { nodeId } = await enrollNode({ hostname: `quiet-${tag()}.example` });
    await db()
      .update(nodes)
      .set({ lastSeenAt: Date.now() - 3600_000 })
      .where(eq(nodes.id, nodeId));
    const run1 = await evaluateAlerts({ db: db(), env });
    expect(run1.fired.length).toBeGreaterThan(0);
    const offline = (await listAlerts({ db: db(), limit: 500 })).filter(
      (a) => a.kind === "node.offline" && a.subject === nodeId,
    );
    expect(offline).toHaveLength(1);
    const run2 = await evaluateAlerts({ db: db(), env });
    expect(run2.fired.filter((f) => f.id === offline[0]!.id)).toHaveLength(0);
    // Back online: resolved; offline again later: a new alert.
    await db().update(nodes).set({ lastSeenAt: Date.now() }).where(eq(nodes.id, nodeId));
    await evaluateAlerts({ db: db(), env });
    await db()
      .update(nodes)
      .set({ lastSeenAt: Date.now() - 3600_000 })
      .where(eq(nodes.id, nodeId));
    await evaluateAlerts({ db: db(), env });
    const all = (await listAlerts({ db: db(), limit: 500 })).filter(
      (a) => a.kind === "node.offline" && a.subject === nodeId,
    );
    expect(all).toHaveLength(2);
    expect(all.filter((a) => a.resolvedAt === null)).toHaveLength(1);
  });

  it("refuses a webhook without a secret and never shows a stored secret", async () => {
    const s = await signedIn();
    let html = await (
      await submit("/settings/alerts", s, { url: "https://hooks.example/x", backlogMinutes: "30" })
    ).text();
    expect(html).toContain("set a shared secret");
    const secret = "a-shared-secret-0123456789";
    html = await (
      await submit("/settings/alerts", s, {
        url: "https://hooks.example/x",
        secret,
        backlogMinutes: "30",
        kinds: "node.offline",
      })
    ).text();
    expect(html).toContain("Alerts saved.");
    html = await (await page("/settings/alerts", { cookie: s.cookie })).text();
    expect(html).toContain("(set; leave empty to keep it)");
    expect(html).not.toContain(secret);
  });
});
