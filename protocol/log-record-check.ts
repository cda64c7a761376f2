import { LogRecord } from "./wire";

// LogRecord.safeParse costs ~4 µs a record. This checks a parsed record against exactly the
// schema's rules by hand (never more lenient) and asks zod only about the rest, which also words
// the error. The master validates chunks with it, the agent the records it tallies.

const isText = (v: unknown, max: number): boolean => typeof v === "string" && v.length <= max;
const isOptionalText = (v: unknown, max: number): boolean => v === undefined || isText(v, max);
const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER): boolean =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0 && v <= max;

const FIELDS = 17;

function plainlyValid(value: unknown): value is LogRecord {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const r = value as Record<string, unknown>;
  const ok =
    isText(r.ts, 40) &&
    isText(r.client, 64) &&
    isOptionalText(r.user, 200) &&
    isText(r.method, 32) &&
    (r.scheme === "http" || r.scheme === "connect") &&
    isText(r.host, 260) &&
    isCount(r.port, 65535) &&
    isOptionalText(r.path, 4096) &&
    isCount(r.status, 999) &&
    (r.action === "allow" || r.action === "block" || r.action === "auth" || r.action === "error") &&
    isOptionalText(r.rule, 200) &&
    isOptionalText(r.sni, 260) &&
    (r.ech === undefined || typeof r.ech === "boolean") &&
    isCount(r.bytesIn) &&
    isCount(r.bytesOut) &&
    typeof r.durationMs === "number" &&
    Number.isFinite(r.durationMs) &&
    r.durationMs >= 0 &&
    isText(r.requestId, 100);
  if (!ok) return false;
  // A strict object: no key beyond the schema's (the optional ones may be absent).
  let keys = 0;
  for (const _ in r) keys++;
  const absent =
    (r.user === undefined ? 1 : 0) +
    (r.path === undefined ? 1 : 0) +
    (r.rule === undefined ? 1 : 0) +
    (r.sni === undefined ? 1 : 0) +
    (r.ech === undefined ? 1 : 0);
  return keys === FIELDS - absent;
}

/** LogRecord.safeParse with a fast path for plainly valid records (same answers). */
export function checkLogRecord(value: unknown): ReturnType<typeof LogRecord.safeParse> {
  if (plainlyValid(value)) return { success: true, data: value };
  return LogRecord.safeParse(value);
}

/** One NDJSON line as a record, or null when it is not JSON or not a valid record. */
export function readLogRecord(line: string): LogRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  const checked = checkLogRecord(value);
  return checked.success ? checked.data : null;
}
