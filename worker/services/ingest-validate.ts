import { checkLogRecord } from "../../protocol/log-record-check";
import { CHUNK_LIMITS, type LogRecord } from "../../protocol/wire";
import { AppError, formatPath } from "../errors";

// Validation of a chunk's records: every line against the shared LogRecord schema, the first
// bad one refusing the whole chunk with 422 naming the line and field.

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

function lineError(line: number, message: string, path = "") {
  return new AppError("CHUNK_INVALID", `line ${line}: ${path ? `${path}: ` : ""}${message}`, [
    { path: `line ${line}${path ? `.${path}` : ""}`, message },
  ]);
}

/** A line's record, or the error that refuses the chunk (the schema's words). */
function parseLine(line: string, n: number): LogRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw lineError(n, "not JSON");
  }
  const result = checkLogRecord(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw lineError(n, issue.message, formatPath(issue.path));
  }
  return result.data;
}

const digit = (s: string, i: number) => {
  const d = s.charCodeAt(i) - 48;
  return d >= 0 && d <= 9 ? d : -100_000;
};

/**
 * Date.parse(ts), read directly when ts is `YYYY-MM-DDTHH:MM:SS.sssZ` (what the agent writes)
 * and shares its minute with the previous one, as nearly all records of a chunk do.
 */
function timeParser() {
  let minute = "";
  let minuteMs = Number.NaN;
  return (ts: string): number => {
    if (
      ts.length !== 24 ||
      ts.charCodeAt(16) !== 58 /* : */ ||
      ts.charCodeAt(19) !== 46 /* . */ ||
      ts.charCodeAt(23) !== 90 /* Z */
    ) {
      return Date.parse(ts);
    }
    const seconds = digit(ts, 17) * 10 + digit(ts, 18);
    const ms = digit(ts, 20) * 100 + digit(ts, 21) * 10 + digit(ts, 22);
    // Hour 24 is valid only as 24:00:00.000, so a minute from the cache must be 00:00–23:59.
    const hour = digit(ts, 11) * 10 + digit(ts, 12);
    const min = digit(ts, 14) * 10 + digit(ts, 15);
    if (seconds < 0 || seconds > 59 || ms < 0 || hour < 0 || hour > 23 || min < 0 || min > 59) {
      return Date.parse(ts);
    }
    if (!ts.startsWith(minute) || minute === "") {
      minute = ts.slice(0, 16);
      minuteMs = Date.parse(`${minute}:00.000Z`);
    }
    return minuteMs + seconds * 1000 + ms;
  };
}

/**
 * Parses and validates every line; the first bad one refuses the whole chunk (422, line named).
 * A record whose time falls outside `window` is refused too: kept, a far-future record would
 * make rollup rows that retention never deletes.
 */
export function parseRecords(text: string, window: RecordWindow = recordWindow(90)): ParsedChunk {
  const ends = lineBounds(text, CHUNK_LIMITS.maxRecords);
  if (ends.length === 0) throw new AppError("CHUNK_INVALID", "the chunk holds no records");
  const records: LogRecord[] = [];
  const times = new Float64Array(ends.length);
  const earliest = window.now - window.maxAgeMs;
  const latest = window.now + window.maxAheadMs;
  const timeOf = timeParser();
  let start = 0;
  for (let i = 0; i < ends.length; i++) {
    const end = ends[i]!;
    const record = parseLine(text.slice(start, end), i + 1);
    start = end + 1;
    const at = timeOf(record.ts);
    if (!Number.isFinite(at)) throw lineError(i + 1, "not an ISO 8601 time", "ts");
    if (at < earliest || at > latest) {
      throw lineError(
        i + 1,
        `${record.ts} is outside the accepted window ${new Date(earliest).toISOString()} .. ${new Date(latest).toISOString()} (retention, node clock)`,
        "ts",
      );
    }
    records.push(record);
    times[i] = at;
  }
  return { records, times };
}
