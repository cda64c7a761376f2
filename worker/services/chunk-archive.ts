import type { ChunkId } from "../../protocol/chunk-id";
import type { ChunkFold } from "../../protocol/chunk-tally";
import type { Db } from "../db/client";
import { inflateChunk } from "./ingest-body";

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
  /**
   * The id of the flush's object holding the chunk's gzip at `offset` (`bytes` long; the key is
   * `batchKey(object)`); null: the chunk is its own object (`archiveKey`).
   */
  object: string | null;
  offset: number | null;
  bytes: number;
}

/**
 * Before 0009, each chunk was its own object:
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
 * The index fields of an accepted chunk. Its gzip is written to R2 by the coalescer's flush, in
 * one object with the rest of that flush (archiveBatch), never one object per chunk: at a chunk
 * every 10 s per node, per-chunk objects would be ~8.6 M R2 writes a day per 1,000 nodes.
 */
export function archiveMeta(
  fold: Pick<ChunkFold, "firstTs" | "lastTs" | "records">,
  lagMs: number,
  gzip: Uint8Array,
): ArchiveMeta {
  return { firstTs: fold.firstTs, lastTs: fold.lastTs, records: fold.records, bytes: gzip.byteLength, lagMs };
}

/** Batched archive objects live under this prefix, by the UTC day and hour of their flush. */
export const BATCH_PREFIX = "logs/b/";

/**
 * A flush object's id as the index stores it: `<flush ms, base36>-<8 random base36>`, 17
 * characters, not the whole key (the full key doubled an index row, 89 → 174 bytes measured):
 * the day and hour of the key follow from the time.
 */
export function batchId(now: number): string {
  const random = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => (b % 36).toString(36)).join("");
  return `${now.toString(36)}-${random}`;
}

/** `logs/b/<yyyy-mm-dd>/<hh>/<id>.ndjson.gz`, the R2 key of the flush object `id`. */
export function batchKey(id: string): string {
  const at = new Date(Number.parseInt(id.slice(0, id.indexOf("-")), 36)).toISOString();
  return `${BATCH_PREFIX}${at.slice(0, 10)}/${at.slice(11, 13)}/${id}.ndjson.gz`;
}

/**
 * Writes one flush's chunk gzips back to back as one object (a multi-member gzip: inflated whole
 * it is the chunks' NDJSON in order) and answers its id (batchId) and each chunk's offset. Written before
 * the flush's D1 batch, so an indexed chunk is always readable; a flush that then fails leaves an
 * object nothing names, which pruneArchive deletes with its day.
 */
export async function archiveBatch(
  bucket: R2Bucket,
  gzips: readonly Uint8Array[],
  now = Date.now(),
): Promise<{ object: string; offsets: number[] }> {
  const object = batchId(now);
  const offsets: number[] = [];
  let total = 0;
  for (const gzip of gzips) {
    offsets.push(total);
    total += gzip.byteLength;
  }
  const body = new Uint8Array(total);
  for (const [i, gzip] of gzips.entries()) body.set(gzip, offsets[i]!);
  await bucket.put(batchKey(object), body, {
    httpMetadata: { contentType: "application/x-ndjson", contentEncoding: "gzip" },
  });
  return { object, offsets };
}

const INSERT_INDEX = `INSERT INTO log_archive (node_id, epoch, seq, first_ts, last_ts, records, bytes, lag_ms, object, offset)
  SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7,
         value ->> 8, value ->> 9
  FROM json_each(?) ORDER BY key`;

/** Index rows for a flush batch: one bound JSON parameter per 500 chunks (D1's parameter limit). */
export function archiveIndexStatements(
  d1: D1Database,
  entries: readonly ({
    nodeId: string;
    epoch: string;
    seq: number;
    object: string | null;
    offset: number | null;
  } & ArchiveMeta)[],
): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (let i = 0; i < entries.length; i += 500) {
    const rows = entries
      .slice(i, i + 500)
      .map((e) => [
        e.nodeId,
        e.epoch,
        e.seq,
        e.firstTs,
        e.lastTs,
        e.records,
        e.bytes,
        e.lagMs,
        e.object,
        e.offset,
      ]);
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
  const object =
    chunk.object === null
      ? await bucket.get(archiveKey(chunk))
      : await bucket.get(batchKey(chunk.object), {
          range: { offset: chunk.offset ?? 0, length: chunk.bytes },
        });
  if (!object) return null;
  try {
    return inflateChunk(new Uint8Array(await object.arrayBuffer()));
  } catch {
    console.warn(
      "archived chunk unreadable",
      chunk.object === null ? archiveKey(chunk) : batchKey(chunk.object),
      chunk.offset,
    );
    return null;
  }
}

const PRUNE_BATCH = 1000; // R2 deletes at most 1,000 keys per call
const PRUNE_MAX_BATCHES = 50;

/**
 * Cron: deletes archived chunks whose newest record is older than `days`: index rows, then the
 * objects of chunks archived one per object (before 0009), then every flush object of a day that
 * ended two days before the cutoff (none of its chunks can be newer than the cutoff: a node's clock
 * runs at most an hour ahead), which also takes any object a failed flush left unnamed. Bounded
 * per run (50,000 rows and 50,000 objects); the next hourly run continues.
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
        `SELECT id, node_id AS nodeId, epoch, seq, first_ts AS firstTs, object FROM log_archive
         WHERE first_ts < ?1 AND last_ts < ?1 ORDER BY first_ts LIMIT ${PRUNE_BATCH}`,
      )
      .bind(cutoff)
      .all<Pick<ArchivedChunk, "id" | "nodeId" | "epoch" | "seq" | "firstTs" | "object">>();
    if (results.length === 0) break;
    const ownObjects = results.filter((r) => r.object === null).map(archiveKey);
    if (ownObjects.length) await bucket.delete(ownObjects);
    await d1
      .prepare("DELETE FROM log_archive WHERE id IN (SELECT value FROM json_each(?))")
      .bind(JSON.stringify(results.map((r) => r.id)))
      .run();
    deleted += results.length;
    if (results.length < PRUNE_BATCH) break;
  }
  return { deleted, objects: await pruneBatchObjects(bucket, cutoff) };
}

/** Flush objects of the days before `cutoff`'s day − 2, newest day first, 30 days back at most. */
async function pruneBatchObjects(bucket: R2Bucket, cutoff: number): Promise<number> {
  let deleted = 0;
  let budget = PRUNE_MAX_BATCHES;
  const lastDay = Math.floor(cutoff / DAY) - 2;
  for (let day = lastDay; day > lastDay - 30 && budget > 0; day--) {
    const prefix = `${BATCH_PREFIX}${new Date(day * DAY).toISOString().slice(0, 10)}/`;
    for (; budget > 0; budget--) {
      const listed = await bucket.list({ prefix, limit: PRUNE_BATCH });
      if (!listed.objects.length) break;
      await bucket.delete(listed.objects.map((o) => o.key));
      deleted += listed.objects.length;
      if (!listed.truncated) break;
    }
  }
  return deleted;
}
