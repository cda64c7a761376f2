// A chunk's tally: its records folded into per-minute totals and per-(dimension, hour, key)
// counts. The master's rollups are made of exactly this. The node that sealed the chunk computes
// it and sends it beside the raw gzip (docs/reports.md, Tallied chunks), so the master reads a few
// hundred keys instead of parsing 5,000 lines; the master folds with the same `foldChunk` when a
// node sends no tally, and to verify a sample of those it gets. `readTally` is the master's check
// of a tally off the wire: every rule that makes the reports exact (minutes sum to the records,
// each hour's hosts and clients sum to its total) is checked, so a wrong tally is refused as a
// whole instead of skewing one report.
import { LOG_FIELD_MAX, type LogRecord } from "./wire";

/** The body is `<tally gzip><chunk gzip>`; this header says where the tally ends. */
export const TALLY_LENGTH_HEADER = "X-Fleetgate-Tally-Length";
/** On every answer of a master that reads tallies; an agent sends none until it has seen it. */
export const TALLY_ACCEPTED_HEADER = "X-Fleetgate-Tally";
export const TALLY_CONTENT_TYPE = "application/x-fleetgate-tallied-chunk";
export const TALLY_VERSION = 1;
export const TALLY_LIMITS = {
  /** The tally's gzip, on top of the chunk's own 1 MiB. */
  maxGzipBytes: 1024 * 1024,
  /** The tally's JSON, inflated. */
  maxBytes: 8 * 1024 * 1024,
} as const;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** requests, blocked, auth, errors, bytesIn, bytesOut */
export type Counts = [number, number, number, number, number, number];
export const COUNTERS = 6;

/** Dimensions of the key rows; 0 is the total (key ""). */
export const DIM = { total: 0, host: 1, client: 2, user: 3, rule: 4 } as const;
const KEY_MAX = [0, LOG_FIELD_MAX.host, LOG_FIELD_MAX.client, LOG_FIELD_MAX.user, LOG_FIELD_MAX.rule];

/**
 * Keys and their counts, flat: counts[i * 6 .. i * 6 + 5] belong to keys[i]. Flat number arrays
 * and one map lookup per key keep folding at about a microsecond a record.
 */
export class KeyCounts {
  readonly keys: string[] = [];
  readonly counts: number[] = [];
  private readonly index = new Map<string, number>();

  /** The offset of `key`'s counters in `counts`, adding the key at zero. */
  slot(key: string): number {
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.keys.length;
      this.index.set(key, i);
      this.keys.push(key);
      this.counts.push(0, 0, 0, 0, 0, 0);
    }
    return i * COUNTERS;
  }

  add(key: string, source: ArrayLike<number>, from: number) {
    const at = this.slot(key);
    for (let j = 0; j < COUNTERS; j++) this.counts[at + j]! += source[from + j]!;
  }
}

/** One chunk of one node, folded: what the master counts (and its coalescer buffers). */
export interface ChunkFold {
  records: number;
  firstTs: number;
  lastTs: number;
  /** [minute, ...Counts] */
  minutes: ArrayLike<number>[];
  /** [dim, hour, keys, counts (6 per key, flat)] */
  hours: [number, number, string[], ArrayLike<number>][];
}

/** The fields of a record the fold reads, with the epoch ms of its `ts` beside it. */
export interface FoldInput {
  records: readonly Pick<
    LogRecord,
    "action" | "host" | "client" | "user" | "rule" | "bytesIn" | "bytesOut"
  >[];
  /** Epoch ms of each record's ts, same order. */
  times: ArrayLike<number>;
}

