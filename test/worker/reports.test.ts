import {
  createExecutionContext,
  createScheduledController,
  env,
  waitOnExecutionContext,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import { KIND } from "../../worker/services/rollup-kinds";
import { call, expectError, json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";
import { record, uploadChunk } from "./helpers/logs";

const T0 = Date.parse("2026-11-20T10:00:00Z");
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
const range = `from=${T0}&to=${T0 + 3 * 3_600_000}`;

describe("reports", async () => {
  const a = await enrollNode({ hostname: "branch-a" });
  const b = await enrollNode({ hostname: "branch-b" });
  // Hand-computed fixture: node a: 3 allowed (a.example ×2, b.example), 1 blocked (ads.example by rule no-ads)
  // node b: 2 allowed (a.example), 1 auth challenge; users alice (a) and bob (b).
  await uploadChunk(a.nodeToken, "ea.1", [
    record({ ts: at(1), host: "a.example", client: "10.0.0.1", bytesIn: 10, bytesOut: 100, user: "alice" }),
    record({ ts: at(2), host: "a.example", client: "10.0.0.2", bytesIn: 10, bytesOut: 100 }),
    record({ ts: at(61), host: "b.example", client: "10.0.0.1", bytesIn: 10, bytesOut: 100 }),
    record({
      ts: at(62),
      host: "ads.example",
      client: "10.0.0.1",
      action: "block",
      status: 403,
      rule: "no-ads",
      bytesIn: 1,
      bytesOut: 5,
    }),
  ]);
  await uploadChunk(b.nodeToken, "eb.1", [
    record({ ts: at(5), host: "a.example", client: "10.9.0.1", bytesIn: 20, bytesOut: 200, user: "bob" }),
    record({ ts: at(125), host: "a.example", client: "10.9.0.1", bytesIn: 20, bytesOut: 200 }),
    record({
      ts: at(126),
      host: "x.example",
      client: "10.9.0.2",
      action: "auth",
      status: 407,
      bytesIn: 0,
      bytesOut: 0,
    }),
  ]);

  it("summarises the fleet and one node", async () => {
    const fleet = await json<Record<string, number>>(await call(`/api/v1/reports/summary?${range}`), 200);
    expect(fleet).toMatchObject({
      requests: 7,
      allowed: 5,
      blocked: 1,
      authChallenges: 1,
      bytesIn: 71,
      bytesOut: 705,
      clients: 4,
      users: 2,
      nodes: 2,
    });
    const one = await json<Record<string, number>>(
      await call(`/api/v1/reports/summary?${range}&node=${a.nodeId}`),
      200,
    );
    expect(one).toMatchObject({ requests: 4, allowed: 3, blocked: 1, clients: 2, users: 1, nodes: 1 });
  });

  it("answers a time series with buckets chosen from the range", async () => {
    const ts = await json<{ bucketMs: number; points: { t: number; requests: number; blocked: number }[] }>(
      await call(`/api/v1/reports/timeseries?${range}`),
      200,
    );
    expect(ts.bucketMs).toBe(5 * 60_000);
    expect(ts.points).toHaveLength(36);
    expect(ts.points.reduce((sum, p) => sum + p.requests, 0)).toBe(7);
    expect(ts.points.find((p) => p.t === T0 + 60 * 60_000)).toMatchObject({ requests: 2, blocked: 1 });
    const week = await json<{ bucketMs: number }>(
      await call(`/api/v1/reports/timeseries?from=${T0}&to=${T0 + 7 * 86_400_000}`),
      200,
    );
    expect(week.bucketMs).toBe(3_600_000);
  });

  it("ranks top hosts, clients, users, rules and nodes", async () => {
    const hosts = await json<{ rows: { key: string; requests: number; blocked: number }[] }>(
      await call(`/api/v1/reports/top?by=host&${range}`),
      200,
    );
    expect(hosts.rows[0]).toEqual({ key: "a.example", requests: 4, blocked: 0, bytesIn: 60, bytesOut: 600 });
    const blocked = await json<{ rows: { key: string }[] }>(
      await call(`/api/v1/reports/top?by=host&action=block&${range}`),
      200,
    );
    expect(blocked.rows.map((r) => r.key)).toEqual(["ads.example"]);
    const rules = await json<{ rows: { key: string; requests: number }[] }>(
      await call(`/api/v1/reports/top?by=rule&${range}`),
      200,
    );
    expect(rules.rows).toEqual([expect.objectContaining({ key: "no-ads", requests: 1 })]);
    const users = await json<{ rows: { key: string }[] }>(
      await call(`/api/v1/reports/top?by=user&${range}`),
      200,
    );
    expect(users.rows.map((r) => r.key).sort()).toEqual(["alice", "bob"]);
    const nodes = await json<{ rows: { key: string; requests: number }[] }>(
      await call(`/api/v1/reports/top?by=node&${range}`),
      200,
    );
    expect(nodes.rows).toEqual([
      expect.objectContaining({ key: a.nodeId, requests: 4 }),
      expect.objectContaining({ key: b.nodeId, requests: 3 }),
    ]);
    const clients = await json<{ rows: { key: string }[] }>(
      await call(`/api/v1/reports/top?by=client&limit=1&${range}`),
      200,
    );
    expect(clients.rows).toHaveLength(1);
  });

  it("exports CSV with cells a spreadsheet will not run as formulas", async () => {
    const other = await enrollNode({ hostname: "branch-c" });
    const day = Date.parse("2026-10-01T00:00:00Z");
    await uploadChunk(other.nodeToken, "ec.1", [
      record({ ts: new Date(day + 1000).toISOString(), host: '=HYPERLINK("x","y")' }),
    ]);
    const csv = await (
      await call(
        `/api/v1/reports/export.csv?report=top&by=host&node=${other.nodeId}&from=${day}&to=${day + 3_600_000}`,
      )
    ).text();
    expect(csv.split("\r\n")[1]).toBe(`"'=hyperlink(""x"",""y"")",1,0,100,1000`);
  });

  it("exports CSV", async () => {
    const res = await call(`/api/v1/reports/export.csv?report=top&by=host&${range}`);
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toContain("text/csv");
    expect(res.headers.get("Content-Disposition")).toContain("fleetgate-top-host");
    const lines = (await res.text()).trim().split("\r\n");
    expect(lines[0]).toBe("host,requests,blocked,bytesIn,bytesOut");
    expect(lines[1]).toBe("a.example,4,0,60,600");
    const summary = await (await call(`/api/v1/reports/export.csv?report=summary&${range}`)).text();
    expect(summary.split("\r\n")[1]).toContain(",7,5,1,1,0,71,705,4,2,2");
    const series = await (await call(`/api/v1/reports/export.csv?report=timeseries&${range}`)).text();
    expect(series.trim().split("\r\n")).toHaveLength(37);
  });

  it("names gaps in a node's chunk sequence and spool backlog", async () => {
    await uploadChunk(a.nodeToken, "ea.4", [record({ ts: at(170), host: "late.example" })]);
    const s = await json<{ incomplete: { nodeId: string; kind: string; missing: string }[] }>(
      await call(`/api/v1/reports/summary?${range}`),
      200,
    );
    expect(s.incomplete).toEqual([
      expect.objectContaining({ nodeId: a.nodeId, kind: "gap", missing: "chunks ea.2–3 never arrived" }),
    ]);
    await call("/api/agent/v1/status", {
      token: b.nodeToken,
      body: {
        appliedVersion: null,
        appliedHash: null,
        state: "applied",
        proxy: { kind: "builtin", listen: "127.0.0.1:3128", version: "x" },
        spool: { pendingChunks: 3, pendingBytes: 100, oldestPendingAt: at(100), droppedRecords: 0 },
        agentVersion: "0.1.0",
        uptimeSeconds: 1,
      },
    });
    const again = await json<{ incomplete: { nodeId: string; kind: string }[] }>(
      await call(`/api/v1/reports/top?by=host&${range}`),
      200,
    );
    expect(again.incomplete.map((i) => i.kind).sort()).toEqual(["backlog", "gap"]);
  });

  it("counts the same requests in summary, time series and top lists of one range", async () => {
    // A range starting mid-hour: every report aligns it down to the hour and says so.
    const q = `from=${T0 + 30 * 60_000}&to=${T0 + 90 * 60_000}`;
    const s = await json<{ requests: number; from: number }>(await call(`/api/v1/reports/summary?${q}`), 200);
    const series = await json<{ points: { requests: number }[]; from: number }>(
      await call(`/api/v1/reports/timeseries?${q}`),
      200,
    );
    const nodes = await json<{ rows: { requests: number; label: string }[]; from: number }>(
      await call(`/api/v1/reports/top?by=node&${q}`),
      200,
    );
    expect(s.from).toBe(T0);
    expect(series.from).toBe(T0);
    expect(nodes.from).toBe(T0);
    expect(series.points.reduce((sum, p) => sum + p.requests, 0)).toBe(s.requests);
    expect(nodes.rows.reduce((sum, r) => sum + r.requests, 0)).toBe(s.requests);
    expect(nodes.rows.map((r) => r.label).sort()).toEqual(["branch-a", "branch-b"]);
  });

  it("validates report parameters", async () => {
    await expectError(await call("/api/v1/reports/top?by=planet"), 400, "VALIDATION_FAILED");
    await expectError(
      await call(`/api/v1/reports/summary?from=${T0}&to=${T0 - 1}`),
      400,
      "VALIDATION_FAILED",
    );
    await expectError(await call("/api/v1/reports/summary?from=yesterday"), 400, "VALIDATION_FAILED");
    await expectError(await call("/api/v1/reports/summary?node=bob"), 400, "VALIDATION_FAILED");
    await expectError(
      await call("/api/v1/reports/summary?from=0&to=99999999999999"),
      400,
      "VALIDATION_FAILED",
    );
  });

  it("the cron trigger removes rollups older than the retention period", async () => {
    // Ingest refuses records past retention (node-writes.test.ts), so the old row is seeded here.
    const old = Date.now() - 200 * 86_400_000;
    await env.DB.prepare(
      "INSERT INTO rollups (kind, node_id, bucket, key, requests, blocked, auth, errors, bytes_in, bytes_out) VALUES (?, ?, ?, 'ancient.example', 1, 0, 0, 0, 0, 0)",
    )
      .bind(KIND.hostHour, a.nodeId, old - (old % 3_600_000))
      .run();
    const count = () =>
      env.DB.prepare("SELECT COUNT(*) AS n FROM rollups WHERE key = 'ancient.example'")
        .first<{ n: number }>()
        .then((r) => r?.n);
    expect(await count()).toBeGreaterThan(0);
    const ctx = createExecutionContext();
    await worker.scheduled(
      createScheduledController({ scheduledTime: new Date(), cron: "17 * * * *" }),
      env,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(await count()).toBe(0);
    const fresh = await json<{ requests: number }>(await call(`/api/v1/reports/summary?${range}`), 200);
    expect(fresh.requests).toBe(8);
  });
});
