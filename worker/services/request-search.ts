// Request search and export over the archived raw chunks: the window, which chunks hold it (the
// archive index), and the paging. Filters and rows: request-match.ts; cursors: request-cursor.ts.
import { readLogRecord } from "../../protocol/log-record-check";
import type { LogRecord } from "../../protocol/wire";
import type { Db } from "../db/client";
import { AppError } from "../errors";
import { type ArchivedChunk, archivedText, WIDE_CHUNK_MS } from "./chunk-archive";
import {
  compareKeys,
  decodeExportCursor,
  decodeSearchCursor,
  type ExportKey,
  encodeCursor,
  type SearchKey,
} from "./request-cursor";
import {
  hostnames,
  matcherFor,
  type RequestFilter,
  type RequestRow,
  recordTime,
  toRow,
} from "./request-match";
import { checkNodeOrSite, unknownSite } from "./site-scope";
import { findSite } from "./sites";

export type { Action, RequestFilter, RequestRow } from "./request-match";

const HOUR = 3_600_000;
/** Search and export read raw chunks: a window is at most this long. */
export const MAX_WINDOW_MS = 6 * HOUR;
export const DEFAULT_WINDOW_MS = HOUR;
/**
 * Chunks read per search page; past it the page ends early with a cursor (`partial`). Chunks that
 * straddle the page's upper bound (about one per node) are read beyond it, so every page moves on.
 */
export const SEARCH_MAX_CHUNKS = 200;
/** Chunks streamed per export response; past it the end line says `more`. */
export const EXPORT_MAX_CHUNKS = 1000;
const INDEX_PAGE = 256;
// Larger than any line number (≤ 50,000 records per chunk): "every line of this chunk".
const ALL_LINES = 1_000_000_000;

/** Defaults to the last hour; refuses an inverted or too long window (400, naming the parameter). */
export function resolveWindow(from: number | undefined, to: number | undefined, now = Date.now()) {
  const end = to ?? (from !== undefined ? from + DEFAULT_WINDOW_MS : now);
  const start = from ?? end - DEFAULT_WINDOW_MS;
  if (start >= end) {
    throw new AppError("VALIDATION_FAILED", "query.from: must be before to", [
      { path: "query.from", message: "must be before to" },
    ]);
  }
  if (end - start > MAX_WINDOW_MS) {
    const message = `the window is at most ${MAX_WINDOW_MS / HOUR} h (request search reads raw chunks); got ${((end - start) / HOUR).toFixed(1)} h`;
    throw new AppError("VALIDATION_FAILED", `query.from: ${message}`, [{ path: "query.from", message }]);
  }
  return { from: start, to: end };
}

// --- the index: which chunks hold records of the window ---------------------------------------

const CHUNK_COLUMNS =
  "id, node_id AS nodeId, epoch, seq, first_ts AS firstTs, last_ts AS lastTs, records, lag_ms AS lagMs, object, offset, bytes";
// Chunks with a record in [?from, ?to): normal chunks span ≤ 1 h, so first_ts ≥ from − 1 h bounds
// the index range; wide ones come from their partial index.
// `site` is the number of the site's parameter (each query has its own).
const inWindow = (site: number) => `((first_ts >= ?1 - ${WIDE_CHUNK_MS} AND first_ts < ?2)
    OR (last_ts - first_ts > ${WIDE_CHUNK_MS} AND last_ts >= ?1 AND first_ts < ?2))
  AND last_ts >= ?1 AND (?3 IS NULL OR node_id = ?3)
  AND (?${site} IS NULL OR node_id IN (SELECT id FROM nodes WHERE site = ?${site}))`;

type Candidate = ArchivedChunk & { eff: number };

/**
 * Chunks in the order a newest-first search needs them: by `eff`, the newest record time a chunk
 * can still contribute below `bound`, then id. Paged through the index with a keyset.
 */
async function* chunksNewestFirst(db: Db, f: RequestFilter, bound: SearchKey): AsyncGenerator<Candidate> {
  let after: [number, number] = [Number.MAX_SAFE_INTEGER, 0];
  for (;;) {
    const { results } = await db.$client
      .prepare(
        `SELECT * FROM (
           SELECT ${CHUNK_COLUMNS}, MIN(last_ts, CASE WHEN id > ?5 THEN ?4 - 1 ELSE ?4 END) AS eff
           FROM log_archive WHERE ${inWindow(8)})
         WHERE eff >= firstTs AND eff >= ?1 AND (eff < ?6 OR (eff = ?6 AND id < ?7))
         ORDER BY eff DESC, id DESC LIMIT ${INDEX_PAGE}`,
      )
      .bind(f.from, f.to, f.node ?? null, bound[0], bound[1], after[0], after[1], f.site ?? null)
      .all<Candidate>();
    yield* results;
    const last = results.at(-1);
    if (!last || results.length < INDEX_PAGE) return;
    after = [last.eff, last.id];
  }
}

