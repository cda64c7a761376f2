import { CHUNK_LIMITS, type LogRecord } from "../../protocol/wire";
import { AppError, formatPath } from "../errors";
import { checkLogRecord } from "./log-record-check";

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

/** The times a record may carry, around the chunk's receipt. */
export interface RecordWindow {
  now: number;
  /** How far back a record may be (the report retention: older rows would be pruned anyway). */
  maxAgeMs: number;
  /** How far ahead a node's clock may run. */
  maxAheadMs: number;
}

export const RECORD_MAX_AHEAD_MS = 60 * 60_000;

export function recordWindow(retentionDays: number, now = Date.now()): RecordWindow {
  return { now, maxAgeMs: retentionDays * 24 * 60 * 60_000, maxAheadMs: RECORD_MAX_AHEAD_MS };
}

/**
 * The line boundaries of `text`, counted while splitting: past `max` lines it stops at once (a
 * gzip of 16 MiB of newlines must not become 16 M strings before the record cap applies).
 */
function lineBounds(text: string, max: number): number[] {
  const ends: number[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    const end = nl === -1 ? text.length : nl;
    if (ends.length === max) {
      throw new AppError(
        "PAYLOAD_TOO_LARGE",
        `a chunk holds at most ${max} records; line ${max + 1} is one too many: split it`,
      );
    }
    ends.push(end);
    start = end + 1;
  }
  return ends;
}

/**
 * Parses and validates every line; the first bad one refuses the whole chunk (422, line named).
 * A record whose time falls outside `window` is refused too: kept, a far-future record would
 * make rollup rows that retention never deletes.
 */
export function parseRecords(text: string, window: RecordWindow = recordWindow(90)): ParsedChunk {
  const ends = lineBounds(text, CHUNK_LIMITS.maxRecords);
  if (ends.length === 0) throw new AppError("CHUNK_INVALID", "the chunk holds no records");
  const records: LogRecord[] = new Array(ends.length);
  const times = new Float64Array(ends.length);
  const earliest = window.now - window.maxAgeMs;
  const latest = window.now + window.maxAheadMs;
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const fail = (message: string, path = "") =>
      new AppError("CHUNK_INVALID", `line ${i + 1}: ${path ? `${path}: ` : ""}${message}`, [
        { path: `line ${i + 1}${path ? `.${path}` : ""}`, message },
      ]);
    const line = text.slice(start, ends[i]);
    start = ends[i]! + 1;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw fail("not JSON");
    }
    const result = checkLogRecord(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      throw fail(issue.message, formatPath(issue.path));
    }
    const at = Date.parse(result.data.ts);
    if (!Number.isFinite(at)) throw fail("not an ISO 8601 time", "ts");
    if (at < earliest || at > latest) {
      throw fail(
        `${result.data.ts} is outside the accepted window ${new Date(earliest).toISOString()} .. ${new Date(latest).toISOString()} (retention, node clock)`,
        "ts",
      );
    }
    records[i] = result.data;
    times[i] = at;
  }
  return { records, times };
}

// Folding and storage: ingest-fold.ts (records → rows), durable/ingest-coalescer.ts (buffer and
// flush), rollup-store.ts (ledger and upserts in D1), ingest-accept.ts (the route's entry).
