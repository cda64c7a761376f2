import { and, eq } from "drizzle-orm";
import { CHUNK_LIMITS, LogRecord } from "../../protocol/wire";
import type { Db } from "../db/client";
import { logChunks } from "../db/schema";
import { AppError, formatPath } from "../errors";
import { DAY, FLEET, HOUR, KIND, MINUTE } from "./rollup-kinds";

export interface ChunkId {
  epoch: string;
  seq: number;
}

export function parseChunkId(header: string | undefined): ChunkId {
  const match = /^([0-9A-Za-z_-]{1,40})\.(\d{1,15})$/.exec(header ?? "");
  if (!match) {
    throw new AppError("VALIDATION_FAILED", "X-Fleetgate-Chunk must be <epoch>.<seq>", [
      { path: "headers.x-fleetgate-chunk", message: `got ${JSON.stringify(header ?? null)}` },
    ]);
  }
  return { epoch: match[1]!, seq: Number(match[2]) };
}

async function readCapped(
  stream: ReadableStream<Uint8Array>,
  cap: number,
  what: string,
): Promise<Uint8Array[]> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return parts;
    total += value.byteLength;
    if (total > cap) {
      await reader.cancel();
      throw new AppError("PAYLOAD_TOO_LARGE", `${what} exceeds ${cap} bytes; split the chunk`);
    }
    parts.push(value);
  }
}

/**
 * Reads a gzip NDJSON body with both limits enforced while streaming: the compressed size as it
 * arrives and the inflated size as it is produced, so a gzip bomb is cut off after 16 MiB.
 */
export async function readChunkBody(body: ReadableStream<Uint8Array> | null, encoding: string | undefined) {
  if (!body) throw new AppError("BAD_REQUEST", "empty body");
  if ((encoding ?? "").toLowerCase() !== "gzip") {
    throw new AppError("UNSUPPORTED_MEDIA_TYPE", "log chunks must be sent with Content-Encoding: gzip");
  }
  const compressed = await readCapped(body, CHUNK_LIMITS.maxGzipBytes, "compressed chunk");
  const source = new Blob(compressed).stream();
  let inflated: Uint8Array[];
  try {
    inflated = await readCapped(
      source.pipeThrough(new DecompressionStream("gzip")),
      CHUNK_LIMITS.maxInflatedBytes,
      "inflated chunk",
    );
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError("BAD_REQUEST", "the body is not valid gzip");
  }
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  try {
    return inflated.map((part, i) => decoder.decode(part, { stream: i < inflated.length - 1 })).join("");
  } catch {
    throw new AppError("BAD_REQUEST", "the chunk is not valid UTF-8");
  }
}

export interface ParsedChunk {
  records: LogRecord[];
  /** Epoch ms of each record's ts, same order. */
  times: Float64Array;
}

/** Parses and validates every line; the first bad one refuses the whole chunk (422, line named). */
export function parseRecords(text: string): ParsedChunk {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0) throw new AppError("CHUNK_INVALID", "the chunk holds no records");
  if (lines.length > CHUNK_LIMITS.maxRecords) {
    throw new AppError(
      "PAYLOAD_TOO_LARGE",
      `a chunk holds at most ${CHUNK_LIMITS.maxRecords} records; split it`,
    );
  }
  const records: LogRecord[] = new Array(lines.length);
  const times = new Float64Array(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const fail = (message: string, path = "") =>
      new AppError("CHUNK_INVALID", `line ${i + 1}: ${path ? `${path}: ` : ""}${message}`, [
        { path: `line ${i + 1}${path ? `.${path}` : ""}`, message },
      ]);
    let value: unknown;
    try {
      value = JSON.parse(lines[i]!);
    } catch {
      throw fail("not JSON");
    }
    const result = LogRecord.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      throw fail(issue.message, formatPath(issue.path));
    }
    const at = Date.parse(result.data.ts);
    if (!Number.isFinite(at)) throw fail("not an ISO 8601 time", "ts");
    records[i] = result.data;
    times[i] = at;
  }
  return { records, times };
}

// [kind, node, bucket, key, requests, blocked, auth, errors, bytesIn, bytesOut, durationMs]
type Row = [number, string, number, string, number, number, number, number, number, number, number];
type Counts = [
  requests: number,
  blocked: number,
  auth: number,
  errors: number,
  bytesIn: number,
  bytesOut: number,
  durationMs: number,
];

const zeroCounts = (): Counts => [0, 0, 0, 0, 0, 0, 0];

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

const HOUR_KINDS = [KIND.hostHour, KIND.clientHour, KIND.userHour, KIND.ruleHour] as const;
const DAY_KINDS = [KIND.hostDay, KIND.clientDay, KIND.userDay, KIND.ruleDay] as const;

/**
 * Folds records into rollup rows (see rollup-kinds.ts for which kinds exist per node and
 * fleet-wide). A chunk comes from one node, so its fleet-wide hour rows equal its node rows and
 * its day rows are sums of its hour rows: each record is folded once per dimension, per hour.
 */
