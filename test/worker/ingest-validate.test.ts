import { describe, expect, it } from "vitest";
import { checkLogRecord } from "../../protocol/log-record-check";
import { LogRecord } from "../../protocol/wire";
import { AppError, formatPath } from "../../worker/errors";
import { parseRecords, type RecordWindow } from "../../worker/services/ingest-validate";

// The hot path (log-record-check.ts: a hand-written check of the parsed record, and the
// direct read of the agent's ts format in ingest-validate.ts) must answer exactly as the zod
// schema and Date.parse: same records, same times, same first error. Proved over generated
// good and bad records and chunks against the plain reference below.

let seed = 7;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

const NOW = Date.parse("2026-11-20T12:00:00.000Z");
const WINDOW: RecordWindow = { now: NOW, maxAgeMs: 90 * 86_400_000, maxAheadMs: 3_600_000 };

const TIMES = [
  "2026-11-20T10:15:30.000Z",
  "2026-11-20T10:15:59.999Z",
  "2026-11-20T10:16:00.001Z",
  "2026-11-20T23:59:59.999Z",
  "2026-11-20T24:00:00.000Z",
  "2026-11-20T24:00:30.000Z",
  "2026-11-20T10:60:00.000Z",
  "2026-11-20T10:15:60.000Z",
  "2026-02-30T10:15:30.000Z",
  "2026-11-31T10:15:30.000Z",
  "2026-11-20T10:15:30Z",
  "2026-11-20T10:15:30.5Z",
  "2026-11-20T10:15:30.000+01:00",
  "2026-11-20 10:15:30.000Z",
  "2026-11-20T1a:15:30.000Z",
  "2026-11-20T10:15:3a.000Z",
  "2026-11-20T10:15:30.00aZ",
  "2025-01-01T00:00:00.000Z",
  "2027-01-01T00:00:00.000Z",
  "not a time",
  "",
];
const text = (max: number) =>
  pick(["", "x", "x".repeat(max), "x".repeat(max + 1), "ü", "😀".repeat(max / 2)]);
const FIELDS: Record<string, () => unknown> = {
  ts: () => pick(TIMES),
  client: () => text(64),
  user: () => text(200),
  method: () => pick(["GET", "CONNECT", "x".repeat(33)]),
  scheme: () => pick(["http", "connect", "https", ""]),
  host: () => text(260),
  port: () => pick([0, 443, 65535, 65536, -1, 1.5]),
  path: () => text(4096),
  status: () => pick([0, 200, 999, 1000, -1, 403.5]),
  action: () => pick(["allow", "block", "auth", "error", "deny"]),
  rule: () => text(200),
  sni: () => text(260),
  ech: () => pick([true, false]),
  bytesIn: () => pick([0, 1, 2 ** 53 - 1, 2 ** 53, -1, 0.5]),
  bytesOut: () => pick([0, 1_000_000, -0, 1e300]),
  durationMs: () => pick([0, 12, 0.25, -1, 1e9]),
  requestId: () => text(100),
};
const WRONG: unknown[] = [null, true, 0, -1, "1", "", [], {}, Number.NaN];
const OPTIONAL = new Set(["user", "path", "rule", "sni", "ech"]);

/** A record: mostly valid, with sometimes a field missing, wrong, at or past an edge, or extra. */
function generateRecord(): Record<string, unknown> {
  const r: Record<string, unknown> = {};
  for (const [key, make] of Object.entries(FIELDS)) {
    if (OPTIONAL.has(key) && rand() < 0.4) continue;
    const roll = rand();
    if (roll < 0.02) continue; // a required field missing, sometimes
    if (roll < 0.04) r[key] = pick(WRONG);
    else if (roll < 0.1) r[key] = make();
    else r[key] = valid(key);
  }
  if (rand() < 0.02) r[pick(["extra", "__proto__", "Ts"])] = 1;
  return r;
}
function valid(key: string): unknown {
  const good: Record<string, unknown> = {
    ts: pick(TIMES.slice(0, 4)),
    client: "10.1.2.3",
    user: "alice",
    method: "GET",
    scheme: "connect",
    host: "www.example.com",
    port: 443,
    path: "/a?b=c",
    status: 200,
    action: "allow",
    rule: "r1",
    sni: "example.com",
    ech: false,
    bytesIn: 10,
    bytesOut: 2000,
    durationMs: 1.5,
    requestId: "req-1",
  };
  return good[key];
}

