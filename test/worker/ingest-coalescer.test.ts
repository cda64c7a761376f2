import { abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { foldChunk } from "../../protocol/chunk-tally";
import type { IngestCoalescer } from "../../worker/durable/ingest-coalescer";
import { coalescer, shardOf } from "../../worker/services/ingest-accept";
import { parseRecords } from "../../worker/services/ingest-validate";
import { FLEET, KIND } from "../../worker/services/rollup-kinds";
import { json } from "./helpers/api";
import { enrollNode } from "./helpers/factories";
import { flushIngest, postChunk, record } from "./helpers/logs";

const shardFor = (nodeId: string) => coalescer(env, shardOf(nodeId));

async function totals(nodeId: string) {
  return env.DB.prepare(
    `SELECT COALESCE(SUM(requests), 0) AS requests, COALESCE(SUM(bytes_out), 0) AS bytesOut
     FROM rollups WHERE kind = ? AND node_id = ?`,
  )
    .bind(KIND.totalHour, nodeId)
    .first<{ requests: number; bytesOut: number }>();
}

async function ledger(nodeId: string) {
  const { results } = await env.DB.prepare(
    "SELECT epoch || '.' || seq AS id FROM log_chunks WHERE node_id = ? ORDER BY seq",
  )
    .bind(nodeId)
    .all<{ id: string }>();
  return results.map((r) => r.id);
}

const chunkOf = (n: number, host = "a.example") =>
  Array.from({ length: n }, (_, i) => record({ host, bytesOut: i + 1 }));
const bytesOf = (n: number) => (n * (n + 1)) / 2;

describe("ingest coalescer", () => {
  it("acknowledges a chunk once it is buffered durably, and counts it once after a crash before the flush", async () => {
    const node = await enrollNode();
    expect(await json(await postChunk(node.nodeToken, "c1.1", chunkOf(30)), 200)).toEqual({
      accepted: 30,
      duplicate: false,
    });
    // Acknowledged but not in D1 yet: only the coalescer's storage holds it.
    expect(await ledger(node.nodeId)).toEqual([]);
    expect((await totals(node.nodeId))?.requests).toBe(0);
    const stub = shardFor(node.nodeId);
    expect(await runInDurableObject(stub, (o: IngestCoalescer) => o.pending())).toEqual({
      chunks: 1,
      records: 30,
    });

    await abortAllDurableObjects(); // the crash: memory gone, storage kept
    // The restarted coalescer still knows the id, so the node's retry is a duplicate...
    expect(await json(await postChunk(node.nodeToken, "c1.1", chunkOf(30)), 200)).toEqual({
      accepted: 0,
      duplicate: true,
    });
    // ...and its flush after the restart writes the buffered chunk exactly once.
    expect(await shardFor(node.nodeId).flush()).toBe(30);
    expect(await shardFor(node.nodeId).flush()).toBe(0);
    expect(await totals(node.nodeId)).toEqual({ requests: 30, bytesOut: bytesOf(30) });
    expect(await ledger(node.nodeId)).toEqual(["c1.1"]);
    expect(await json(await postChunk(node.nodeToken, "c1.1", chunkOf(30)), 200)).toEqual({
      accepted: 0,
      duplicate: true,
    });
  });

  it("replays a flush that D1 committed just before a crash without counting anything twice", async () => {
    const node = await enrollNode();
    await postChunk(node.nodeToken, "c2.1", chunkOf(10));
    await postChunk(node.nodeToken, "c2.2", chunkOf(20));
    const stub = shardFor(node.nodeId);
    // D1 commits the batch; the coalescer dies before it forgets the chunks.
    await expect(
      runInDurableObject(stub, (o: IngestCoalescer) =>
        o.flush({
          afterCommit: () => {
            throw new Error("crash after commit");
          },
        }),
      ),
    ).rejects.toThrow("crash after commit");
    await abortAllDurableObjects();
    expect(await runInDurableObject(shardFor(node.nodeId), (o: IngestCoalescer) => o.pending())).toEqual({
      chunks: 2,
      records: 30,
    });
    await postChunk(node.nodeToken, "c2.3", chunkOf(5));
    // The replay hits the ledger's primary key, drops c2.1 and c2.2 (counted) and flushes c2.3.
    await flushIngest();
    expect(await totals(node.nodeId)).toEqual({
      requests: 35,
      bytesOut: bytesOf(10) + bytesOf(20) + bytesOf(5),
    });
    expect(await ledger(node.nodeId)).toEqual(["c2.1", "c2.2", "c2.3"]);
    expect(await runInDurableObject(shardFor(node.nodeId), (o: IngestCoalescer) => o.pending())).toEqual({
      chunks: 0,
      records: 0,
    });
  });

  it("a ledger conflict in a flush drops only the chunk already in the ledger; the others are counted, not lost as duplicates", async () => {
    const node = await enrollNode();
    await postChunk(node.nodeToken, "c3.1", chunkOf(7));
    await postChunk(node.nodeToken, "c3.2", chunkOf(11));
    // c3.1 reached the ledger another way (e.g. an isolate of the previous version during a deploy).
    await env.DB.prepare(
      "INSERT INTO log_chunks (node_id, epoch, seq, records, first_ts, last_ts, received_at) VALUES (?, 'c3', 1, 7, 0, 0, 0)",
    )
      .bind(node.nodeId)
      .run();
    await flushIngest();
    expect(await ledger(node.nodeId)).toEqual(["c3.1", "c3.2"]);
    expect(await totals(node.nodeId)).toEqual({ requests: 11, bytesOut: bytesOf(11) });
  });

  it("merges chunks that arrive within one flush into one row per key, node and fleet", async () => {
    const a = await enrollNode();
    const b = await enrollNode();
    for (let seq = 1; seq <= 3; seq++) {
      await postChunk(a.nodeToken, `m.${seq}`, chunkOf(4, "merge.example"));
      await postChunk(b.nodeToken, `m.${seq}`, chunkOf(2, "merge.example"));
    }
    await flushIngest();
    const rows = async (nodeId: string) =>
      (
        await env.DB.prepare(
          "SELECT requests, bytes_out AS bytesOut FROM rollups WHERE kind = ? AND node_id = ? AND key = 'merge.example'",
        )
          .bind(KIND.hostHour, nodeId)
          .all<{ requests: number; bytesOut: number }>()
      ).results;
    expect(await rows(a.nodeId)).toEqual([{ requests: 12, bytesOut: 3 * bytesOf(4) }]);
    expect(await rows(b.nodeId)).toEqual([{ requests: 6, bytesOut: 3 * bytesOf(2) }]);
    expect(await rows(FLEET)).toEqual([{ requests: 18, bytesOut: 3 * bytesOf(4) + 3 * bytesOf(2) }]);
  });

  it("flushes a burst at once and what follows it within a fifth of a second, a quiet shard at its timer", async () => {
    const node = await enrollNode();
    const stub = shardFor(node.nodeId);
    const alarmIn = () =>
      runInDurableObject(stub, async (_o, state) => (await state.storage.getAlarm())! - Date.now());
    const drained = async () => {
      const deadline = Date.now() + 10_000;
      while ((await runInDurableObject(stub, (o: IngestCoalescer) => o.pending())).records > 0) {
        if (Date.now() > deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return true;
    };
    // Quiet: a small chunk waits for INGEST_FLUSH_MS (10 minutes in these tests).
    await postChunk(node.nodeToken, "b.1", chunkOf(10));
    expect(await alarmIn()).toBeGreaterThan(60_000);
    // A burst (25,000 records buffered) is flushed at once, by the coalescer's own alarm…
    await postChunk(node.nodeToken, "b.2", chunkOf(25_000));
    expect(await drained()).toBe(true);
    // …and the chunk after it is counted without waiting for the timer.
    await postChunk(node.nodeToken, "b.3", chunkOf(10));
    expect(await alarmIn()).toBeLessThanOrEqual(200);
    expect(await drained()).toBe(true);
    expect(await totals(node.nodeId)).toEqual({
      requests: 25_020,
      bytesOut: 2 * bytesOf(10) + bytesOf(25_000),
    });
    expect(await ledger(node.nodeId)).toEqual(["b.1", "b.2", "b.3"]);
  });

  it("counts a chunk that the previous version buffered (a JSON fold in `pending`) once after the deploy", async () => {
    const node = await enrollNode();
    const records = chunkOf(12);
    const fold = foldChunk(parseRecords(`${records.map((r) => JSON.stringify(r)).join("\n")}\n`));
    const stub = shardFor(node.nodeId);
    // The previous version's buffer, as it wrote it.
    await runInDurableObject(stub, (_o: IngestCoalescer, state) => {
      state.storage.sql.exec(`CREATE TABLE pending (
        node_id TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, received_at INTEGER NOT NULL,
        records INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL, fold TEXT NOT NULL,
        archive TEXT, PRIMARY KEY (node_id, epoch, seq))`);
      state.storage.sql.exec(
        "INSERT INTO pending VALUES (?, 'old', 1, ?, 12, ?, ?, ?, ?)",
        node.nodeId,
        Date.now(),
        fold.firstTs,
        fold.lastTs,
        JSON.stringify(fold),
        JSON.stringify({ firstTs: fold.firstTs, lastTs: fold.lastTs, records: 12, bytes: 321, lagMs: 0 }),
      );
    });
    await abortAllDurableObjects(); // the deploy: the new class starts on the old storage
    expect(await runInDurableObject(shardFor(node.nodeId), (o: IngestCoalescer) => o.pending())).toEqual({
      chunks: 1,
      records: 12,
    });
    expect(await shardFor(node.nodeId).flush()).toBe(12);
    expect(await totals(node.nodeId)).toEqual({ requests: 12, bytesOut: bytesOf(12) });
    expect(await ledger(node.nodeId)).toEqual(["old.1"]);
    const indexed = await env.DB.prepare("SELECT records, bytes FROM log_archive WHERE node_id = ?")
      .bind(node.nodeId)
      .first();
    expect(indexed).toEqual({ records: 12, bytes: 321 });
  });
});
