import { describe, expect, it } from "vitest";
import { call, expectError, json } from "./helpers/api";
import { blockPolicy, enrollNode, publish } from "./helpers/factories";

const report = (overrides: Record<string, unknown> = {}) => ({
  appliedVersion: 1,
  appliedHash: "h",
  state: "applied",
  proxy: { kind: "builtin", listen: "127.0.0.1:3128", version: "builtin/0.1.0" },
  spool: { pendingChunks: 2, pendingBytes: 2048, oldestPendingAt: null, droppedRecords: 0 },
  agentVersion: "0.1.0",
  uptimeSeconds: 12,
  ...overrides,
});

describe("status ACK/NACK", () => {
  it("records an ACK, a NACK with its error, and a sync event timeline", async () => {
    const node = await enrollNode();
    const v1 = await publish(blockPolicy("status-1.example"), "v1");
    const ack = await call("/api/agent/v1/status", {
      token: node.nodeToken,
      body: report({ appliedVersion: v1.version, appliedHash: v1.hash }),
    });
    expect(ack.status).toBe(204);
    let view = await json<Record<string, unknown>>(await call(`/api/v1/nodes/${node.nodeId}`), 200);
    expect(view).toMatchObject({
      appliedVersion: v1.version,
      sync: "in-sync",
      status: "online",
      spool: { pendingChunks: 2 },
    });

    const v2 = await publish(blockPolicy("status-2.example"), "v2");
    view = await json(await call(`/api/v1/nodes/${node.nodeId}`), 200);
    expect(view).toMatchObject({ appliedVersion: v1.version, latestVersion: v2.version, sync: "behind" });

    const nack = await call("/api/agent/v1/status", {
      token: node.nodeToken,
      body: report({
        appliedVersion: v1.version,
        appliedHash: v1.hash,
        state: "rejected",
        error: "signature does not verify",
      }),
    });
    expect(nack.status).toBe(204);
    view = await json(await call(`/api/v1/nodes/${node.nodeId}`), 200);
    expect(view).toMatchObject({ sync: "rejected", lastError: "signature does not verify" });

    const events = await json<{ events: { type: string; detail: string | null }[] }>(
      await call(`/api/v1/nodes/${node.nodeId}/events`),
      200,
    );
    expect(events.events.map((e) => e.type)).toEqual(["policy.rejected", "policy.applied", "enrolled"]);
    expect(events.events[0]!.detail).toBe("signature does not verify");

    // A repeated identical heartbeat adds no event.
    await call("/api/agent/v1/status", {
      token: node.nodeToken,
      body: report({
        appliedVersion: v1.version,
        appliedHash: v1.hash,
        state: "rejected",
        error: "signature does not verify",
      }),
    });
    const again = await json<{ events: unknown[] }>(await call(`/api/v1/nodes/${node.nodeId}/events`), 200);
    expect(again.events).toHaveLength(3);
  });

  it("validates the report and the token", async () => {
    const node = await enrollNode();
    const bad = await expectError(
      await call("/api/agent/v1/status", {
        token: node.nodeToken,
        body: report({ state: "maybe", spool: { pendingChunks: -1 } }),
      }),
      400,
      "VALIDATION_FAILED",
    );
    expect(bad.error.details!.map((d) => d.path)).toContain("json.state");
    await expectError(
      await call("/api/agent/v1/status", { token: "fgn_wrong", body: report() }),
      401,
      "NODE_UNKNOWN",
    );
    await expectError(
      await call("/api/agent/v1/status", {
        token: node.nodeToken,
        body: report({ error: "x".repeat(20_000) }),
      }),
      413,
      "PAYLOAD_TOO_LARGE",
    );
  });

  it("shows a node offline once it has not polled for wait + 30 s", async () => {
    const node = await enrollNode();
    const { env } = await import("cloudflare:test");
    await env.DB.prepare("UPDATE nodes SET last_seen_at = ? WHERE id = ?")
      .bind(Date.now() - 10 * 60_000, node.nodeId)
      .run();
    const view = await json<{ status: string }>(await call(`/api/v1/nodes/${node.nodeId}`), 200);
    expect(view.status).toBe("offline");
  });
});
