// Folding access-log records into rollup rows, in two steps so chunks that arrive close together
// are merged before anything is written:
//  1. foldChunk (in the Worker that received the chunk): one chunk → per-minute totals and
//     per-(dimension, hour, key) counts of its node. Small, serialisable, stored by the coalescer.
//  2. buildRows (in the coalescer's flush): many chunks of many nodes → merged, each node-hour
//     capped to its top keys per dimension with the rest folded into `(other)`, plus the
//     fleet-wide rows derived from the capped node rows. Totals stay exact.
import type { ParsedChunk } from "./ingest";
import { DAY, FLEET, HOUR, KIND, MINUTE } from "./rollup-kinds";

/** requests, blocked, auth, errors, bytesIn, bytesOut */
export type Counts = [number, number, number, number, number, number];
export const COUNTERS = 6;

/** The key that holds the sum of every key beyond a node-hour's (or day's) top K. */
export const OTHER_KEY = "(other)";

/** Dimensions of the key rows; 0 is the total (key ""). */
export const DIM = { total: 0, host: 1, client: 2, user: 3, rule: 4 } as const;
export const KEY_DIMS = [DIM.host, DIM.client, DIM.user, DIM.rule] as const;
const HOUR_KIND = [KIND.totalHour, KIND.hostHour, KIND.clientHour, KIND.userHour, KIND.ruleHour];
const DAY_KIND = [KIND.totalDay, KIND.hostDay, KIND.clientDay, KIND.userDay, KIND.ruleDay];
export const hourKindOf = (dim: number) => HOUR_KIND[dim]!;
export const dayKindOf = (dim: number) => DAY_KIND[dim]!;

/**
 * Distinct keys kept per node-hour and dimension at ingestion; the rest of that hour's traffic
 * lands in `(other)`. Hosts are the long tail (Zipf over ~1M names); a node's clients, users and
 * rules rarely reach the cap. See docs/reports.md for the storage this bounds.
 */
export const HOUR_TOP_K: Record<number, number> = {
  [DIM.host]: 200,
  [DIM.client]: 500,
  [DIM.user]: 500,
  [DIM.rule]: 200,
};
/** Keys kept per day and dimension when hourly rows are compacted (per node and fleet-wide). */
export const DAY_TOP_K: Record<number, number> = {
  [DIM.host]: 2000,
  [DIM.client]: 5000,
  [DIM.user]: 5000,
  [DIM.rule]: 1000,
};

/** One chunk of one node, folded; what the coalescer buffers. */
export interface ChunkFold {
  records: number;
  firstTs: number;
  lastTs: number;
  /** [minute, ...Counts] */
  minutes: number[][];
  /** [dim, hour, key, ...Counts] */
  keys: (number | string)[][];
}

export function foldChunk({ records, times }: ParsedChunk): ChunkFold {
  const minutes = new Map<number, number[]>();
  // (hour * 8 + dim) → key → [dim, hour, key, ...counts]
  const slots = new Map<number, Map<string, (number | string)[]>>();
  let firstTs = Number.POSITIVE_INFINITY;
  let lastTs = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    const at = times[i]!;
    if (at < firstTs) firstTs = at;
    if (at > lastTs) lastTs = at;
    const blocked = r.action === "block" ? 1 : 0;
    const auth = r.action === "auth" ? 1 : 0;
    const errors = r.action === "error" ? 1 : 0;
    const minute = at - (at % MINUTE);
    let m = minutes.get(minute);
    if (!m) {
      m = [minute, 0, 0, 0, 0, 0, 0];
      minutes.set(minute, m);
    }
    m[1]! += 1;
    m[2]! += blocked;
    m[3]! += auth;
    m[4]! += errors;
    m[5]! += r.bytesIn;
    m[6]! += r.bytesOut;
    const hour = at - (at % HOUR);
    for (let dim = 0; dim < 5; dim++) {
      const key =
        dim === 0
          ? ""
          : dim === 1
            ? r.host.toLowerCase()
            : dim === 2
              ? r.client
              : dim === 3
                ? r.user
                : r.rule;
      if (key === undefined) continue;
      const slot = hour * 8 + dim;
      let byKey = slots.get(slot);
      if (!byKey) {
        byKey = new Map();
        slots.set(slot, byKey);
      }
      let row = byKey.get(key) as number[] | undefined;
      if (!row) {
        row = [dim, hour, key as unknown as number, 0, 0, 0, 0, 0, 0];
        byKey.set(key, row);
      }
      row[3]! += 1;
      row[4]! += blocked;
      row[5]! += auth;
      row[6]! += errors;
      row[7]! += r.bytesIn;
      row[8]! += r.bytesOut;
    }
  }
  const keys: (number | string)[][] = [];
  for (const byKey of slots.values()) for (const row of byKey.values()) keys.push(row);
  return { records: records.length, firstTs, lastTs, minutes: [...minutes.values()], keys };
}

/** A rollup row as written: [kind, node, bucket, key, ...Counts]. */
export type RollupRow = [number, string, number, string, ...Counts];