export function foldChunk({ records, times }: FoldInput): ChunkFold {
  const minutes = new Map<number, number[]>();
  const slots = new Map<number, KeyCounts>(); // hour * 8 + dim
  let firstTs = Number.POSITIVE_INFINITY;
  let lastTs = 0;
  // Records of a chunk mostly share their minute and hour: keep the last ones at hand.
  let minuteAt = -1;
  let minute: number[] = [];
  let hourAt = -1;
  let dims: KeyCounts[] = [];
  const dimsOf = (hour: number) =>
    [0, 1, 2, 3, 4].map((dim) => {
      let group = slots.get(hour * 8 + dim);
      if (!group) {
        group = new KeyCounts();
        slots.set(hour * 8 + dim, group);
      }
      return group;
    });
  const bump = (
    group: KeyCounts,
    key: string,
    blocked: number,
    auth: number,
    errors: number,
    bytesIn: number,
    bytesOut: number,
  ) => {
    const at = group.slot(key);
    const c = group.counts;
    c[at]! += 1;
    c[at + 1]! += blocked;
    c[at + 2]! += auth;
    c[at + 3]! += errors;
    c[at + 4]! += bytesIn;
    c[at + 5]! += bytesOut;
  };
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const at = times[i]!;
    if (at < firstTs) firstTs = at;
    if (at > lastTs) lastTs = at;
    const blocked = r.action === "block" ? 1 : 0;
    const auth = r.action === "auth" ? 1 : 0;
    const errors = r.action === "error" ? 1 : 0;
    const m = at - (at % MINUTE);
    if (m !== minuteAt) {
      minuteAt = m;
      let row = minutes.get(m);
      if (!row) {
        row = [m, 0, 0, 0, 0, 0, 0];
        minutes.set(m, row);
      }
      minute = row;
    }
    minute[1]! += 1;
    minute[2]! += blocked;
    minute[3]! += auth;
    minute[4]! += errors;
    minute[5]! += r.bytesIn;
    minute[6]! += r.bytesOut;
    const h = at - (at % HOUR);
    if (h !== hourAt) {
      hourAt = h;
      dims = dimsOf(h);
    }
    bump(dims[0]!, "", blocked, auth, errors, r.bytesIn, r.bytesOut);
    bump(dims[1]!, r.host.toLowerCase(), blocked, auth, errors, r.bytesIn, r.bytesOut);
    bump(dims[2]!, r.client, blocked, auth, errors, r.bytesIn, r.bytesOut);
    if (r.user !== undefined) bump(dims[3]!, r.user, blocked, auth, errors, r.bytesIn, r.bytesOut);
    if (r.rule !== undefined) bump(dims[4]!, r.rule, blocked, auth, errors, r.bytesIn, r.bytesOut);
  }
  const hours: ChunkFold["hours"] = [];
  for (const [slot, group] of slots) {
    if (!group.keys.length) continue;
    const dim = slot % 8;
    hours.push([dim, (slot - dim) / 8, group.keys, group.counts]);
  }
  return { records: records.length, firstTs, lastTs, minutes: [...minutes.values()], hours };
}

/**
 * How far records arrived out of order: the largest gap between a record and the newest one
 * before it (request search widens its window by this, docs/reports.md).
 */
export function chunkLag(times: ArrayLike<number>): number {
  let lastTs = Number.NEGATIVE_INFINITY;
  let lagMs = 0;
  for (let i = 0; i < times.length; i++) {
    const at = times[i]!;
    if (at > lastTs) lastTs = at;
    else if (lastTs - at > lagMs) lagMs = lastTs - at;
  }
  return lagMs;
}

/** A tally as it travels: the fold and the chunk's lag. */
export interface Tally {
  fold: ChunkFold;
  lagMs: number;
}

/** The tally's JSON: `{v, records, firstTs, lastTs, lagMs, minutes: [[minute, …6]], hours: [[dim, hour, keys, counts]]}`. */
export function tallyJson({ fold, lagMs }: Tally): string {
  return JSON.stringify({
    v: TALLY_VERSION,
    records: fold.records,
    firstTs: fold.firstTs,
    lastTs: fold.lastTs,
    lagMs,
    minutes: fold.minutes.map((m) => Array.from(m)),
    hours: fold.hours.map(([dim, hour, keys, counts]) => [dim, hour, keys, Array.from(counts)]),
  });
}

/** The times a chunk's records may carry (the master's retention and clock-skew window). */
export interface TallyWindow {
  earliest: number;
  latest: number;
  maxRecords: number;
}

export type TallyCheck = { ok: true; tally: Tally } | { ok: false; path: string; message: string };

class TallyError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

const fail = (path: string, message: string): never => {
  throw new TallyError(path, message);
};
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

function int(v: unknown, path: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (!isInt(v) || v < min || v > max) fail(path, `must be an integer in ${min}..${max}`);
  return v as number;
}

function list(v: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(v)) fail(path, "must be an array");
  if ((v as unknown[]).length > max) fail(path, `holds at most ${max} entries`);
  return v as unknown[];
}

/**
 * Checks six counters at `at`: integers, requests ≥ 1, blocked + auth + errors ≤ requests. Paths
 * are only built for the error: a tally holds thousands of keys.
 */
