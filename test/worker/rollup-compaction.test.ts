import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { getDb } from "../../worker/db/client";
import { DAY_TOP_K, HOUR_TOP_K, OTHER_KEY } from "../../worker/services/ingest-fold";
import { compactRollups } from "../../worker/services/rollup-compact";
import { DAY, FLEET, HOUR, KIND } from "../../worker/services/rollup-kinds";
import { call, json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";
import { record, uploadChunk } from "./helpers/logs";

// One day of one busy node, shaped so both folds happen: every hour has more distinct hosts than
// a node-hour keeps (HOUR_TOP_K), arriving in two chunks (the cap holds across flushes), and the
// day's union of kept hosts is more than a compacted day keeps (DAY_TOP_K).
const D = Date.parse("2026-10-05T00:00:00Z");
const HOURS = 15;
const PER_CHUNK = 150;
const POPULAR = 50;
const perHour = 2 * PER_CHUNK + POPULAR;
const TOTAL = HOURS * perHour;
const hostK = HOUR_TOP_K[1]!;
const dayK = DAY_TOP_K[1]!;

async function sumOf(kind: number, nodeId: string, where = "") {
  return env.DB.prepare(
    `SELECT COALESCE(SUM(requests), 0) AS requests, COALESCE(SUM(blocked), 0) AS blocked,
            COALESCE(SUM(bytes_out), 0) AS bytesOut, COUNT(*) AS rows
     FROM rollups WHERE kind = ? AND node_id = ? ${where}`,
  )
    .bind(kind, nodeId)
    .first<{ requests: number; blocked: number; bytesOut: number; rows: number }>();
}

async function maxKeysPerBucket(kind: number, nodeId: string) {
  const row = await env.DB.prepare(
    "SELECT MAX(n) AS n FROM (SELECT COUNT(*) AS n FROM rollups WHERE kind = ? AND node_id = ? GROUP BY bucket)",
  )
    .bind(kind, nodeId)
    .first<{ n: number | null }>();
  return row?.n ?? 0;
}

const dayRange = `from=${D}&to=${D + DAY}`;
const summaryOf = async (q: string) =>
  json<{ requests: number; blocked: number; from: number; incomplete: { missing: string }[] }>(
    await call(`/api/v1/reports/summary?${q}`),
    200,
  );
const topOf = async (q: string) =>
  json<{
    rows: { key: string; requests: number }[];
    other: { requests: number } | null;
    topK: { perNodeHour: number; perDay: number };
  }>(await call(`/api/v1/reports/top?by=host&limit=1000&${q}`), 200);

describe("bounded report storage", async () => {
  const node = await enrollNode();
  let seq = 0;
  for (let h = 0; h < HOURS; h++) {
    const ts = (m: number) => new Date(D + h * HOUR + m * 60_000).toISOString();
    const first = Array.from({ length: PER_CHUNK }, (_, i) =>
      record({ ts: ts(1), host: `h${h}-a${i}.example`, bytesOut: 2 }),
    );
    const popular = Array.from({ length: POPULAR }, (_, i) =>
      record({
        ts: ts(2),
        host: "popular.example",
        bytesOut: 2,
        ...(i % 5 === 0 ? { action: "block", status: 403, rule: "r" } : {}),
      }),
    );
    const second = Array.from({ length: PER_CHUNK }, (_, i) =>
      record({ ts: ts(30), host: `h${h}-b${i}.example`, bytesOut: 2 }),
    );
    await uploadChunk(node.nodeToken, `cp.${++seq}`, [...first, ...popular]);
    await uploadChunk(node.nodeToken, `cp.${++seq}`, second);
  }
  // A hole in the chunk sequence (cp.31 never sent), to be reported before and after compaction.
  await uploadChunk(node.nodeToken, `cp.${seq + 2}`, [record({ ts: new Date(D + 20 * HOUR).toISOString() })]);
  const total = TOTAL + 1;

  it("caps every node-hour at its top K hosts and folds the rest into (other), totals exact", async () => {
    expect(await maxKeysPerBucket(KIND.hostHour, node.nodeId)).toBe(hostK + 1);
    expect(await sumOf(KIND.hostHour, node.nodeId)).toMatchObject({
      requests: total,
      bytesOut: 2 * TOTAL + 1000,
    });
    expect(await sumOf(KIND.hostHour, FLEET)).toMatchObject({ requests: total });
    expect(await sumOf(KIND.hostDay, FLEET)).toMatchObject({ requests: total });
    // The hour's first chunk took 150 places, so its second chunk got the remaining 49.
    expect(
      (await sumOf(KIND.hostHour, node.nodeId, `AND bucket = ${D} AND key = '${OTHER_KEY}'`))?.requests,
    ).toBe(2 * PER_CHUNK + 1 - hostK);
    const top = await topOf(`node=${node.nodeId}&${dayRange}`);
    expect(top.rows[0]).toMatchObject({ key: "popular.example", requests: HOURS * POPULAR });
    expect(top.topK).toEqual({ perNodeHour: hostK, perDay: dayK });
    expect(top.rows.reduce((n, r) => n + r.requests, 0) + (top.other?.requests ?? 0)).toBeLessThanOrEqual(
      total,
    );
    expect((await summaryOf(`node=${node.nodeId}&${dayRange}`)).requests).toBe(total);
  });

  it("compacts hourly rows into day rows after 48 h with exact totals, top-K days and ledger runs", async () => {
    const before = await summaryOf(dayRange);
    const beforeNode = await summaryOf(`node=${node.nodeId}&${dayRange}`);
    const hostsBefore = await topOf(`node=${node.nodeId}&${dayRange}`);
    expect(before.incomplete.map((i) => i.missing)).toContain("chunks cp.31 never arrived");

    await compactRollups(getDb(env.DB), D + 5 * DAY);

    // Hourly dimension rows and per-node minutes are gone; hour totals stay.
    expect((await sumOf(KIND.hostHour, node.nodeId))?.rows).toBe(0);
    expect((await sumOf(KIND.hostHour, FLEET))?.rows).toBe(0);
    expect((await sumOf(KIND.totalMinute, node.nodeId))?.rows).toBe(0);
    expect(await sumOf(KIND.totalHour, node.nodeId)).toMatchObject({ requests: total });
    // Day rows hold every request, at most DAY_TOP_K keys plus (other) per day.
    for (const nodeId of [node.nodeId, FLEET]) {
      expect(await sumOf(KIND.hostDay, nodeId)).toMatchObject({
        requests: total,
        blocked: HOURS * 10,
        bytesOut: 2 * TOTAL + 1000,
      });
      expect(await maxKeysPerBucket(KIND.hostDay, nodeId)).toBe(dayK + 1);
      expect(await sumOf(KIND.ruleDay, nodeId)).toMatchObject({ requests: HOURS * 10 });
    }

    // Reports count the same requests; a range inside a compacted day reads the whole day.
    expect(await summaryOf(dayRange)).toMatchObject({ requests: before.requests, blocked: before.blocked });
    expect(await summaryOf(`node=${node.nodeId}&${dayRange}`)).toMatchObject({
      requests: beforeNode.requests,
    });
    const inside = await summaryOf(`node=${node.nodeId}&from=${D + 3 * HOUR}&to=${D + 6 * HOUR}`);
    expect(inside).toMatchObject({ requests: total, from: D });
    const hosts = await topOf(`node=${node.nodeId}&${dayRange}`);
    expect(hosts.rows[0]).toEqual(hostsBefore.rows[0]);
    expect(hosts.rows).toHaveLength(1000);
    expect(hosts.other?.requests).toBe(
      (await sumOf(KIND.hostDay, node.nodeId, `AND key = '${OTHER_KEY}'`))?.requests,
    );

    // The ledger is one run per stretch of consecutive ids; they stay known and the hole stays named.
    const runs = await env.DB.prepare(
      "SELECT first_seq AS firstSeq, last_seq AS lastSeq, records FROM log_chunk_runs WHERE node_id = ? ORDER BY first_seq",
    )
      .bind(node.nodeId)
      .all();
    expect(runs.results).toEqual([
      { firstSeq: 1, lastSeq: 30, records: TOTAL },
      { firstSeq: 32, lastSeq: 32, records: 1 },
    ]);
    expect(
      await env.DB.prepare("SELECT COUNT(*) AS n FROM log_chunks WHERE node_id = ?")
        .bind(node.nodeId)
        .first("n"),
    ).toBe(0);
    expect(await json(await uploadChunk(node.nodeToken, "cp.7", [record()]), 200)).toEqual({
      accepted: 0,
      duplicate: true,
    });
    expect((await summaryOf(dayRange)).incomplete.map((i) => i.missing)).toContain(
      "chunks cp.31 never arrived",
    );

    // Compacting again changes nothing.
    await compactRollups(getDb(env.DB), D + 5 * DAY);
    expect(await sumOf(KIND.hostDay, node.nodeId)).toMatchObject({ requests: total });
  });

  it("counts a late chunk for a compacted day at once and folds it into the day at the next compaction", async () => {
    const late = Array.from({ length: 40 }, (_, i) =>
      record({ ts: new Date(D + 3 * HOUR).toISOString(), host: `late${i}.example` }),
    );
    await uploadChunk(node.nodeToken, "cp.31", late);
    const expected = total + 40;
    expect((await summaryOf(`node=${node.nodeId}&${dayRange}`)).requests).toBe(expected);
    expect((await summaryOf(dayRange)).requests).toBe(expected);
    // The node's day is read from its day rows and the late hour rows together.
    const hostRows = async () =>
      (await sumOf(KIND.hostDay, node.nodeId))!.requests +
      (await sumOf(KIND.hostHour, node.nodeId))!.requests;
    expect(await hostRows()).toBe(expected);
    await compactRollups(getDb(env.DB), D + 5 * DAY);
    for (const nodeId of [node.nodeId, FLEET]) {
      expect(await sumOf(KIND.hostDay, nodeId)).toMatchObject({ requests: expected });
      expect((await sumOf(KIND.hostHour, nodeId))?.rows).toBe(0);
      expect(await maxKeysPerBucket(KIND.hostDay, nodeId)).toBe(dayK + 1);
    }
    expect((await summaryOf(dayRange)).incomplete).toEqual([]);
  });
});
