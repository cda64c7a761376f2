import { and, eq } from "drizzle-orm";
import { CHUNK_LIMITS, LogRecord } from "../../protocol/wire";
import type { Db } from "../db/client";
import { logChunks } from "../db/schema";
import { AppError, formatPath } from "../errors";

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

export interface ParsedRecord extends LogRecord {
  at: number;
}

/** Parses and validates every line; the first bad one refuses the whole chunk (422, line named). */
export function parseRecords(text: string): ParsedRecord[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length === 0) throw new AppError("CHUNK_INVALID", "the chunk holds no records");
  if (lines.length > CHUNK_LIMITS.maxRecords) {
    throw new AppError(
      "PAYLOAD_TOO_LARGE",
      `a chunk holds at most ${CHUNK_LIMITS.maxRecords} records; split it`,
    );
  }
  const records: ParsedRecord[] = new Array(lines.length);
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
    records[i] = { ...result.data, at };
  }
  return records;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

type Row = [
  dim: string,
  node: string,
  grain: string,
  bucket: number,
  key: string,
  action: string,
  requests: number,
  bytesIn: number,
  bytesOut: number,
  durationMs: number,
];

/** Folds records into rollup rows: totals per minute/hour/day and each dimension per hour/day, per node and fleet-wide. */
export function aggregate(nodeId: string, records: readonly ParsedRecord[]): Row[] {
  const rows = new Map<string, Row>();
  const add = (dim: string, node: string, grain: string, bucket: number, key: string, r: ParsedRecord) => {
    const id = `${dim}\u0000${node}\u0000${grain}\u0000${bucket}\u0000${key}\u0000${r.action}`;
    const row = rows.get(id);
    const duration = Math.round(r.durationMs);
    if (row) {
      row[6] += 1;
      row[7] += r.bytesIn;
      row[8] += r.bytesOut;
      row[9] += duration;
    } else {
      rows.set(id, [dim, node, grain, bucket, key, r.action, 1, r.bytesIn, r.bytesOut, duration]);
    }
  };
  for (const r of records) {
    const minute = r.at - (r.at % MINUTE);
    const hour = r.at - (r.at % HOUR);
    const day = r.at - (r.at % DAY);
    const host = r.host.toLowerCase();
    for (const node of [nodeId, "*"]) {
      add("total", node, "m", minute, "", r);
      for (const [grain, bucket] of [
        ["h", hour],
        ["d", day],
      ] as const) {
        add("total", node, grain, bucket, "", r);
        add("host", node, grain, bucket, host, r);
        add("client", node, grain, bucket, r.client, r);
        if (r.user) add("user", node, grain, bucket, r.user, r);
        if (r.rule) add("rule", node, grain, bucket, r.rule, r);
      }
    }
  }
  return [...rows.values()];
}

// One bound JSON parameter per statement keeps D1's 100-parameter and statement-size limits out
// of the way; ≤ 800 KB of JSON per statement stays well under its 2 MB value limit.
const MAX_JSON_PER_STATEMENT = 800_000;

const UPSERT_ROLLUPS = `INSERT INTO rollups (dim, node_id, grain, bucket, key, action, requests, bytes_in, bytes_out, duration_ms)
  SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5,
         value ->> 6, value ->> 7, value ->> 8, value ->> 9
  FROM json_each(?) WHERE true
  ON CONFLICT DO UPDATE SET
    requests = requests + excluded.requests,
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
export async function ingestChunk(db: Db, nodeId: string, id: ChunkId, records: readonly ParsedRecord[]) {
  let firstTs = Number.POSITIVE_INFINITY;
  let lastTs = 0;
  for (const r of records) {
    if (r.at < firstTs) firstTs = r.at;
    if (r.at > lastTs) lastTs = r.at;
  }
  const d1 = db.$client;
  const ledger = d1
    .prepare(
      "INSERT INTO log_chunks (node_id, epoch, seq, records, first_ts, last_ts, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(nodeId, id.epoch, id.seq, records.length, firstTs, lastTs, Date.now());
  try {
    await d1.batch([ledger, ...upsertStatements(d1, aggregate(nodeId, records))]);
  } catch (error) {
    if (/UNIQUE|PRIMARY KEY|constraint/i.test(String((error as Error).message))) {
      return { accepted: 0, duplicate: true };
    }
    throw error;
  }
  return { accepted: records.length, duplicate: false };
}
