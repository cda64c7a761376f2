// The ingest coalescer Durable Object (the class comment below says what it guarantees). One file
// just past 300 lines: accepting, buffering and the flush share one SQLite store and one chain.
import { DurableObject } from "cloudflare:workers";
import type { ChunkFold } from "../../protocol/chunk-tally";
import { config } from "../config";
import { guardBoundParameters } from "../db/client";
import { type ArchiveMeta, archiveBatch, archiveIndexStatements } from "../services/chunk-archive";
import { admittedId, buildRows, decodeFold, type EncodedFold, encodeFold } from "../services/ingest-fold";
import {
  chunkKey,
  committedChunks,
  type LedgerEntry,
  ledgerStatements,
  loadAdmittedKeys,
  upsertRollups,
} from "../services/rollup-store";

/** What the Worker hands over for one accepted chunk. */
export interface BufferedChunk {
  nodeId: string;
  epoch: string;
  seq: number;
  records: number;
  fold: EncodedFold;
  /** The chunk's archive index fields (services/chunk-archive.ts), written in the flush batch. */
  archive: ArchiveMeta;
  /** The chunk's gzip as received: written to R2 with the rest of its flush (archiveBatch). */
  gzip: Uint8Array;
}

export type AcceptAnswer = { accepted: number; duplicate: boolean } | { busy: true };

// Beyond this many buffered records (D1 slower than the fleet, or away) new chunks are refused
// with 503 + Retry-After: the node keeps them in its spool, which is the durability boundary.
const MAX_PENDING_RECORDS = 2_000_000;
// One flush writes at most this much; a backlog drains in several batches back to back.
const MAX_FLUSH_RECORDS = 500_000;
const MAX_FLUSH_CHUNKS = 400;
// A shard holding this many records flushes at once instead of at its timer (schedule()).
const EARLY_FLUSH_RECORDS = 25_000;
// For BURST_HOLD_MS after a flush of at least EARLY_FLUSH_RECORDS (a burst or a backlog: the
// batches merge plenty without waiting), the timer is BURST_FLUSH_MS instead of INGEST_FLUSH_MS,
// so the end of a burst is counted a fifth of a second after it arrived, not a second.
const BURST_FLUSH_MS = 200;
const BURST_HOLD_MS = 5_000;
// …and at most this much archived gzip: one flush is one R2 object, built in memory.
const MAX_FLUSH_BYTES = 32 * 1024 * 1024;
// Chunk ids stay in `seen` this long after acceptance. Longer than any request lives, so a retry
// that read the D1 ledger before a flush committed still finds the id here.
const SEEN_KEEP_MS = 60 * 60_000;
const MAX_CACHED_NODE_HOURS = 20_000;

interface PendingRow extends Record<string, SqlStorageValue> {
  node_id: string;
  epoch: string;
  seq: number;
  received_at: number;
  records: number;
  first_ts: number;
  last_ts: number;
  shape: string;
  counts: ArrayBuffer;
  archive_bytes: number | null;
  lag_ms: number | null;
  /** Null for a chunk buffered before 0009: it was archived as its own object on acceptance. */
  gzip: ArrayBuffer | null;
}

/**
 * Buffers accepted log chunks of a shard of nodes durably (its own SQLite storage) and flushes
 * them to D1 merged, about once a second (INGEST_FLUSH_MS), so a busy node's repeated (host, hour)
 * keys and the fleet rows of many nodes become one upsert per flush instead of one per chunk.
 *
 * Exactly once: a chunk is acknowledged only after its id and fold are in this object's storage
 * (the output gate holds the answer until the write is durable); a flush writes the chunks' ledger
 * rows and all their rollups in one D1 batch and only then forgets them here. A crash after D1
 * committed but before they were forgotten replays the flush: the ledger's primary key fails the
 * batch, the chunks already in the ledger are dropped here, the rest flushed again.
 */
