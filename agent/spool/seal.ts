// Turns spooled records into chunk bodies the master accepts: gzip NDJSON within the count and
// inflated-size limits, re-split after gzip when a part is still over the compressed limit.
import { promisify } from "node:util";
import zlib from "node:zlib";

// Async zlib runs on the thread pool, so sealing a 4 MiB chunk never stalls the proxy's event loop.
const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);
// Output per thread-pool round trip: the default 16 KiB makes ~50 event-loop callbacks per chunk.
const GZIP_CHUNK_BYTES = 256 * 1024;

export interface ChunkLimits {
  maxRecords: number;
  maxInflatedBytes: number;
  maxGzipBytes: number;
}

export interface ChunkBody {
  gz: Buffer;
  records: number;
  oldestMs: number;
}

const NEWLINE = Buffer.from("\n");

/** Packs record payloads (JSON lines without newline) into as few in-limit gzip bodies as possible. */
export async function packChunks(
  payloads: Buffer[],
  limits: ChunkLimits,
  fallbackMs: number,
): Promise<ChunkBody[]> {
  const groups: Buffer[][] = [];
  let group: Buffer[] = [];
  let bytes = 0;
  for (const payload of payloads) {
    const size = payload.length + 1;
    if (group.length > 0 && (group.length >= limits.maxRecords || bytes + size > limits.maxInflatedBytes)) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(payload);
    bytes += size;
  }
  if (group.length > 0) groups.push(group);
  const bodies: ChunkBody[] = [];
  for (const g of groups) bodies.push(...(await gzipWithin(g, limits.maxGzipBytes, fallbackMs)));
  return bodies;
}

/**
 * Packs a segment's NDJSON as kept in memory: one gzip of the whole buffer, no per-record work on
 * the event loop, when it fits one chunk (the segment rotates on the same limits, so it normally
 * does); else cut into lines and packed like any other records.
 */
export async function packNdjson(
  ndjson: Buffer,
  records: number,
  limits: ChunkLimits,
  fallbackMs: number,
): Promise<ChunkBody[]> {
  if (records <= limits.maxRecords && (ndjson.length <= limits.maxInflatedBytes || records === 1)) {
    const gz = await gzip(ndjson, { level: 6, chunkSize: GZIP_CHUNK_BYTES });
    if (gz.length <= limits.maxGzipBytes || records === 1) {
      const firstEnd = ndjson.indexOf(0x0a);
      const first = ndjson.subarray(0, firstEnd === -1 ? ndjson.length : firstEnd);
      return [{ gz, records, oldestMs: oldestOf([first], fallbackMs) }];
    }
  }
  return packChunks(splitLines(ndjson), limits, fallbackMs);
}

async function gzipWithin(
  payloads: Buffer[],
  maxGzipBytes: number,
  fallbackMs: number,
): Promise<ChunkBody[]> {
  const gz = await gzipLines(payloads);
  if (gz.length <= maxGzipBytes || payloads.length < 2) {
    return [{ gz, records: payloads.length, oldestMs: oldestOf(payloads, fallbackMs) }];
  }
  const half = Math.ceil(payloads.length / 2);
  return [
    ...(await gzipWithin(payloads.slice(0, half), maxGzipBytes, fallbackMs)),
    ...(await gzipWithin(payloads.slice(half), maxGzipBytes, fallbackMs)),
  ];
}

export async function gzipLines(payloads: Buffer[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const payload of payloads) parts.push(payload, NEWLINE);
  return gzip(Buffer.concat(parts), { level: 6, chunkSize: GZIP_CHUNK_BYTES });
}

/** The record lines of a chunk body, without their newlines. */
export async function readLines(gz: Buffer): Promise<Buffer[]> {
  return splitLines(await gunzip(gz));
}

function splitLines(text: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = text.indexOf(0x0a); i !== -1; i = text.indexOf(0x0a, start)) {
    if (i > start) lines.push(text.subarray(start, i));
    start = i + 1;
  }
  if (start < text.length) lines.push(text.subarray(start));
  return lines;
}

/** Time of the first record (records are spooled in finishing order, so the first is about the oldest). */
export function oldestOf(payloads: Buffer[], fallbackMs: number): number {
  const first = payloads[0];
  if (!first) return fallbackMs;
  try {
    const ts = Date.parse((JSON.parse(first.toString("utf8")) as { ts?: unknown }).ts as string);
    return Number.isFinite(ts) && ts > 0 ? ts : fallbackMs;
  } catch {
    return fallbackMs;
  }
}
