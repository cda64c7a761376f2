// Folding access-log records into rollup rows, in two steps so chunks that arrive close together
// are merged before anything is written:
//  1. one chunk → its fold (protocol/chunk-tally.ts: per-minute totals and per-(dimension, hour,
//     key) counts), sent by the node as its tally or folded from the records here, encoded as one
//     compact value (encodeFold: the keys as JSON, the numbers as one Float64Array) that the
//     coalescer stores.
//  2. buildRows (in the coalescer's flush): many chunks of many nodes → merged, each node-hour
//     capped to its top keys per dimension with the rest folded into `(other)`, plus the
//     fleet-wide rows derived from the capped node rows. Totals stay exact.
import { type ChunkFold, COUNTERS, type Counts, DIM, KeyCounts } from "../../protocol/chunk-tally";
import { DAY, FLEET, HOUR, KIND, MINUTE } from "./rollup-kinds";

/** The key that holds the sum of every key beyond a node-hour's (or day's) top K. */
export const OTHER_KEY = "(other)";

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

/**
 * A fold as the coalescer stores it: the keys as JSON and every number in one Float64Array
 * (minutes, then each hour group's counts), which the Worker → object call and the object's
 * storage copy as bytes instead of turning ~20,000 numbers into text and back per chunk.
 */
export interface EncodedFold {
  /** JSON: [minute rows, [[dim, hour, keys], …]] */
  shape: string;
  counts: ArrayBuffer;
}

const MINUTE_WIDTH = 1 + COUNTERS;

export function encodeFold(fold: ChunkFold): EncodedFold {
  let total = fold.minutes.length * MINUTE_WIDTH;
  for (const group of fold.hours) total += group[3].length;
  const numbers = new Float64Array(total);
  let at = 0;
  for (const m of fold.minutes) {
    for (let j = 0; j < MINUTE_WIDTH; j++) numbers[at++] = m[j]!;
  }
  for (const group of fold.hours) {
    numbers.set(group[3], at);
    at += group[3].length;
  }
  const shape = JSON.stringify([
    fold.minutes.length,
    fold.hours.map(([dim, hour, keys]) => [dim, hour, keys]),
  ]);
  return { shape, counts: numbers.buffer };
}

export function decodeFold(
  head: Pick<ChunkFold, "records" | "firstTs" | "lastTs">,
  { shape, counts }: EncodedFold,
): ChunkFold {
  const [minuteRows, groups] = JSON.parse(shape) as [number, [number, number, string[]][]];
  const numbers = new Float64Array(counts);
  const minutes: Float64Array[] = [];
  let at = 0;
  for (let i = 0; i < minuteRows; i++, at += MINUTE_WIDTH)
    minutes.push(numbers.subarray(at, at + MINUTE_WIDTH));
  const hours: ChunkFold["hours"] = [];
  for (const [dim, hour, keys] of groups) {
    const end = at + keys.length * COUNTERS;
    hours.push([dim, hour, keys, numbers.subarray(at, end)]);
    at = end;
  }
  if (at !== numbers.length)
    throw new Error(`a buffered fold does not match its counts (${at} of ${numbers.length})`);
  return { ...head, minutes, hours };
}

