import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { page, signedIn } from "./dashboard-helpers";
import { createSite, enrollInSite } from "./fleet-helpers";
import { call, expectError, json } from "./helpers/api";
import { record, uploadChunk } from "./helpers/logs";

const T0 = Date.parse("2026-11-12T08:00:00Z");
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();
const range = `from=${T0}&to=${T0 + 3 * 3_600_000}`;

type Row = { key: string; requests: number; blocked: number; bytesIn: number; bytesOut: number };
type Summary = Record<string, number>;
const SUMMED = ["requests", "allowed", "blocked", "authChallenges", "errors", "bytesIn", "bytesOut"];

function mergeRows(lists: Row[][]): Map<string, Omit<Row, "key">> {
  const out = new Map<string, Omit<Row, "key">>();
  for (const row of lists.flat()) {
    const sum = out.get(row.key) ?? { requests: 0, blocked: 0, bytesIn: 0, bytesOut: 0 };
    out.set(row.key, {
      requests: sum.requests + row.requests,
      blocked: sum.blocked + row.blocked,
      bytesIn: sum.bytesIn + row.bytesIn,
      bytesOut: sum.bytesOut + row.bytesOut,
    });
  }
  return out;
}

describe("reports scoped to a site", async () => {
  const north = await createSite();
  const south = await createSite();
  const n1 = await enrollInSite(north.name, "north-1");
  const n2 = await enrollInSite(north.name, "north-2");
  const s1 = await enrollInSite(south.name, "south-1");
  const loose = await enrollInSite(null, "no-site");
  // Through the real /logs path: every node sees a.example; the sites differ in the rest.
  await uploadChunk(n1.nodeToken, "n1.1", [
    record({ ts: at(1), host: "a.example", client: "10.1.0.1", bytesIn: 10, bytesOut: 100, user: "ann" }),
    record({ ts: at(70), host: "n.example", client: "10.1.0.2", bytesIn: 3, bytesOut: 30 }),
    record({
      ts: at(71),
      host: "ads.example",
      client: "10.1.0.1",
      action: "block",
      status: 403,
      rule: "no-ads",
      bytesIn: 0,
      bytesOut: 0,
    }),
  ]);
  await uploadChunk(n2.nodeToken, "n2.1", [
    record({ ts: at(2), host: "a.example", client: "10.1.0.1", bytesIn: 7, bytesOut: 70, user: "ann" }),
    record({ ts: at(130), host: "n.example", client: "10.2.0.1", bytesIn: 1, bytesOut: 9, user: "ben" }),
  ]);
  await uploadChunk(s1.nodeToken, "s1.1", [
    record({ ts: at(3), host: "a.example", client: "10.1.0.1", bytesIn: 50, bytesOut: 500 }),
    record({ ts: at(4), host: "s.example", client: "10.3.0.1", action: "auth", status: 407 }),
  ]);
  await uploadChunk(loose.nodeToken, "l.1", [
    record({ ts: at(5), host: "a.example", client: "10.9.0.9", bytesIn: 900, bytesOut: 9000 }),
  ]);

  const get = async <T>(path: string) => json<T>(await call(path), 200);

  it("counts exactly the sum of the site's nodes: summary, time series and every top list", async () => {
    for (const [site, nodes] of [
      [north.name, [n1, n2]],
      [south.name, [s1]],
    ] as const) {
      const scoped = await get<Summary>(`/api/v1/reports/summary?${range}&site=${site}`);
      const perNode = await Promise.all(
        nodes.map((n) => get<Summary>(`/api/v1/reports/summary?${range}&node=${n.nodeId}`)),
      );
      for (const field of SUMMED) {
        expect(scoped[field], field).toBe(perNode.reduce((sum, s) => sum + (s[field] ?? 0), 0));
      }
      expect(scoped.nodes).toBe(nodes.length);

      const series = await get<{ points: { t: number; requests: number; bytesIn: number }[] }>(
        `/api/v1/reports/timeseries?${range}&site=${site}`,
      );
      const nodeSeries = await Promise.all(
        nodes.map((n) =>
          get<{ points: { t: number; requests: number; bytesIn: number }[] }>(
            `/api/v1/reports/timeseries?${range}&node=${n.nodeId}`,
          ),
        ),
      );
      series.points.forEach((p, i) => {
        expect(p.requests).toBe(nodeSeries.reduce((sum, s) => sum + s.points[i]!.requests, 0));
        expect(p.bytesIn).toBe(nodeSeries.reduce((sum, s) => sum + s.points[i]!.bytesIn, 0));
      });

      for (const by of ["host", "client", "user", "rule", "node"]) {
        const scopedTop = await get<{ rows: Row[] }>(`/api/v1/reports/top?${range}&site=${site}&by=${by}`);
        const nodeTops = await Promise.all(
          nodes.map((n) => get<{ rows: Row[] }>(`/api/v1/reports/top?${range}&node=${n.nodeId}&by=${by}`)),
        );
        expect(mergeRows([scopedTop.rows]), by).toEqual(mergeRows(nodeTops.map((t) => t.rows)));
      }
    }
    // Hand-computed, so the sums above cannot both be wrong the same way.
    const northSummary = await get<Summary>(`/api/v1/reports/summary?${range}&site=${north.name}`);
    expect(northSummary).toMatchObject({ requests: 5, blocked: 1, bytesIn: 21, clients: 3, users: 2 });
    const hosts = await get<{ rows: Row[] }>(`/api/v1/reports/top?${range}&site=${north.name}&by=host`);
    expect(hosts.rows.find((r) => r.key === "a.example")).toMatchObject({ requests: 2, bytesIn: 17 });
    const fleet = await get<Summary>(`/api/v1/reports/summary?${range}`);
    expect(fleet.requests).toBe(8);
  });

  it("refuses an unknown site, a malformed one, and a site with a node", async () => {
    const unknown = await expectError(
      await call(`/api/v1/reports/summary?${range}&site=nowhere-${Date.now()}`),
      400,
      "VALIDATION_FAILED",
    );
    expect(unknown.error.details).toEqual([{ path: "query.site", message: "unknown site" }]);
    await expectError(
      await call(`/api/v1/reports/top?${range}&site=no%20such&by=host`),
      400,
      "VALIDATION_FAILED",
    );
    const both = await expectError(
      await call(`/api/v1/reports/timeseries?${range}&site=${north.name}&node=${n1.nodeId}`),
      400,
      "VALIDATION_FAILED",
    );
    expect(both.error.details).toEqual([{ path: "query.site", message: "not with node" }]);
    await expectError(
      await call(`/api/v1/reports/export.csv?${range}&report=summary&site=nowhere`),
      400,
      "VALIDATION_FAILED",
    );
  });

  it("reads a site through nodes_site_idx and the rollups primary key, never a table scan", async () => {
    const { results } = await env.DB.prepare(
      `EXPLAIN QUERY PLAN SELECT SUM(requests) FROM rollups
       WHERE kind = 3 AND node_id IN (SELECT id FROM nodes WHERE site = ?) AND bucket >= 0 AND bucket < 1`,
    )
      .bind(north.name)
      .all<{ detail: string }>();
    const plan = results.map((r) => r.detail).join("\n");
    expect(plan).toMatch(/nodes USING (COVERING )?INDEX nodes_site_idx/);
    expect(plan).toMatch(
      /SEARCH rollups USING (PRIMARY KEY|(COVERING )?INDEX \w+) \(kind=\? AND node_id=\? AND bucket>\? AND bucket<\?\)/,
    );
    expect(plan).not.toMatch(/SCAN rollups|SCAN nodes/);
  });

  it("the dashboard's Reports page offers the site picker and shows the site's figures", async () => {
    const { cookie } = await signedIn("viewer");
    const custom = `range=custom&from=2026-11-12T08:00&to=2026-11-12T11:00`;
    const res = await page(`/reports?${custom}&site=${north.name}`, { cookie });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain(`<option value="${north.name}" selected`);
    expect(html).toContain(`· site ${north.name}`);
    expect(html).toContain(`site=${north.name}`);
    // A node picked with its site: the report is the node's (narrower), not a 400.
    const both = await page(`/reports?${custom}&site=${north.name}&node=${n1.nodeId}`, { cookie });
    expect(both.status).toBe(200);
    expect(await both.text()).toContain("· node north-1");
  });
});