export class IngestCoalescer extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private pendingRecords = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private failures = 0;
  // Until when the shard counts as under a burst (schedule()).
  private burstUntil = 0;
  // node|hour|dim → keys D1 holds for that node-hour (loaded once, then kept in step by flushes).
  private readonly admitted = new Map<string, Set<string>>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // One row per buffered chunk; its fold is one compact value (keys as JSON, numbers as bytes).
    this.sql.exec(`CREATE TABLE IF NOT EXISTS buffered (
      node_id TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, received_at INTEGER NOT NULL,
      records INTEGER NOT NULL, first_ts INTEGER NOT NULL, last_ts INTEGER NOT NULL,
      shape TEXT NOT NULL, counts BLOB NOT NULL, archive_bytes INTEGER, lag_ms INTEGER, gzip BLOB,
      PRIMARY KEY (node_id, epoch, seq))`);
    // A buffer made before the archive moved into the flush has no gzip column (its chunks are
    // archived already); its rows flush with a null gzip.
    const columns = this.sql.exec("SELECT name FROM pragma_table_info('buffered')").toArray();
    if (!columns.some((c) => c.name === "gzip")) this.sql.exec("ALTER TABLE buffered ADD COLUMN gzip BLOB");
    this.adoptLegacyBuffer();
    this.sql.exec(`CREATE TABLE IF NOT EXISTS seen (
      node_id TEXT NOT NULL, epoch TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,
      PRIMARY KEY (node_id, epoch, seq)) WITHOUT ROWID`);
    this.pendingRecords = Number(
      this.sql.exec("SELECT COALESCE(SUM(records), 0) AS n FROM buffered").one().n,
    );
  }

  private get flushMs() {
    return config(this.env).ingestFlushMs;
  }

  /**
   * A buffer written by the version before the compact fold (a `pending` table of JSON folds):
   * its chunks move into `buffered` once, so nothing acknowledged is lost across the deploy.
   */
  private adoptLegacyBuffer() {
    const legacy = this.sql
      .exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pending'")
      .toArray();
    if (!legacy.length) return;
    this.ctx.storage.transactionSync(() => {
      for (const row of this.sql.exec("SELECT * FROM pending ORDER BY rowid")) {
        const fold = JSON.parse(String(row.fold)) as ChunkFold;
        const archive = row.archive ? (JSON.parse(String(row.archive)) as ArchiveMeta) : null;
        const encoded = encodeFold(fold);
        this.sql.exec(
          "INSERT OR IGNORE INTO buffered (node_id, epoch, seq, received_at, records, first_ts, last_ts, shape, counts, archive_bytes, lag_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          row.node_id,
          row.epoch,
          row.seq,
          row.received_at,
          row.records,
          row.first_ts,
          row.last_ts,
          encoded.shape,
          encoded.counts,
          archive?.bytes ?? null,
          archive?.lagMs ?? null,
        );
      }
      this.sql.exec("DROP TABLE pending");
    });
  }

  /**
   * Takes one chunk: a duplicate if this shard has seen its id, busy if the buffer is full,
   * otherwise stored durably and scheduled for the next flush.
   */
  async accept(chunk: BufferedChunk): Promise<AcceptAnswer> {
    const { nodeId, epoch, seq, records, fold, archive, gzip } = chunk;
    const known = this.sql
      .exec("SELECT 1 FROM seen WHERE node_id = ? AND epoch = ? AND seq = ?", nodeId, epoch, seq)
      .toArray();
    if (known.length) return { accepted: 0, duplicate: true };
    if (this.pendingRecords > 0 && this.pendingRecords + records > MAX_PENDING_RECORDS) return { busy: true };
    const now = Date.now();
    this.sql.exec("INSERT INTO seen (node_id, epoch, seq, at) VALUES (?, ?, ?, ?)", nodeId, epoch, seq, now);
    this.sql.exec(
      "INSERT INTO buffered (node_id, epoch, seq, received_at, records, first_ts, last_ts, shape, counts, archive_bytes, lag_ms, gzip) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      nodeId,
      epoch,
      seq,
      now,
      records,
      archive.firstTs,
      archive.lastTs,
      fold.shape,
      fold.counts,
      archive.bytes,
      archive.lagMs,
      gzip,
    );
    this.pendingRecords += records;
    await this.schedule(now);
    return { accepted: records, duplicate: false };
  }

  /**
   * The next flush: INGEST_FLUSH_MS after the first chunk it will hold, or now once the buffer
   * holds EARLY_FLUSH_RECORDS (a burst or a backlog: waiting would delay reports without merging
   * more than the batch already does). Group commit: under load, flushes run back to back, and for
   * BURST_HOLD_MS after a burst's flush the timer is BURST_FLUSH_MS, so a burst's last chunks are
   * not left waiting a whole INGEST_FLUSH_MS. A steady fleet never flushes that much at once and
   * keeps the one-second merge.
   */
  private async schedule(now: number) {
    if (this.pendingRecords === 0) return;
    const at = await this.ctx.storage.getAlarm();
    // After a failed flush the growing pause stands: a burst must not hammer a failing D1.
    if (this.failures > 0 && at !== null) return;
    const wait = now < this.burstUntil ? Math.min(BURST_FLUSH_MS, this.flushMs) : this.flushMs;
    const due = this.pendingRecords >= EARLY_FLUSH_RECORDS ? now : now + wait;
    if (at === null || at > due) await this.ctx.storage.setAlarm(due);
  }

  override async alarm() {
    try {
      const flushed = await this.flush();
      if (flushed >= EARLY_FLUSH_RECORDS) this.burstUntil = Date.now() + BURST_HOLD_MS;
      this.failures = 0;
      await this.schedule(Date.now());
      this.sql.exec(
        "DELETE FROM seen WHERE at < ? AND NOT EXISTS (SELECT 1 FROM buffered p WHERE p.node_id = seen.node_id AND p.epoch = seen.epoch AND p.seq = seen.seq)",
        Date.now() - SEEN_KEEP_MS,
      );
    } catch (error) {
      // D1 away or failing: everything stays buffered; try again with a growing pause.
      this.failures++;
      console.error("ingest flush failed", String(error));
      await this.ctx.storage.setAlarm(Date.now() + Math.min(60_000, this.flushMs * 2 ** this.failures));
    }
  }

  /** Writes every buffered chunk to D1; resolves with the records flushed. Flushes run one at a time. */
  flush(options: { afterCommit?: () => void } = {}): Promise<number> {
    const run = this.chain.then(() => this.drain(options));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Buffered chunks and records (for tests and the bench). */
  pending(): { chunks: number; records: number } {
    const row = this.sql
      .exec("SELECT COUNT(*) AS chunks, COALESCE(SUM(records), 0) AS records FROM buffered")
      .one();
    return { chunks: Number(row.chunks), records: Number(row.records) };
  }

  private async drain(options: { afterCommit?: () => void }): Promise<number> {
    let flushed = 0;
    for (;;) {
      const batch = this.nextBatch();
      if (!batch.length) return flushed;
      flushed += await this.flushBatch(batch, options);
    }
  }

  private nextBatch(): PendingRow[] {
    const batch: PendingRow[] = [];
    let records = 0;
    let bytes = 0;
    for (const row of this.sql.exec<PendingRow>(
      "SELECT node_id, epoch, seq, received_at, records, first_ts, last_ts, shape, counts, archive_bytes, lag_ms, gzip FROM buffered ORDER BY rowid LIMIT ?",
      MAX_FLUSH_CHUNKS,
    )) {
      const size = row.gzip?.byteLength ?? 0;
      if (batch.length && (records + row.records > MAX_FLUSH_RECORDS || bytes + size > MAX_FLUSH_BYTES))
        break;
      batch.push(row);
      records += row.records;
      bytes += size;
    }
    return batch;
  }

  private async flushBatch(batch: PendingRow[], options: { afterCommit?: () => void }): Promise<number> {
    const d1 = guardBoundParameters(this.env.DB);
    const chunks = batch.map((row) => ({
      nodeId: row.node_id,
      fold: decodeFold(
        { records: row.records, firstTs: row.first_ts, lastTs: row.last_ts },
        { shape: row.shape, counts: row.counts },
      ),
    }));
    await this.loadMissingAdmitted(d1, chunks);
    const built = buildRows(chunks, (nodeId, hour, dim) => this.admitted.get(admittedId(nodeId, hour, dim))!);
    const ledger: LedgerEntry[] = batch.map((row) => ({
      nodeId: row.node_id,
      epoch: row.epoch,
      seq: row.seq,
      records: row.records,
      firstTs: row.first_ts,
      lastTs: row.last_ts,
      receivedAt: row.received_at,
    }));
    // The raw chunks first, as one object: the index rows below name it.
    const raw = batch.filter((row) => row.gzip !== null);
    const stored = raw.length
      ? await archiveBatch(
          this.env.LOG_ARCHIVE,
          raw.map((row) => new Uint8Array(row.gzip!)),
        )
      : null;
    const offsets = new Map(raw.map((row, i) => [row, stored!.offsets[i]!]));
    try {
      // Per-chunk D1 rows that must be exactly as durable as the counts belong in this batch.
      const archived = batch.flatMap((row) =>
        row.archive_bytes === null
          ? []
          : [
              {
                nodeId: row.node_id,
                epoch: row.epoch,
                seq: row.seq,
                firstTs: row.first_ts,
                lastTs: row.last_ts,
                records: row.records,
                bytes: row.archive_bytes,
                lagMs: row.lag_ms ?? 0,
                object: offsets.has(row) ? stored!.object : null,
                offset: offsets.get(row) ?? null,
              },
            ],
      );
      await d1.batch([
        ...ledgerStatements(d1, ledger),
        ...archiveIndexStatements(d1, archived),
        ...upsertRollups(d1, built.rows),
      ]);
    } catch (error) {
      this.admitted.clear();
      const done = await committedChunks(
        d1,
        batch.map((row) => ({ nodeId: row.node_id, epoch: row.epoch, seq: row.seq })),
      );
      if (!done.size) throw error;
      // A flush before a crash committed these; they are counted, forget them and retry the rest.
      this.forget(batch.filter((row) => done.has(chunkKey(row.node_id, row))));
      return 0;
    }
    options.afterCommit?.();
    if (this.admitted.size > MAX_CACHED_NODE_HOURS) this.admitted.clear();
    else for (const [id, keys] of built.admitted) this.admitted.set(id, keys);
    this.forget(batch);
    return batch.reduce((n, row) => n + row.records, 0);
  }

  private async loadMissingAdmitted(d1: D1Database, chunks: { nodeId: string; fold: ChunkFold }[]) {
    const missing = new Map<string, { nodeId: string; hour: number }>();
    for (const { nodeId, fold } of chunks) {
      for (const [dim, hour] of fold.hours) {
        if (dim === 0 || this.admitted.has(admittedId(nodeId, hour, dim))) continue;
        missing.set(`${nodeId}|${hour}`, { nodeId, hour });
      }
    }
    if (!missing.size) return;
    const loaded = await loadAdmittedKeys(d1, [...missing.values()]);
    for (const [id, keys] of loaded) this.admitted.set(id, keys);
  }

  private forget(rows: PendingRow[]) {
    if (!rows.length) return;
    this.sql.exec(
      "DELETE FROM buffered WHERE (node_id, epoch, seq) IN (SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(?))",
      JSON.stringify(rows.map((row) => [row.node_id, row.epoch, row.seq])),
    );
    for (const row of rows) this.pendingRecords -= row.records;
  }
}