/** How ingestion answered before the fast paths: JSON.parse, zod and Date.parse on every line. */
function reference(text: string, window: RecordWindow) {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (!lines.length) throw new AppError("CHUNK_INVALID", "the chunk holds no records");
  const records: unknown[] = [];
  const times: number[] = [];
  lines.forEach((line, i) => {
    const fail = (message: string, path = "") =>
      new AppError("CHUNK_INVALID", `line ${i + 1}: ${path ? `${path}: ` : ""}${message}`, [
        { path: `line ${i + 1}${path ? `.${path}` : ""}`, message },
      ]);
    let value: unknown;
    try {
      value = JSON.parse(line);
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
    const earliest = window.now - window.maxAgeMs;
    const latest = window.now + window.maxAheadMs;
    if (at < earliest || at > latest) {
      throw fail(
        `${result.data.ts} is outside the accepted window ${new Date(earliest).toISOString()} .. ${new Date(latest).toISOString()} (retention, node clock)`,
        "ts",
      );
    }
    records.push(result.data);
    times.push(at);
  });
  return { records, times };
}

const outcome = (run: () => { records: unknown[]; times: ArrayLike<number> }) => {
  try {
    const { records, times } = run();
    return { records, times: Array.from(times) };
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    return { code: error.code, message: error.message, details: error.details };
  }
};

describe("ingestion's record validation", () => {
  it("the hand-written check answers exactly as the zod schema over 20,000 generated records", () => {
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const value = generateRecord();
      const fast = checkLogRecord(value);
      const zod = LogRecord.safeParse(value);
      expect({ value, success: fast.success }).toEqual({ value, success: zod.success });
      if (fast.success && zod.success) {
        expect(fast.data).toEqual(zod.data);
        accepted++;
      }
    }
    // Both kinds are well represented: the check is not trivially "ask zod" or "refuse".
    expect(accepted).toBeGreaterThan(2_000);
    expect(accepted).toBeLessThan(18_000);
  });

  it("parseRecords gives the reference's records, times and first error over 3,000 generated chunks", () => {
    const RAW = ["", " ", "{", "not json", "[]", "null", '{"ts":1}', "{} {}", '{"a":"\\u0000"}'];
    let good = 0;
    for (let c = 0; c < 3_000; c++) {
      const lines: string[] = [];
      const n = 1 + Math.floor(rand() * 6);
      for (let i = 0; i < n; i++) {
        const roll = rand();
        if (roll < 0.03) lines.push(pick(RAW));
        else if (roll < 0.05) lines.push(` ${JSON.stringify(generateRecord())}\r`);
        else if (roll < 0.5) lines.push(JSON.stringify(generateRecord()));
        else {
          // A valid record, as the agent writes it; times of one chunk mostly share a minute.
          const r: Record<string, unknown> = {};
          for (const key of Object.keys(FIELDS)) if (!OPTIONAL.has(key) || rand() < 0.5) r[key] = valid(key);
          lines.push(JSON.stringify(r));
        }
      }
      const text = lines.join("\n") + (rand() < 0.8 ? "\n" : "");
      const ours = outcome(() => parseRecords(text, WINDOW));
      expect(ours).toEqual(outcome(() => reference(text, WINDOW)));
      if ("records" in ours) good++;
    }
    expect(good).toBeGreaterThan(300);
  });
});