function counts(source: unknown[], at: number, path: string): void {
  const requests = source[at];
  const blocked = source[at + 1];
  const auth = source[at + 2];
  const errors = source[at + 3];
  if (
    isInt(requests) &&
    requests >= 1 &&
    isInt(blocked) &&
    isInt(auth) &&
    isInt(errors) &&
    isInt(source[at + 4]) &&
    isInt(source[at + 5]) &&
    blocked + auth + errors <= requests
  ) {
    return;
  }
  for (let j = 0; j < COUNTERS; j++) int(source[at + j], `${path}[${at + j}]`);
  if ((requests as number) < 1) fail(`${path}[${at}]`, "a counted key has at least one request");
  fail(`${path}[${at + 1}]`, "blocked + auth + errors exceed the requests");
}

// Not a closure per key: esbuild's keepNames (wrangler's build) wraps every closure it creates.
const keyPath = (group: string, k: number) => `${group}[2][${k}]`;

function addInto(sum: number[], source: ArrayLike<number>, at: number) {
  for (let j = 0; j < COUNTERS; j++) sum[j]! += source[at + j]!;
}

const zeros = () => [0, 0, 0, 0, 0, 0];

/**
 * Checks a parsed tally against everything the reports rely on and answers the fold it holds, or
 * the first rule it breaks with its JSON path: the version; every time inside the chunk's
 * [firstTs, lastTs] and that inside the window; whole minutes and hours, no bucket or key twice,
 * text within the record fields' limits (hosts in lower case, as folded); integer counters;
 * the minutes summing to `records`, each hour's total equal to its minutes, its hosts and
 * clients summing to the total exactly, users and rules to no more than it.
 */
export function readTally(value: unknown, window: TallyWindow): TallyCheck {
  try {
    return { ok: true, tally: checkTally(value, window) };
  } catch (error) {
    if (error instanceof TallyError) return { ok: false, path: error.path, message: error.message };
    throw error;
  }
}

