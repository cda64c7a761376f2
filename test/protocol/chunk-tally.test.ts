import { gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { tallyChunk } from "../../agent/spool/tally";
import { chunkLag, foldChunk, foldDifference, readTally, type TallyWindow } from "../../protocol/chunk-tally";
import type { LogRecord } from "../../protocol/wire";
import { parseRecords, recordWindow } from "../../worker/services/ingest-validate";

// The tally a node sends must count exactly what the master counts from the records, and the
// master's check must refuse every tally that would make a report disagree with itself.

let seed = 7;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
const NOW = Date.parse("2026-11-20T12:00:00.000Z");

function records(count: number, start = NOW - 3 * 3_600_000, span = 2.5 * 3_600_000): LogRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const action = pick(["allow", "allow", "allow", "block", "auth", "error"] as const);
    const r: LogRecord = {
      // Mostly in order, some late by up to 30 s (what lagMs measures).
      ts: new Date(
        start + Math.floor((i / count) * span) - (rand() < 0.1 ? Math.floor(rand() * 30_000) : 0),
      ).toISOString(),
      client: `10.0.${Math.floor(rand() * 3)}.${Math.floor(rand() * 30)}`,
      method: "GET",
      scheme: pick(["http", "connect"] as const),
      host: pick([
        "www.Example.com",
        "api.example.com",
        "CDN.example.net",
        `h${Math.floor(rand() * 400)}.example.org`,
      ]),
      port: 443,
      status: action === "block" ? 403 : 200,
      action,
      bytesIn: Math.floor(rand() * 5000),
      bytesOut: Math.floor(rand() * 90_000),
      durationMs: rand() * 300,
      requestId: `r-${i}`,
    };
    if (rand() < 0.6) r.user = pick(["alice", "bob", "carol", "dave"]);
    if (action === "block" || rand() < 0.2) r.rule = pick(["no-social", "allow-cdn", "malware"]);
    return r;
  });
}

type Group = [number, number, string[], number[]];
interface WireTally {
  v: number;
  records: number;
  firstTs: number;
  lastTs: number;
  lagMs: number;
  minutes: number[][];
  hours: Group[];
}
const ndjson = (rs: readonly LogRecord[]) => `${rs.map((r) => JSON.stringify(r)).join("\n")}\n`;
const window: TallyWindow = { earliest: NOW - 90 * 86_400_000, latest: NOW + 3_600_000, maxRecords: 50_000 };
const tallyValue = (rs: readonly LogRecord[]) =>
  JSON.parse(gunzipSync(tallyChunk(gzipSync(ndjson(rs)))!).toString("utf8")) as WireTally;

