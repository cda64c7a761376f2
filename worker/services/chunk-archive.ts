import { gunzipSync } from "node:zlib";
import type { ChunkId } from "../../protocol/chunk-id";
import type { ChunkFold } from "../../protocol/chunk-tally";
import { CHUNK_LIMITS } from "../../protocol/wire";
import type { Db } from "../db/client";

const DAY = 24 * 3_600_000;
/** Chunks whose records span more than this are "wide": found through a partial index. */
export const WIDE_CHUNK_MS = 3_600_000;

/** An archived chunk as the index names it; the R2 key follows from these fields. */
export interface ArchivedChunk {
  id: number;
  nodeId: string;
  epoch: string;
  seq: number;
  firstTs: number;
  lastTs: number;
  records: number;
  lagMs: number;
}

/**
 * `logs/<yyyy-mm-dd>/<hh>/<node>/<epoch>.<seq>.ndjson.gz`, by the chunk's first record (UTC):
 * the same chunk always maps to the same key, so a retry that races its first upload rewrites
 * identical bytes, and a day's objects share a prefix for listing by hand.
 */
export function archiveKey(c: Pick<ArchivedChunk, "nodeId" | "epoch" | "seq" | "firstTs">): string {
  const at = new Date(c.firstTs).toISOString();
  return `logs/${at.slice(0, 10)}/${at.slice(11, 13)}/${c.nodeId}/${c.epoch}.${c.seq}.ndjson.gz`;
}

/** What the archive index row holds beyond the chunk id. */
export interface ArchiveMeta {
  firstTs: number;
  lastTs: number;
  records: number;
  bytes: number;
  lagMs: number;
}

/**
 * Puts the chunk's gzip bytes in R2 and returns its index fields. The caller hands them to the
 * ingest coalescer, whose flush writes the index row in the same D1 batch as the ledger row: the
 * index names a chunk exactly when it was counted. The object is written first, so an indexed
 * chunk is always readable; a chunk that is then not accepted (a 503, a concurrent duplicate)
 * leaves an object the retry overwrites with the same bytes under the same key.
 */
export async function archiveChunk(input: {
  bucket: R2Bucket;
  nodeId: string;
  id: ChunkId;
  gzip: Uint8Array;
  fold: Pick<ChunkFold, "firstTs" | "lastTs" | "records">;
  lagMs: number;
}): Promise<ArchiveMeta> {
  const { firstTs, lastTs, records } = input.fold;
  const row = { nodeId: input.nodeId, epoch: input.id.epoch, seq: input.id.seq, firstTs };
  await input.bucket.put(archiveKey(row), input.gzip, {
    httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
  });
  return { firstTs, lastTs, records, bytes: input.gzip.byteLength, lagMs: input.lagMs };
}

const INSERT_INDEX = `INSERT INTO log_archive (node_id, epoch, seq, first_ts, last_ts, records, bytes, lag_ms)
  SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7
  FROM json_each(?) ORDER BY key`;

/** Index rows for a flush batch: one bound JSON parameter per 500 chunks (D1's parameter limit). */
export function archiveIndexStatements(
  d1: D1Database,
  entries: readonly ({ nodeId: string; epoch: string; seq: number } & ArchiveMeta)[],
): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < entries.length; i += 500) {
    const rows = entries
      .slice(i, i + 500)
      .map((e) => [e.nodeId, e.epoch, e.seq, e.firstTs, e.lastTs, e.records, e.bytes, e.lagMs]);
    statements.push(d1.prepare(INSERT_INDEX).bind(JSON.stringify(rows)));
  }
  return statements;
}

/**
 * An archived chunk's NDJSON, inflated. One chunk at a time, never a whole window, and within the
 * ingest limit (16 MiB inflated): a chunk counted from its node's tally was archived without being
 * inflated, so its object may be anything a node sent. A missing object (expired while a search
 * ran) or one that is not gzip within the limit is null.
 */
export async function archivedText(bucket: R2Bucket, chunk: ArchivedChunk): Promise<string | null> {
  const object = await bucket.get(archiveKey(chunk));
  if (!object) return null;
  try {
    const inflated = gunzipSync(new Uint8Array(await object.arrayBuffer()), {
      maxOutputLength: CHUNK_LIMITS.maxInflatedBytes,
    });
    return new TextDecoder().decode(inflated);
  } catch {
    console.warn("archived chunk unreadable", archiveKey(chunk));
    return null;
  }
}

const PRUNE_BATCH = 1000; // R2 deletes at most 1,000 keys per call
const PRUNE_MAX_BATCHES = 50;

/**
 * Cron: deletes archived chunks whose newest record is older than `days`, objects first and
 * then their index rows, so the index never names an object that was never written. Bounded per
 * run (50,000 chunks); the next hourly run continues.
 */
export async function pruneArchive({
  db,
  bucket,
  days,
  now = Date.now(),
}: {
  db: Db;
  bucket: R2Bucket;
  days: number;
  now?: number;
}) {
  const cutoff = now - days * DAY;
  const d1 = db.$client;
  let deleted = 0;
  for (let round = 0; round < PRUNE_MAX_BATCHES; round++) {
    const { results } = await d1
      .prepare(
        `SELECT id, node_id AS nodeId, epoch, seq, first_ts AS firstTs FROM log_archive
         WHERE first_ts < ?1 AND last_ts < ?1 ORDER BY first_ts LIMIT ${PRUNE_BATCH}`,
      )
      .bind(cutoff)
      .all<Pick<ArchivedChunk, "id" | "nodeId" | "epoch" | "seq" | "firstTs">>();
    if (results.length === 0) break;
    await bucket.delete(results.map(archiveKey));
    await d1
      .prepare("DELETE FROM log_archive WHERE id IN (SELECT value FROM json_each(?))")
      .bind(JSON.stringify(results.map((r) => r.id)))
      .run();
    deleted += results.length;
    if (results.length < PRUNE_BATCH) break;
  }
  return { deleted };
}