function checkTally(value: unknown, window: TallyWindow): Tally {
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail("", "must be an object");
  const t = value as Record<string, unknown>;
  if (t.v !== TALLY_VERSION) fail("v", `must be ${TALLY_VERSION}`);
  const records = int(t.records, "records", 1, window.maxRecords);
  const firstTs = int(t.firstTs, "firstTs", window.earliest, window.latest);
  const lastTs = int(t.lastTs, "lastTs", firstTs, window.latest);
  const lagMs = int(t.lagMs, "lagMs", 0, lastTs - firstTs);
  const firstMinute = firstTs - (firstTs % MINUTE);
  const firstHour = firstTs - (firstTs % HOUR);

  const minuteRows = list(t.minutes, "minutes", records);
  const minutes: number[][] = [];
  const hourSums = new Map<number, number[]>();
  const seenMinutes = new Set<number>();
  let total = 0;
  for (let i = 0; i < minuteRows.length; i++) {
    const path = `minutes[${i}]`;
    const row = list(minuteRows[i], path, 1 + COUNTERS);
    if (row.length !== 1 + COUNTERS) fail(path, `must be [minute, ${COUNTERS} counters]`);
    const m = int(row[0], `${path}[0]`, firstMinute, lastTs);
    if (m % MINUTE !== 0) fail(`${path}[0]`, "must be a whole minute (epoch ms)");
    if (seenMinutes.has(m)) fail(`${path}[0]`, "minute listed twice");
    seenMinutes.add(m);
    counts(row, 1, path);
    total += row[1] as number;
    const h = m - (m % HOUR);
    const sum = hourSums.get(h) ?? zeros();
    hourSums.set(h, sum);
    addInto(sum, row as number[], 1);
    minutes.push(row as number[]);
  }
  if (total !== records) fail("minutes", `the minutes count ${total} requests, not records (${records})`);

  const groups = list(t.hours, "hours", 5 * hourSums.size);
  const hours: ChunkFold["hours"] = [];
  const dimSums = new Map<number, number[]>(); // hour * 8 + dim → summed counters
  for (let g = 0; g < groups.length; g++) {
    const path = `hours[${g}]`;
    const group = list(groups[g], path, 4);
    if (group.length !== 4) fail(path, "must be [dim, hour, keys, counts]");
    const dim = int(group[0], `${path}[0]`, 0, 4);
    const hour = int(group[1], `${path}[1]`, firstHour, lastTs);
    if (hour % HOUR !== 0) fail(`${path}[1]`, "must be a whole hour (epoch ms)");
    if (!hourSums.has(hour)) fail(`${path}[1]`, "an hour no minute of the tally is in");
    if (dimSums.has(hour * 8 + dim)) fail(path, "dimension and hour listed twice");
    const keys = list(group[2], `${path}[2]`, records);
    const values = list(group[3], `${path}[3]`, records * COUNTERS);
    if (values.length !== keys.length * COUNTERS)
      fail(`${path}[3]`, `must hold ${COUNTERS} counters per key`);
    if (keys.length === 0) fail(`${path}[2]`, "an empty group is left out");
    const seen = new Set<string>();
    const sum = zeros();
    const max = KEY_MAX[dim]!;
    const countsPath = `${path}[3]`;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k];
      if (typeof key !== "string") fail(keyPath(path, k), "must be a string");
      const text = key as string;
      if (dim === DIM.total ? text !== "" : text.length > max) {
        fail(keyPath(path, k), dim === DIM.total ? 'the total\'s only key is ""' : `longer than ${max}`);
      }
      if (
        dim === DIM.host &&
        (ASCII_UPPER.test(text) || (NON_ASCII.test(text) && text !== text.toLowerCase()))
      ) {
        fail(keyPath(path, k), "hosts are folded in lower case");
      }
      if (seen.has(text)) fail(keyPath(path, k), "key listed twice");
      seen.add(text);
      counts(values, k * COUNTERS, countsPath);
      addInto(sum, values as number[], k * COUNTERS);
    }
    dimSums.set(hour * 8 + dim, sum);
    hours.push([dim, hour, keys as string[], values as number[]]);
  }
  for (const [hour, expected] of hourSums) {
    for (const dim of [DIM.total, DIM.host, DIM.client, DIM.user, DIM.rule]) {
      const sum = dimSums.get(hour * 8 + dim);
      const optional = dim === DIM.user || dim === DIM.rule;
      if (!sum) {
        if (optional) continue;
        fail("hours", `hour ${new Date(hour).toISOString()} has no ${dimName(dim)} group`);
      }
      for (let j = 0; j < COUNTERS; j++) {
        const ok = optional ? sum![j]! <= expected[j]! : sum![j] === expected[j];
        if (!ok) {
          fail(
            "hours",
            `hour ${new Date(hour).toISOString()}: the ${dimName(dim)} counts (${sum![j]}) ${optional ? "exceed" : "differ from"} its minutes (${expected[j]}), counter ${j}`,
          );
        }
      }
    }
  }
  return { fold: { records, firstTs, lastTs, minutes, hours }, lagMs };
}

// A host key must be as folded (lower case); the regexes spare the common ASCII key a copy.
const ASCII_UPPER = /[A-Z]/;
const NON_ASCII = /[^ -~]/; // anything outside printable ASCII

const dimName = (dim: number) => Object.keys(DIM)[dim] ?? String(dim);

/** Six counters at `at` as text, read in place (not a copy of the whole array per key). */
function countsText(values: ArrayLike<number>, at: number): string {
  let text = "";
  for (let j = 0; j < COUNTERS; j++) text += `${values[at + j]},`;
  return text;
}

/**
 * The first difference between two folds of the same chunk, or null when they count the same
 * (order of minutes, groups and keys aside): how the master checks a sampled tally against the
 * records it came with.
 */
export function foldDifference(a: ChunkFold, b: ChunkFold): string | null {
  if (a.records !== b.records) return `records ${a.records} ≠ ${b.records}`;
  if (a.firstTs !== b.firstTs || a.lastTs !== b.lastTs) return "first or last record time";
  const flat = (fold: ChunkFold) => {
    const out = new Map<string, string>();
    for (const m of fold.minutes) out.set(`m:${m[0]}`, countsText(m, 1));
    for (const [dim, hour, keys, values] of fold.hours) {
      for (let k = 0; k < keys.length; k++)
        out.set(`${dim}:${hour}:${keys[k]}`, countsText(values, k * COUNTERS));
    }
    return out;
  };
  const left = flat(a);
  const right = flat(b);
  if (left.size !== right.size) return `${left.size} counted keys ≠ ${right.size}`;
  for (const [key, value] of left) {
    if (right.get(key) !== value) return `${key}: ${value} ≠ ${right.get(key) ?? "absent"}`;
  }
  return null;
}