export function aggregate(nodeId: string, { records, times }: ParsedChunk): Row[] {
  // (dimension, hour) → key → counts; dimension 0 is the total (key "").
  const hours = new Map<number, Map<string, Counts>>();
  const minutes = new Map<number, Counts>();
  const fold = (
    target: Counts,
    r: LogRecord,
    blocked: number,
    auth: number,
    errors: number,
    duration: number,
  ) => {
    target[0] += 1;
    target[1] += blocked;
    target[2] += auth;
    target[3] += errors;
    target[4] += r.bytesIn;
    target[5] += r.bytesOut;
    target[6] += duration;
  };
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const at = times[i]!;
    const blocked = r.action === "block" ? 1 : 0;
    const auth = r.action === "auth" ? 1 : 0;
    const errors = r.action === "error" ? 1 : 0;
    const duration = Math.round(r.durationMs);
    const minute = at - (at % MINUTE);
    fold(getOrCreate(minutes, minute, zeroCounts), r, blocked, auth, errors, duration);
    const hour = at - (at % HOUR);
    const keys = ["", r.host.toLowerCase(), r.client, r.user, r.rule];
    for (let dim = 0; dim < keys.length; dim++) {
      const key = keys[dim];
      if (key === undefined) continue;
      const byKey = getOrCreate(hours, hour * 8 + dim, () => new Map<string, Counts>());
      fold(getOrCreate(byKey, key, zeroCounts), r, blocked, auth, errors, duration);
    }
  }
  const rows: Row[] = [];
  const days = new Map<string, Row>();
  for (const [minute, c] of minutes) {
    rows.push([KIND.totalMinute, nodeId, minute, "", ...c], [KIND.totalMinute, FLEET, minute, "", ...c]);
  }
  for (const [slot, byKey] of hours) {
    const dim = slot % 8;
    const hour = (slot - dim) / 8;
    const day = hour - (hour % DAY);
    const hourKind = dim === 0 ? KIND.totalHour : HOUR_KINDS[dim - 1]!;
    const dayKind = dim === 0 ? KIND.totalDay : DAY_KINDS[dim - 1]!;
    for (const [key, c] of byKey) {
      rows.push([hourKind, nodeId, hour, key, ...c], [hourKind, FLEET, hour, key, ...c]);
      const id = `${dayKind}|${day}|${key}`;
      const row = days.get(id);
      if (row) for (let j = 0; j < 7; j++) row[4 + j] = (row[4 + j] as number) + c[j]!;
      else days.set(id, [dayKind, FLEET, day, key, ...c]);
    }
  }
  rows.push(...days.values());
  return rows;
}

// One bound JSON parameter per statement keeps D1's 100-parameter and statement-size limits out
// of the way; ≤ 800 KB of JSON per statement stays well under its 2 MB value limit.
const MAX_JSON_PER_STATEMENT = 800_000;

const UPSERT_ROLLUPS = `INSERT INTO rollups (kind, node_id, bucket, key, requests, blocked, auth, errors, bytes_in, bytes_out, duration_ms)
  SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
         value ->> 6, value ->> 7, value ->> 8, value ->> 9, value ->> 10
  FROM json_each(?) WHERE true
  ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests,
    blocked = blocked + excluded.blocked,
    auth = auth + excluded.auth,
    errors = errors + excluded.errors,
    bytes_in = bytes_in + excluded.bytes_in,
    bytes_out = bytes_out + excluded.bytes_out,
    duration_ms = duration_ms + excluded.duration_ms`;

function upsertStatements(d1: D1Database, rows: Row[]): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  let pending: string[] = [];
  let size = 2;
  const flush = () => {
    if (pending.length) statements.push(d1.prepare(UPSERT_ROLLUPS).bind(`[${pending.join(",")}]`));
    pending = [];
    size = 2;
  };
  for (const row of rows) {
    const json = JSON.stringify(row);
    if (size + json.length + 1 > MAX_JSON_PER_STATEMENT) flush();
    pending.push(json);
    size += json.length + 1;
  }
  flush();
  return statements;
}

export async function chunkExists(db: Db, nodeId: string, id: ChunkId) {
  const [row] = await db
    .select({ seq: logChunks.seq })
    .from(logChunks)
    .where(and(eq(logChunks.nodeId, nodeId), eq(logChunks.epoch, id.epoch), eq(logChunks.seq, id.seq)))
    .limit(1);
  return Boolean(row);
}

/**
 * Records the chunk id and all its rollups in one D1 batch (one transaction): a retried chunk
 * fails on the ledger's primary key and changes nothing, so every record is counted once.
 */
export async function ingestChunk(
  db: Db,
  nodeId: string,
  id: ChunkId,
  chunk: ParsedChunk,
  // Written in the same transaction as the ledger row (the archive index, services/chunk-archive.ts).
  alongside: D1PreparedStatement[] = [],
) {
  let firstTs = Number.POSITIVE_INFINITY;
  let lastTs = 0;
  for (const at of chunk.times) {
    if (at < firstTs) firstTs = at;
    if (at > lastTs) lastTs = at;
  }
  const records = chunk.records;
  const d1 = db.$client;
  const ledger = d1
    .prepare(
      "INSERT INTO log_chunks (node_id, epoch, seq, records, first_ts, last_ts, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(nodeId, id.epoch, id.seq, records.length, firstTs, lastTs, Date.now());
  try {
    await d1.batch([ledger, ...alongside, ...upsertStatements(d1, aggregate(nodeId, chunk))]);
  } catch (error) {
    if (/UNIQUE|PRIMARY KEY|constraint/i.test(String((error as Error).message))) {
      return { accepted: 0, duplicate: true };
    }
    throw error;
  }
  return { accepted: records.length, duplicate: false };
}