async function* chunksInOrder(db: Db, f: RequestFilter, afterId: number): AsyncGenerator<ArchivedChunk> {
  let after = afterId;
  for (;;) {
    // `+id` keeps SQLite on the first_ts index (a window is small) instead of walking the primary key.
    const { results } = await db.$client
      .prepare(
        `SELECT ${CHUNK_COLUMNS} FROM log_archive WHERE ${inWindow(5)} AND +id > ?4 ORDER BY +id LIMIT ${INDEX_PAGE}`,
      )
      .bind(f.from, f.to, f.node ?? null, after, f.site ?? null)
      .all<ArchivedChunk>();
    yield* results;
    const last = results.at(-1);
    if (!last || results.length < INDEX_PAGE) return;
    after = last.id;
  }
}

/** A node or a site, not both; a site that does not exist is a 400 (site-scope.ts, as reports). */
async function checkScope(db: Db, f: RequestFilter) {
  checkNodeOrSite(f, "a search");
  if (f.site && !(await findSite(db, f.site))) throw unknownSite(f.site);
}

// --- search -----------------------------------------------------------------------------------

interface Hit {
  key: SearchKey;
  record: LogRecord;
  nodeId: string;
}

/** Keeps the `size` largest keys, ascending (hits[0] is the smallest kept). */
class TopHits {
  readonly hits: Hit[] = [];
  constructor(readonly size: number) {}
  get full() {
    return this.hits.length >= this.size;
  }
  /** No hit older than this can be kept (a cheap pre-test on the time alone). */
  get floor() {
    return this.full ? this.hits[0]!.key[0] : Number.NEGATIVE_INFINITY;
  }
  /** Could a hit with this key still be kept? */
  admits(key: readonly number[]) {
    return !this.full || compareKeys(key, this.hits[0]!.key) > 0;
  }
  add(hit: Hit) {
    let lo = 0;
    let hi = this.hits.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareKeys(this.hits[mid]!.key, hit.key) < 0) lo = mid + 1;
      else hi = mid;
    }
    this.hits.splice(lo, 0, hit);
    if (this.hits.length > this.size) this.hits.shift();
  }
}

export interface SearchPage {
  from: number;
  to: number;
  rows: RequestRow[];
  /** Pass back as `cursor` for the next (older) page; null when there is none. */
  nextCursor: string | null;
  /** The page stopped at the per-page chunk cap before it was full; more may follow the cursor. */
  partial: boolean;
  scanned: { chunks: number; records: number };
}

/**
 * Newest first over (ts, archive id, line), a total order, so a cursor (the last key shown)
 * resumes exactly. Chunks are read in order of the newest record they can still hold; once the
 * page is full and the next chunk cannot beat its oldest row, reading stops. At the chunk cap the
 * page keeps only rows no unread chunk can beat and the cursor points at the first unread chunk.
 */