/** A rollup row as written: [kind, node, bucket, key, ...Counts]. */
export type RollupRow = [number, string, number, string, ...Counts];

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
  // node → minute → counts, node → (hour * 8 + dim) → keys
  const nodes = new Map<string, { minutes: KeyCounts; hours: Map<number, KeyCounts> }>();
  for (const { nodeId, fold } of chunks) {
    let node = nodes.get(nodeId);
    if (!node) {
      node = { minutes: new KeyCounts(), hours: new Map() };
      nodes.set(nodeId, node);
    }
    for (const m of fold.minutes) node.minutes.add(String(m[0]), m, 1);
    for (const [dim, hour, keys, counts] of fold.hours) {
      let group = node.hours.get(hour * 8 + dim);
      if (!group) {
        group = new KeyCounts();
        node.hours.set(hour * 8 + dim, group);
      }
      for (let i = 0; i < keys.length; i++) group.add(keys[i]!, counts, i * COUNTERS);
    }
  }
  const rows: RollupRow[] = [];
  // Fleet rows: (bucket * 16 + kind) → keys
  const fleet = new Map<number, KeyCounts>();
  const fleetGroup = (kind: number, bucket: number) => {
    let group = fleet.get(bucket * 16 + kind);
    if (!group) {
      group = new KeyCounts();
      fleet.set(bucket * 16 + kind, group);
    }
    return group;
  };
  const admitted = new Map<string, Set<string>>();
  for (const [nodeId, node] of nodes) {
    const { keys: minuteKeys, counts: minuteCounts } = node.minutes;
    for (let i = 0; i < minuteKeys.length; i++) {
      const minute = Number(minuteKeys[i]);
      rows.push(rowOf(KIND.totalMinute, nodeId, minute, "", minuteCounts, i * COUNTERS));
      fleetGroup(KIND.totalMinute, minute).add("", minuteCounts, i * COUNTERS);
    }
    for (const [slot, group] of node.hours) {
      const dim = slot % 8;
      const hour = (slot - dim) / 8;
      const day = hour - (hour % DAY);
      const kept =
        dim === DIM.total ? group : capKeys(group, admittedKeys(nodeId, hour, dim), HOUR_TOP_K[dim] ?? 0);
      if (dim !== DIM.total) admitted.set(admittedId(nodeId, hour, dim), new Set(kept.keys));
      const hourFleet = fleetGroup(hourKindOf(dim), hour);
      const dayFleet = fleetGroup(dayKindOf(dim), day);
      for (let i = 0; i < kept.keys.length; i++) {
        const key = kept.keys[i]!;
        rows.push(rowOf(hourKindOf(dim), nodeId, hour, key, kept.counts, i * COUNTERS));
        hourFleet.add(key, kept.counts, i * COUNTERS);
        dayFleet.add(key, kept.counts, i * COUNTERS);
      }
    }
  }
  for (const [slot, group] of fleet) {
    const kind = slot % 16;
    const bucket = (slot - kind) / 16;
    for (let i = 0; i < group.keys.length; i++) {
      rows.push(rowOf(kind, FLEET, bucket, group.keys[i]!, group.counts, i * COUNTERS));
    }
  }
  return { rows, admitted };
}

function rowOf(
  kind: number,
  node: string,
  bucket: number,
  key: string,
  c: ArrayLike<number>,
  at: number,
): RollupRow {
  return [kind, node, bucket, key, c[at]!, c[at + 1]!, c[at + 2]!, c[at + 3]!, c[at + 4]!, c[at + 5]!];
}

/**
 * Keeps keys already admitted and the biggest new keys while places remain (ties broken by key,
 * so a retried flush decides the same); folds the rest into `(other)`.
 */
export function capKeys(group: KeyCounts, admitted: Set<string>, k: number): KeyCounts {
  let known = 0;
  for (const key of admitted) if (key !== OTHER_KEY) known++;
  let places = k - known;
  const fresh: number[] = [];
  for (let i = 0; i < group.keys.length; i++) {
    const key = group.keys[i]!;
    if (key !== OTHER_KEY && !admitted.has(key)) fresh.push(i);
  }
  if (fresh.length <= places) return group;
  const { keys, counts } = group;
  fresh.sort((a, b) => counts[b * COUNTERS]! - counts[a * COUNTERS]! || (keys[a]! < keys[b]! ? -1 : 1));
  const folded = new Set<number>();
  for (const i of fresh) {
    if (places > 0) places--;
    else folded.add(i);
  }
  const kept = new KeyCounts();
  for (let i = 0; i < keys.length; i++) {
    kept.add(folded.has(i) ? OTHER_KEY : keys[i]!, counts, i * COUNTERS);
  }
  return kept;
}