function addInto(
  target: (number | string)[],
  offset: number,
  source: readonly (number | string)[],
  from: number,
) {
  for (let j = 0; j < COUNTERS; j++) (target[offset + j] as number) += source[from + j] as number;
}

/**
 * Keys already stored for a node-hour, per dimension: they keep accumulating; only new keys
 * compete for the remaining places of the top K.
 */
export type AdmittedKeys = (nodeId: string, hour: number, dim: number) => Set<string>;

export interface BuiltRows {
  rows: RollupRow[];
  /** The keys each touched node-hour holds after this flush (to update the caller's cache). */
  admitted: Map<string, Set<string>>;
}

export const admittedId = (nodeId: string, hour: number, dim: number) => `${nodeId}|${hour}|${dim}`;

/**
 * Merges the folds of many chunks (each tagged with its node) into rollup rows: node minute and
 * hour rows, each node-hour capped per dimension (HOUR_TOP_K, the rest in `(other)`), and fleet
 * minute, hour and day rows summed from the capped node rows.
 */
export function buildRows(
  chunks: { nodeId: string; fold: ChunkFold }[],
  admittedKeys: AdmittedKeys,
): BuiltRows {
  const minuteRows = new Map<string, RollupRow>();
  // node|hour|dim → key → counts
  const groups = new Map<
    string,
    { nodeId: string; hour: number; dim: number; keys: Map<string, number[]> }
  >();
  const addMinute = (node: string, minute: number, source: readonly number[]) => {
    const id = `${node}|${minute}`;
    let row = minuteRows.get(id);
    if (!row) {
      row = [KIND.totalMinute, node, minute, "", 0, 0, 0, 0, 0, 0];
      minuteRows.set(id, row);
    }
    addInto(row, 4, source, 1);
  };
  for (const { nodeId, fold } of chunks) {
    for (const m of fold.minutes) {
      addMinute(nodeId, m[0]!, m);
      addMinute(FLEET, m[0]!, m);
    }
    for (const k of fold.keys) {
      const dim = k[0] as number;
      const hour = k[1] as number;
      const id = admittedId(nodeId, hour, dim);
      let group = groups.get(id);
      if (!group) {
        group = { nodeId, hour, dim, keys: new Map() };
        groups.set(id, group);
      }
      const key = k[2] as string;
      let counts = group.keys.get(key);
      if (!counts) {
        counts = [0, 0, 0, 0, 0, 0];
        group.keys.set(key, counts);
      }
      addInto(counts, 0, k, 3);
    }
  }
  const rows: RollupRow[] = [...minuteRows.values()];
  const fleet = new Map<string, RollupRow>();
  const addFleet = (kind: number, bucket: number, key: string, counts: readonly number[]) => {
    const id = `${kind}|${bucket}|${key}`;
    let row = fleet.get(id);
    if (!row) {
      row = [kind, FLEET, bucket, key, 0, 0, 0, 0, 0, 0];
      fleet.set(id, row);
    }
    addInto(row, 4, counts, 0);
  };
  const admitted = new Map<string, Set<string>>();
  for (const [id, { nodeId, hour, dim, keys }] of groups) {
    const kept = capKeys(
      keys,
      dim === DIM.total ? null : admittedKeys(nodeId, hour, dim),
      HOUR_TOP_K[dim] ?? 0,
    );
    if (dim !== DIM.total) admitted.set(id, kept.admitted);
    const day = hour - (hour % DAY);
    for (const [key, counts] of kept.rows) {
      rows.push([hourKindOf(dim), nodeId, hour, key, ...(counts as Counts)]);
      addFleet(hourKindOf(dim), hour, key, counts);
      addFleet(dayKindOf(dim), day, key, counts);
    }
  }
  rows.push(...fleet.values());
  return { rows, admitted };
}

/**
 * Keeps keys already admitted and the biggest new keys while places remain (ties broken by key,
 * so a retried flush decides the same); folds the rest into `(other)`. `admitted` null = no cap.
 */
export function capKeys(keys: Map<string, number[]>, admitted: Set<string> | null, k: number) {
  if (!admitted) return { rows: keys, admitted: new Set<string>() };
  const next = new Set(admitted);
  const rows = new Map<string, number[]>();
  const fresh: [string, number[]][] = [];
  for (const entry of keys) {
    if (entry[0] === OTHER_KEY || next.has(entry[0])) rows.set(entry[0], entry[1]);
    else fresh.push(entry);
  }
  const places = k - [...next].filter((key) => key !== OTHER_KEY).length;
  if (fresh.length > places) fresh.sort((a, b) => b[1][0]! - a[1][0]! || (a[0] < b[0] ? -1 : 1));
  let other: number[] | undefined = rows.get(OTHER_KEY);
  for (let i = 0; i < fresh.length; i++) {
    const [key, counts] = fresh[i]!;
    if (i < places) {
      rows.set(key, counts);
      next.add(key);
      continue;
    }
    if (!other) {
      other = [0, 0, 0, 0, 0, 0];
      rows.set(OTHER_KEY, other);
    }
    addInto(other, 0, counts, 0);
  }
  if (rows.has(OTHER_KEY)) next.add(OTHER_KEY);
  return { rows, admitted: next };
}