export async function searchRequests(input: {
  db: Db;
  bucket: R2Bucket;
  filter: RequestFilter;
  limit: number;
  cursor?: string;
  maxChunks?: number;
}): Promise<SearchPage> {
  const { db, bucket, filter: f, limit } = input;
  await checkScope(db, f);
  const maxChunks = input.maxChunks ?? SEARCH_MAX_CHUNKS;
  let bound: SearchKey = [f.to, 0, 0]; // every record with ts < to
  if (input.cursor) {
    const cursor = decodeSearchCursor(input.cursor);
    if (compareKeys(cursor, bound) < 0) bound = cursor;
  }
  const match = matcherFor(f);
  const top = new TopHits(limit + 1);
  let chunks = 0;
  let records = 0;
  let frontier: SearchKey | null = null;
  for await (const chunk of chunksNewestFirst(db, f, bound)) {
    const newest: SearchKey = [chunk.eff, chunk.id, ALL_LINES];
    if (top.full && !top.admits(newest)) break;
    // Chunks cut by the bound (they straddle the cursor or `to`) are always read: their `eff` is
    // only a ceiling, and stopping at one could leave the next page where this one started.
    if (chunks >= maxChunks && chunk.eff === chunk.lastTs) {
      frontier = newest;
      break;
    }
    chunks++;
    const text = (await archivedText(bucket, chunk)) ?? "";
    // Backwards from the newest line: once a record is older than the page's floor by more than
    // the chunk's lag, every line before it is older than the floor too, so the scan stops.
    let end = text.endsWith("\n") ? text.length - 1 : text.length;
    // Lines as archived, not the index's record count: a chunk counted from its tally was archived
    // unread, and its line numbers (the cursor's) must be the export's.
    for (let line = lineCount(text) - 1; line >= 0 && end > 0; line--) {
      const start = text.lastIndexOf("\n", end - 1) + 1;
      const ts = recordTime(text, start, end);
      const to = end;
      end = start - 1;
      records++;
      if (ts + chunk.lagMs < Math.max(f.from, top.floor)) break;
      if (!(ts >= f.from && ts < f.to) || ts < top.floor) continue;
      const key: SearchKey = [ts, chunk.id, line];
      if (compareKeys(key, bound) >= 0 || !top.admits(key)) continue;
      const json = text.slice(start, to);
      if (!match.maybe(json)) continue;
      const record = readLogRecord(json);
      if (record && match.exact(record)) top.add({ key, record, nodeId: chunk.nodeId });
    }
  }
  let hits = top.hits.slice().reverse();
  let nextCursor: string | null = null;
  let partial = false;
  if (frontier) {
    // Only rows newer than anything an unread chunk may hold are final.
    const edge = frontier;
    hits = hits.filter((h) => compareKeys(h.key, edge) > 0);
    if (hits.length < limit) {
      partial = true;
      nextCursor = encodeCursor("s", frontier);
    }
  }
  if (hits.length > limit || (frontier && hits.length === limit)) {
    hits = hits.slice(0, limit);
    nextCursor = encodeCursor("s", hits.at(-1)!.key);
  }
  const names = await hostnames(db);
  return {
    from: f.from,
    to: f.to,
    rows: hits.map((h) => toRow(h.record, h.nodeId, names)),
    nextCursor,
    partial,
    scanned: { chunks, records },
  };
}

// --- export -----------------------------------------------------------------------------------

/**
 * NDJSON lines of the filter in acceptance order (archive id, line): each record line carries
 * `nodeId`, `node` and its own `cursor`; the last line is `{"end":true,"more":…,"cursor":…}`. A
 * collector resumes from the last cursor it stored; a stream cut short lacks the end line.
 */
export async function* exportRequests(input: {
  db: Db;
  bucket: R2Bucket;
  filter: RequestFilter;
  cursor?: string;
  maxChunks?: number;
}): AsyncGenerator<string> {
  const { db, bucket, filter: f } = input;
  const maxChunks = input.maxChunks ?? EXPORT_MAX_CHUNKS;
  let position: ExportKey = input.cursor ? decodeExportCursor(input.cursor) : [0, ALL_LINES];
  await checkScope(db, f);
  const match = matcherFor(f);
  const names = await hostnames(db);
  let chunks = 0;
  let more = false;
  // The cursor's own chunk is re-read past its line; then every later one in order.
  const start = position[1] >= ALL_LINES ? position[0] : position[0] - 1;
  for await (const chunk of chunksInOrder(db, f, start)) {
    if (chunks === maxChunks) {
      more = true;
      break;
    }
    chunks++;
    const skipThrough = chunk.id === position[0] ? position[1] : -1;
    const node = names.get(chunk.nodeId) ?? chunk.nodeId;
    const text = (await archivedText(bucket, chunk)) ?? "";
    let batch = "";
    let line = 0;
    for (let start = 0; start < text.length; line++) {
      let end = text.indexOf("\n", start);
      if (end === -1) end = text.length;
      const from = start;
      start = end + 1;
      if (line <= skipThrough) continue;
      const ts = recordTime(text, from, end);
      if (!(ts >= f.from && ts < f.to)) continue;
      const json = text.slice(from, end);
      if (!match.maybe(json)) continue;
      const record = readLogRecord(json);
      if (!record || !match.exact(record)) continue;
      batch += `${JSON.stringify({ ...record, nodeId: chunk.nodeId, node, cursor: encodeCursor("e", [chunk.id, line]) })}\n`;
      if (batch.length > 64 * 1024) {
        yield batch;
        batch = "";
      }
    }
    if (batch) yield batch;
    position = [chunk.id, ALL_LINES];
  }
  yield `${JSON.stringify({ end: true, more, cursor: encodeCursor("e", position) })}\n`;
}

/** The lines of an archived chunk's text (a final newline ends the last line). */
function lineCount(text: string): number {
  let lines = 0;
  for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) lines++;
  return text.length > 0 && !text.endsWith("\n") ? lines + 1 : lines;
}
