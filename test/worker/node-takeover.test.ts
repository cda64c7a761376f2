// A hostile viewer or a leaked enrollment key must not take over an enrolled node.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, expectError, json } from "./helpers/api";
import { createApiToken, createEnrollmentKey, enrollNode } from "./helpers/factories";

const enrollBody = (key: string, instanceId: string) => ({
  enrollmentKey: key,
  instanceId,
  hostname: "attacker.example",
  agentVersion: "6.6.6",
  proxyKind: "builtin",
});

async function keyUses(id: string) {
  const row = await env.DB.prepare("SELECT uses FROM enrollment_keys WHERE id = ?").bind(id).first<{
    uses: number;
  }>();
  return row?.uses;
}

describe("node takeover", () => {
  it("a viewer does not see instanceId; an admin does", async () => {
    const node = await enrollNode();
    const viewer = await createApiToken("viewer");
    const asViewer = await json<{ nodes: Record<string, unknown>[] }>(
      await call("/api/v1/nodes", { token: viewer.token }),
      200,
    );
    expect(JSON.stringify(asViewer)).not.toContain(node.instanceId);
    const one = await json(await call(`/api/v1/nodes/${node.nodeId}`, { token: viewer.token }), 200);
    expect(JSON.stringify(one)).not.toContain(node.instanceId);
    const asAdmin = await json<{ nodes: Record<string, unknown>[] }>(await call("/api/v1/nodes"), 200);
    expect(asAdmin.nodes.find((n) => n.id === node.nodeId)?.instanceId).toBe(node.instanceId);
  });

  it("another key and a known instanceId do not take the node over; the real token keeps working", async () => {
    const victim = await enrollNode();
    const attackerKey = await createEnrollmentKey({ name: "leaked" });
    const res = await call("/api/agent/v1/enroll", {
      token: null,
      address: "198.51.100.200",
      body: enrollBody(attackerKey.key, victim.instanceId),
    });
    await expectError(res, 409, "CONFLICT");
    expect(await keyUses(attackerKey.id)).toBe(0);
    expect([200, 304]).toContain((await call("/api/agent/v1/policy", { token: victim.nodeToken })).status);
    // A wrong token is no proof either.
    const wrong = await call("/api/agent/v1/enroll", {
      token: "fgn_not-the-token",
      address: "198.51.100.200",
      body: enrollBody(attackerKey.key, victim.instanceId),
    });
    await expectError(wrong, 409, "CONFLICT");
  });

  it("re-enrolling with the node's current token keeps the node id and rotates the token", async () => {
    const key = await createEnrollmentKey();
    const first = await enrollNode({ enrollmentKey: key.key });
    const again = await json<{ nodeId: string; nodeToken: string }>(
      await call("/api/agent/v1/enroll", {
        token: first.nodeToken,
        body: enrollBody(key.key, first.instanceId),
      }),
      201,
    );
    expect(again.nodeId).toBe(first.nodeId);
    await expectError(await call("/api/agent/v1/policy", { token: first.nodeToken }), 401, "NODE_UNKNOWN");
    expect([200, 304]).toContain((await call("/api/agent/v1/policy", { token: again.nodeToken })).status);
  });

  it("a revoked node stays revoked, even with its own token, until an admin restores it", async () => {
    const key = await createEnrollmentKey();
    const node = await enrollNode({ enrollmentKey: key.key });
    await json(await call(`/api/v1/nodes/${node.nodeId}`, { method: "DELETE" }), 200);
    const withToken = await call("/api/agent/v1/enroll", {
      token: node.nodeToken,
      body: enrollBody(key.key, node.instanceId),
    });
    await expectError(withToken, 403, "FORBIDDEN");
    await expectError(await call("/api/agent/v1/policy", { token: node.nodeToken }), 401, "NODE_UNKNOWN");

    const viewer = await createApiToken("viewer");
    await expectError(
      await call(`/api/v1/nodes/${node.nodeId}/restore`, { method: "POST", token: viewer.token }),
      403,
      "FORBIDDEN",
    );
    const restored = await json<{ status: string }>(
      await call(`/api/v1/nodes/${node.nodeId}/restore`, { method: "POST" }),
      200,
    );
    expect(restored.status).not.toBe("revoked");
    // Its token works again, and the restore lets the node re-enroll once without one.
    expect([200, 304]).toContain((await call("/api/agent/v1/policy", { token: node.nodeToken })).status);
    const again = await json<{ nodeId: string; nodeToken: string }>(
      await call("/api/agent/v1/enroll", { token: null, body: enrollBody(key.key, node.instanceId) }),
      201,
    );
    expect(again.nodeId).toBe(node.nodeId);
    await expectError(
      await call("/api/agent/v1/enroll", { token: null, body: enrollBody(key.key, node.instanceId) }),
      409,
      "CONFLICT",
    );
    const audit = await json<{ entries: { action: string; target: string }[] }>(
      await call("/api/v1/audit"),
      200,
    );
    expect(audit.entries.some((e) => e.action === "node.restore" && e.target === node.nodeId)).toBe(true);
  });

  it("two concurrent first enrolls of one new instanceId: one wins, the other gets 409 and uses no key", async () => {
    const key = await createEnrollmentKey({ maxUses: 5 });
    const instanceId = `instance-race-${Date.now()}`;
    const answers = await Promise.all(
      [0, 1].map(() => call("/api/agent/v1/enroll", { token: null, body: enrollBody(key.key, instanceId) })),
    );
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409]);
    const loser = answers.find((r) => r.status === 409)!;
    await expectError(loser, 409, "CONFLICT");
    expect(await keyUses(key.id)).toBe(1);
  });
});
