// What a node (or a leaked node token) can write is bounded: events, record times, line counts;
// the audit log has a retention too.
import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CHUNK_LIMITS } from "../../protocol/wire";
import { runHousekeeping } from "../../worker/services/housekeeping";
import { NODE_EVENTS_KEPT } from "../../worker/services/nodes";
import { call, expectError, json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";
import { gzip, record, uploadChunk } from "./helpers/logs";

const DAY = 86_400_000;

const nack = (token: string, error: string, appliedVersion = 1) =>
  call("/api/agent/v1/status", {
    token,
    body: {
      appliedVersion,
      appliedHash: "h",
      state: "rejected",
      error,
      proxy: { kind: "builtin", listen: "127.0.0.1:3128", version: "builtin/0.1.0" },
      spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
      agentVersion: "0.1.0",
      uptimeSeconds: 1,
    },
  });

const eventCount = async (nodeId: string) =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM node_events WHERE node_id = ?")
    .bind(nodeId)
    .first<{ n: number }>())!.n;

describe("node events", () => {
  it("flapping between two error texts adds no new events once each is recorded", async () => {
    const node = await enrollNode();
    for (let i = 0; i < 12; i++)
      expect((await nack(node.nodeToken, i % 2 ? "error A" : "error B")).status).toBe(204);
    // enrolled + one per distinct text
    expect(await eventCount(node.nodeId)).toBe(3);
  });

  it("a node writing ever-new error texts keeps at most NODE_EVENTS_KEPT events, newest first", async () => {
    const node = await enrollNode();
    const sends = NODE_EVENTS_KEPT + 15;
    for (let i = 0; i < sends; i++) expect((await nack(node.nodeToken, `error ${i}`)).status).toBe(204);
    expect(await eventCount(node.nodeId)).toBe(NODE_EVENTS_KEPT);
    const events = await json<{ events: { detail: string }[] }>(
      await call(`/api/v1/nodes/${node.nodeId}/events?limit=1`),
      200,
    );
    expect(events.events[0]?.detail).toBe(`error ${sends - 1}`);
  });

  it("housekeeping drops events and audit entries past their retention", async () => {
    const node = await enrollNode();
    const old = Date.now() - 400 * DAY;
    await env.DB.prepare("INSERT INTO node_events (node_id, at, type) VALUES (?, ?, 'ancient')")
      .bind(node.nodeId, old)
      .run();
    await env.DB.prepare("INSERT INTO audit_log (at, actor, action) VALUES (?, 'test', 'ancient.entry')")
      .bind(old)
      .run();
    await json(await call("/api/v1/enrollment-keys", { body: { name: "recent audit" } }), 201);
    await runHousekeeping(env);
    const ancient = await env.DB.prepare(
      "SELECT (SELECT COUNT(*) FROM node_events WHERE type = 'ancient') + (SELECT COUNT(*) FROM audit_log WHERE action = 'ancient.entry') AS n",
    ).first<{ n: number }>();
    expect(ancient?.n).toBe(0);
    const recent = await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'enrollment-key.create'",
    ).first<{ n: number }>();
    expect(recent?.n).toBeGreaterThan(0);
    expect(await eventCount(node.nodeId)).toBeGreaterThan(0);
  });
});

describe("log records", () => {
  it("refuses a record from the far future, naming its line", async () => {
    const node = await enrollNode();
    const now = new Date().toISOString();
    const r = await uploadChunk(node.nodeToken, "future.1", [
      record({ ts: now }),
      record({ ts: "2999-01-01T00:00:00Z" }),
    ]);
    const body = await expectError(r, 422, "CHUNK_INVALID");
    expect(body.error.message).toMatch(/^line 2: ts: /);
    const rows = await env.DB.prepare("SELECT COUNT(*) AS n FROM rollups WHERE node_id = ?")
      .bind(node.nodeId)
      .first<{ n: number }>();
    expect(rows?.n).toBe(0);
  });

  it("refuses a record older than the retention window, naming its line", async () => {
    const node = await enrollNode();
    const r = await uploadChunk(node.nodeToken, "past.1", [
      record({ ts: new Date(Date.now() - 3650 * DAY).toISOString() }),
    ]);
    const body = await expectError(r, 422, "CHUNK_INVALID");
    expect(body.error.message).toMatch(/^line 1: ts: /);
  });

  it("a gzip of newlines stops at the record cap while splitting", async () => {
    const node = await enrollNode();
    const r = await call("/api/agent/v1/logs", {
      method: "POST",
      token: node.nodeToken,
      rawBody: await gzip("\n".repeat(CHUNK_LIMITS.maxInflatedBytes)),
      headers: {
        "Content-Type": "application/x-ndjson",
        "Content-Encoding": "gzip",
        "X-Fleetgate-Chunk": "newlines.1",
      },
    });
    const body = await expectError(r, 413, "PAYLOAD_TOO_LARGE");
    expect(body.error.message).toContain(`line ${CHUNK_LIMITS.maxRecords + 1}`);
  });
});
