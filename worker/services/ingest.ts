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
    const result = checkLogRecord(value);
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

// Folding and storage: ingest-fold.ts (records → rows), durable/ingest-coalescer.ts (buffer and
// flush), rollup-store.ts (ledger and upserts in D1), ingest-accept.ts (the route's entry).
