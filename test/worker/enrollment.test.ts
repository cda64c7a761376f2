import { describe, expect, it } from "vitest";
import { call, expectError, json } from "./helpers/api";
import { createEnrollmentKey, enrollNode } from "./helpers/factories";

describe("enrollment keys", () => {
  it("shows the key once and lists it without the secret", async () => {
    const created = await createEnrollmentKey({ name: "branch offices", maxUses: 5 });
    expect(created.key).toMatch(/^fge_/);
    const listed = await json<{ keys: Record<string, unknown>[] }>(
      await call("/api/v1/enrollment-keys"),
      200,
    );
    expect(listed.keys.find((k) => k.id === created.id)).toMatchObject({
      name: "branch offices",
      maxUses: 5,
      uses: 0,
    });
    expect(JSON.stringify(listed)).not.toContain(created.key);
  });

  it("enrolls a node and returns its id, token and the master key", async () => {
    const node = await enrollNode();
    expect(node.nodeId).toMatch(/^node_/);
    expect(node.nodeToken).toMatch(/^fgn_/);
    expect(node.masterKey).toMatchObject({ alg: "Ed25519" });
    expect(node.masterKey.publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(node.pollWaitSeconds).toBeGreaterThan(0);
  });

  it("re-enrolling the same instance (with its token) keeps the node id and kills the old token", async () => {
    const key = await createEnrollmentKey();
    const first = await enrollNode({ enrollmentKey: key.key });
    const second = await enrollNode(
      { enrollmentKey: key.key, instanceId: first.instanceId },
      undefined,
      first.nodeToken,
    );
    expect(second.nodeId).toBe(first.nodeId);
    expect(second.nodeToken).not.toBe(first.nodeToken);
    await expectError(await call("/api/agent/v1/policy", { token: first.nodeToken }), 401, "NODE_UNKNOWN");
    expect([200, 304]).toContain((await call("/api/agent/v1/policy", { token: second.nodeToken })).status);
  });

  it("refuses unknown, revoked, expired and used-up keys", async () => {
    await expectError(
      await call("/api/agent/v1/enroll", {
        token: null,
        body: {
          enrollmentKey: "fge_nope",
          instanceId: "instance-unknown-1",
          hostname: "h",
          agentVersion: "1",
          proxyKind: "builtin",
        },
      }),
      401,
      "ENROLLMENT_KEY_INVALID",
    );
    const revoked = await createEnrollmentKey();
    await json(await call(`/api/v1/enrollment-keys/${revoked.id}`, { method: "DELETE" }), 200);
    const revokedRes = await call("/api/agent/v1/enroll", {
      token: null,
      body: {
        enrollmentKey: revoked.key,
        instanceId: "instance-revoked-1",
        hostname: "h",
        agentVersion: "1",
        proxyKind: "builtin",
      },
    });
    expect((await expectError(revokedRes, 401, "ENROLLMENT_KEY_INVALID")).error.message).toContain("revoked");

    const once = await createEnrollmentKey({ maxUses: 1 });
    await enrollNode({ enrollmentKey: once.key });
    const usedUp = await call("/api/agent/v1/enroll", {
      token: null,
      body: {
        enrollmentKey: once.key,
        instanceId: "instance-used-up-1",
        hostname: "h",
        agentVersion: "1",
        proxyKind: "builtin",
      },
    });
    expect((await expectError(usedUp, 401, "ENROLLMENT_KEY_INVALID")).error.message).toContain(
      "no uses left",
    );

    await expectError(
      await call("/api/v1/enrollment-keys", { body: { name: "old", expiresAt: "2020-01-01T00:00:00Z" } }),
      400,
      "VALIDATION_FAILED",
    );
  });

  it("validates the enroll request with the JSON path", async () => {
    const res = await call("/api/agent/v1/enroll", {
      token: null,
      body: {
        enrollmentKey: "fge_x",
        instanceId: "bad id!",
        hostname: "h",
        agentVersion: "1",
        proxyKind: "nginx",
      },
    });
    const body = await expectError(res, 400, "VALIDATION_FAILED");
    const paths = body.error.details?.map((d) => d.path);
    expect(paths).toContain("json.instanceId");
    expect(paths).toContain("json.proxyKind");
  });

  it("rate-limits enrollment attempts per source address", async () => {
    const attempt = () =>
      call("/api/agent/v1/enroll", {
        token: null,
        address: "198.51.100.77",
        body: {
          enrollmentKey: "fge_guess",
          instanceId: "instance-guess-1",
          hostname: "h",
          agentVersion: "1",
          proxyKind: "builtin",
        },
      });
    const statuses: number[] = [];
    for (let i = 0; i < 22; i++) statuses.push((await attempt()).status);
    expect(statuses.slice(0, 20).every((s) => s === 401)).toBe(true);
    const limited = await attempt();
    const body = await expectError(limited, 429, "RATE_LIMITED");
    expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect(body.error.message).toContain("retry");
    // Another address is not affected.
    expect(
      (
        await call("/api/agent/v1/enroll", {
          token: null,
          address: "198.51.100.78",
          body: {
            enrollmentKey: "fge_guess",
            instanceId: "instance-guess-2",
            hostname: "h",
            agentVersion: "1",
            proxyKind: "builtin",
          },
        })
      ).status,
    ).toBe(401);
  });
});

describe("node revocation", () => {
  it("revoking a node makes its token unknown; after an admin restore it re-enrolls", async () => {
    const key = await createEnrollmentKey();
    const node = await enrollNode({ enrollmentKey: key.key });
    await json(await call(`/api/v1/nodes/${node.nodeId}`, { method: "DELETE" }), 200);
    await expectError(await call("/api/agent/v1/policy", { token: node.nodeToken }), 401, "NODE_UNKNOWN");
    const listed = await json<{ nodes: { id: string; status: string }[] }>(await call("/api/v1/nodes"), 200);
    expect(listed.nodes.find((n) => n.id === node.nodeId)?.status).toBe("revoked");
    await json(await call(`/api/v1/nodes/${node.nodeId}/restore`, { method: "POST" }), 200);
    const again = await enrollNode({ enrollmentKey: key.key, instanceId: node.instanceId });
    expect(again.nodeId).toBe(node.nodeId);
    expect((await call("/api/agent/v1/policy", { token: again.nodeToken })).status).not.toBe(401);
  });

  it("answers 404 for an unknown node", async () => {
    await expectError(await call("/api/v1/nodes/node_doesnotexist00"), 404, "NOT_FOUND");
  });
});
