import { gunzipSync, gzipSync } from "node:zlib";
import { chunkLag, foldChunk, tallyJson } from "../../protocol/chunk-tally";
import { readLogRecord } from "../../protocol/log-record-check";
import type { LogRecord } from "../../protocol/wire";

// The tally a node sends beside a sealed chunk (docs/reports.md, Tallied chunks): the chunk's
// records folded exactly as the master folds them, so the master counts a few hundred keys
// instead of parsing every line. Computed when the chunk is uploaded (~3 µs a record on the
// node), so chunks spooled by an older agent get one too.

/**
 * The gzip JSON tally of a chunk's gzip NDJSON, or null when a line is not a record the master
 * would accept (the chunk then goes without a tally, and the master's answer names the line).
 * Lines are split as the master splits them: an empty line is a bad record, a final newline not.
 */
export function tallyChunk(gzip: Uint8Array): Uint8Array | null {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(gunzipSync(gzip));
  } catch {
    return null;
  }
  const records: LogRecord[] = [];
  const times: number[] = [];
  let start = 0;
  while (start < text.length) {
    const nl = text.indexOf("\n", start);
    const end = nl === -1 ? text.length : nl;
    const record = readLogRecord(text.slice(start, end));
    start = end + 1;
    if (!record) return null;
    const at = Date.parse(record.ts);
    if (!Number.isFinite(at)) return null;
    records.push(record);
    times.push(at);
  }
  if (records.length === 0) return null;
  return gzipSync(tallyJson({ fold: foldChunk({ records, times }), lagMs: chunkLag(times) }));
}