describe("chunk tally", () => {
  it("a node's tally counts exactly what the master folds from the same records", () => {
    for (const count of [1, 7, 500, 5000]) {
      const rs = records(count);
      const checked = readTally(tallyValue(rs), window);
      expect(checked.ok, JSON.stringify(checked)).toBe(true);
      if (!checked.ok) return;
      const master = parseRecords(ndjson(rs), recordWindow(90, NOW));
      expect(foldDifference(checked.tally.fold, foldChunk(master))).toBeNull();
      expect(checked.tally.lagMs).toBe(chunkLag(master.times));
      expect(checked.tally.fold.records).toBe(count);
    }
  });

  it("foldDifference sees one request moved between keys", () => {
    const rs = records(200);
    const a = foldChunk(parseRecords(ndjson(rs), recordWindow(90, NOW)));
    const moved = rs.map((r, i) => (i === 17 ? { ...r, host: "elsewhere.example" } : r));
    const b = foldChunk(parseRecords(ndjson(moved), recordWindow(90, NOW)));
    expect(foldDifference(a, b)).not.toBeNull();
    expect(foldDifference(a, a)).toBeNull();
  });

  it("the agent sends no tally for a chunk the master would refuse, so the master names the line", () => {
    const rs = records(5);
    const bad = `${ndjson(rs)}{"ts":"2026-11-20T10:00:00.000Z","host":7}\n`;
    expect(tallyChunk(gzipSync(bad))).toBeNull();
    expect(tallyChunk(gzipSync(`${JSON.stringify(rs[0])}\n\n${JSON.stringify(rs[1])}\n`))).toBeNull();
    expect(tallyChunk(gzipSync("not json\n"))).toBeNull();
    expect(tallyChunk(new Uint8Array([1, 2, 3]))).toBeNull();
    expect(tallyChunk(gzipSync(ndjson(rs)))).not.toBeNull();
  });

  // Each case breaks one rule; the check must refuse it and name where.
  const broken: [string, (t: WireTally) => void, RegExp][] = [
    ["version", (t) => (t.v = 2), /^v$/],
    ["records not the minutes' sum", (t) => (t.records += 1), /^minutes$/],
    ["records beyond the chunk limit", (t) => (t.records = 50_001), /^records$/],
    ["a time before the window", (t) => (t.firstTs = window.earliest - 1), /^firstTs$/],
    ["last before first", (t) => (t.lastTs = t.firstTs - 1), /^lastTs$/],
    ["lag beyond the span", (t) => (t.lagMs = t.lastTs - t.firstTs + 1), /^lagMs$/],
    ["a minute not whole", (t) => (m0(t)[0]! += 1), /^minutes\[0\]\[0\]$/],
    ["a minute twice", (t) => t.minutes.push([...m0(t)]), /^minutes(\[\d+\]\[0\])?$/],
    ["a negative counter", (t) => (m0(t)[5] = -1), /^minutes\[0\]\[5\]$/],
    ["a fractional counter", (t) => (m0(t)[6]! += 0.5), /^minutes\[0\]\[6\]$/],
    ["blocked beyond requests", (t) => (m0(t)[2] = m0(t)[1]! + 1), /^minutes\[0\]\[2\]$/],
    ["an hour no minute is in", (t) => (t.hours[0]![1] += 24 * 3_600_000), /^hours\[0\]\[1\]$/],
    ["host counts not the total", (t) => (hostGroup(t)[3][0]! += 1), /^hours$/],
    ["a host in upper case", (t) => (hostGroup(t)[2][0] = "WWW.EXAMPLE.COM"), /^hours\[\d+\]\[2\]\[0\]$/],
    ["a key twice", (t) => (hostGroup(t)[2][1] = hostGroup(t)[2][0]!), /^hours\[\d+\]\[2\]\[1\]$/],
    ["a key too long", (t) => (hostGroup(t)[2][0] = "h".repeat(261)), /^hours\[\d+\]\[2\]\[0\]$/],
    ["counts not six per key", (t) => hostGroup(t)[3].pop(), /^hours\[\d+\]\[3\]$/],
    ["a missing client group", (t) => (t.hours = t.hours.filter((g) => g[0] !== 2)), /^hours$/],
    ["users beyond the total", (t) => userGroup(t)[3].splice(0, 1, 10 ** 9), /^hours/],
    [
      "a total key that is not empty",
      (t) => (t.hours.find((g) => g[0] === 0)![2][0] = "x"),
      /^hours\[\d+\]\[2\]\[0\]$/,
    ],
  ];
  const m0 = (t: WireTally) => t.minutes[0]!;
  const hostGroup = (t: WireTally) => t.hours.find((g) => g[0] === 1)!;
  const userGroup = (t: WireTally) => t.hours.find((g) => g[0] === 3)!;

  it("refuses a tally that is not an object", () => {
    for (const value of [[], null, "tally", 7])
      expect(readTally(value, window)).toMatchObject({ ok: false, path: "" });
  });

  it.each(broken)("refuses a tally with %s, naming where", (_, breakIt, path) => {
    const rs = records(300, NOW - 2 * 3_600_000, 600_000);
    const value = tallyValue(rs);
    expect(readTally(value, window).ok).toBe(true);
    breakIt(value);
    const checked = readTally(value, window);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.path).toMatch(path);
  });
});
