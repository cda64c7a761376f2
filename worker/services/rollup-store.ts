// D1 side of ingestion: the chunk ledger and the rollup upserts a coalescer flush writes in one
// batch (one transaction), so the ledger holds exactly the chunks whose records are counted.
import type { ChunkId } from "../../protocol/chunk-id";
import { admittedId, hourKindOf, KEY_DIMS, type RollupRow } from "./ingest-fold";

// One bound JSON parameter per statement keeps D1's 100-parameter and statement-size limits out
// of the way; ≤ 800 KB of JSON per statement stays well under its 2 MB value limit.
const MAX_JSON_PER_STATEMENT = 800_000;

const UPSERT_ROLLUPS = `INSERT INTO rollups (kind, node_id, bucket, key, requests, blocked, auth, errors, bytes_in, bytes_out)
  SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
         value ->> 6, value ->> 7, value ->> 8, value ->> 9
  FROM json_each(?) WHERE true
  ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests,
    blocked = blocked + excluded.blocked,
    auth = auth + excluded.auth,
    errors = errors + excluded.errors,
    bytes_in = bytes_in + excluded.bytes_in,
    bytes_out = bytes_out + excluded.bytes_out`;

/** Statements that add `items` (JSON-serialisable rows) with `sql`, ≤ 800 KB of JSON each. */
export function jsonStatements(
  d1: D1Database,
  sql: string,
  items: readonly unknown[],
): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  let pending: string[] = [];
  let size = 2;
  const flush = () => {
    if (pending.length) statements.push(d1.prepare(sql).bind(`[${pending.join(",")}]`));
    pending = [];
    size = 2;
  };
  for (const item of items) {
    const json = JSON.stringify(item);
    if (size + json.length + 1 > MAX_JSON_PER_STATEMENT) flush();
    pending.push(json);
    size += json.length + 1;
  }
  flush();
  return statements;
}

export const upsertRollups = (d1: D1Database, rows: readonly RollupRow[]) =>
  jsonStatements(d1, UPSERT_ROLLUPS, rows);

/** A chunk as the ledger records it. */
export interface LedgerEntry {
  nodeId: string;
  epoch: string;
  seq: number;
  records: number;
  firstTs: number;
  lastTs: number;
  receivedAt: number;
}

// A plain INSERT: a chunk already in the ledger fails the whole batch, so a flush replayed after
// a crash (D1 committed, the coalescer never heard) cannot count anything twice.
const INSERT_LEDGER = `INSERT INTO log_chunks (node_id, epoch, seq, records, first_ts, last_ts, received_at)
  SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6
  FROM json_each(?)`;

export function ledgerStatements(d1: D1Database, entries: readonly LedgerEntry[]) {
  return jsonStatements(
    d1,
    INSERT_LEDGER,
    entries.map((e) => [e.nodeId, e.epoch, e.seq, e.records, e.firstTs, e.lastTs, e.receivedAt]),
  );
}

/** Which of these chunks the D1 ledger already holds (as a row or inside a compacted run). */
export async function committedChunks(
  d1: D1Database,
  ids: readonly { nodeId: string; epoch: string; seq: number }[],
): Promise<Set<string>> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 500) {
    const slice = ids.slice(i, i + 500).map((c) => [c.nodeId, c.epoch, c.seq]);
    const { results } = await d1
      .prepare(
        `SELECT j.value ->> 0 AS nodeId, j.value ->> 1 AS epoch, j.value ->> 2 AS seq FROM json_each(?) j
         WHERE EXISTS (SELECT 1 FROM log_chunks c
                       WHERE c.node_id = j.value ->> 0 AND c.epoch = j.value ->> 1 AND c.seq = j.value ->> 2)
            OR EXISTS (SELECT 1 FROM log_chunk_runs r
                       WHERE r.node_id = j.value ->> 0 AND r.epoch = j.value ->> 1
                         AND r.first_seq <= j.value ->> 2 AND r.last_seq >= j.value ->> 2)`,
      )
      .bind(JSON.stringify(slice))
      .all<{ nodeId: string; epoch: string; seq: number }>();
    for (const r of results) found.add(chunkKey(r.nodeId, r));
  }
  return found;
}

export const chunkKey = (nodeId: string, id: ChunkId) => `${nodeId}|${id.epoch}|${id.seq}`;

/** Whether the D1 ledger already counted this chunk (a fresh row or a compacted run). */
export async function chunkExists(d1: D1Database, nodeId: string, id: ChunkId) {
  const row = await d1
    .prepare(
      `SELECT 1 AS hit FROM log_chunks WHERE node_id = ?1 AND epoch = ?2 AND seq = ?3
       UNION ALL
       SELECT 1 FROM (SELECT last_seq FROM log_chunk_runs
                      WHERE node_id = ?1 AND epoch = ?2 AND first_seq <= ?3 ORDER BY first_seq DESC LIMIT 1)
       WHERE last_seq >= ?3
       LIMIT 1`,
    )
    .bind(nodeId, id.epoch, id.seq)
    .first<{ hit: number }>();
  return Boolean(row);
}

/**
 * The keys D1 holds for these node-hours, per dimension (`(other)` included), so a flush after a
 * restart caps exactly as the flushes before it did.
 */
export async function loadAdmittedKeys(
  d1: D1Database,
  nodeHours: readonly { nodeId: string; hour: number }[],
): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const { nodeId, hour } of nodeHours) {
    for (const dim of KEY_DIMS) out.set(admittedId(nodeId, hour, dim), new Set());
  }
  const kinds = new Map(KEY_DIMS.map((dim) => [hourKindOf(dim), dim]));
  for (let i = 0; i < nodeHours.length; i += 50) {
    const slice = nodeHours.slice(i, i + 50);
    const results = await d1.batch(
      slice.map(({ nodeId, hour }) =>
        d1
          .prepare(
            `SELECT kind, key FROM rollups WHERE kind IN (SELECT value FROM json_each(?1)) AND node_id = ?2 AND bucket = ?3`,
          )
          .bind(JSON.stringify([...kinds.keys()]), nodeId, hour),
      ),
    );
    slice.forEach(({ nodeId, hour }, j) => {
      for (const row of results[j]!.results as { kind: number; key: string }[]) {
        out.get(admittedId(nodeId, hour, kinds.get(row.kind)!))!.add(row.key);
      }
    });
  }
  return out;
}
