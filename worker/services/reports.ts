import { DIM } from "../../protocol/chunk-tally";
import type { Db } from "../db/client";
import { AppError } from "../errors";
import { DAY_TOP_K, HOUR_TOP_K, OTHER_KEY } from "./ingest-fold";
import { DAY, type Dimension, FLEET, GRAIN_MS, type Grain, HOUR, KIND, kindOf, MINUTE } from "./rollup-kinds";
import { checkNodeOrSite, unknownSite } from "./site-scope";

const MAX_SPAN = 400 * DAY;

export interface ReportRange {
  from: number;
  to: number;
}

export interface ReportFilter extends ReportRange {
  /** A node id, or undefined for the whole fleet. */
  node?: string | undefined;
  /** A site name: the site's nodes (at most one of node and site). */
  site?: string | undefined;
}

export function resolveRange(
  from: number | undefined,
  to: number | undefined,
  now = Date.now(),
): ReportRange {
  const end = to ?? now;
  const start = from ?? end - DAY;
  if (!(start < end)) {
    throw new AppError("VALIDATION_FAILED", "from must be before to", [
      { path: "query.from", message: "not before to" },
    ]);
  }
  if (end - start > MAX_SPAN) {
    throw new AppError("VALIDATION_FAILED", "a report covers at most 400 days", [
      { path: "query.from", message: "range too long" },
    ]);
  }
  return { from: start, to: end };
}

// The grain is the finest one whose row count stays small for the span asked, and that still
// exists: compaction (services/rollup-compact.ts) turns a node's hourly dimension rows into day
// rows and drops its minute totals before `compactedBefore`. Fleet-wide dimension rows switch to
// days beyond 48 h: a week of hourly host rows is ~170 × thousands of hosts, too many to group
// within the latency budget (measured: ~280 ms at 10M requests), a week of daily rows is ~8 ×.
const FLEET_HOURLY_DIMENSIONS = 2 * DAY;

/** A report's filter plus how far compaction has gone (reportState). */
export interface ReportScope extends ReportFilter {
  compactedBefore: number;
}

// A site is read from its nodes' own rows (there are no per-site rollups), so it takes the
// grains of a node: compacted ranges use hour totals and day-plus-hour dimension rows.
const perNode = (scope: ReportFilter) => Boolean(scope.node || scope.site);

export function totalsGrain(scope: ReportScope): Grain {
  const { from, to, compactedBefore } = scope;
  const node = perNode(scope);
  const span = to - from;
  if (span <= 6 * HOUR) return node && from < compactedBefore ? "h" : "m";
  return node || span <= 8 * DAY ? "h" : "d";
}

/**
 * "d" for a node means its day rows before `compactedBefore` plus its hour rows after (both
 * are read, so a compaction running meanwhile changes nothing); for the fleet, its day rows.
 */
export function dimensionGrain(scope: ReportScope): Grain {
  const { from, to, compactedBefore } = scope;
  if (from < compactedBefore) return "d";
  return perNode(scope) || to - from <= FLEET_HOURLY_DIMENSIONS ? "h" : "d";
}

/** The rollup kinds a dimension query of this scope sums. */
function dimensionKinds(scope: ReportScope, dimension: Dimension): string {
  const grain = dimensionGrain(scope);
  if (perNode(scope) && grain === "d") return `${kindOf(dimension, "h")}, ${kindOf(dimension, "d")}`;
  return String(kindOf(dimension, grain));
}

/**
 * The effective range of every report: `from` aligned down and `to` up to the coarsest grain
 * the range uses (hour, or day for long fleet ranges and compacted days), so summary, time
 * series and top lists of one range count exactly the same requests.
 */
export function effectiveRange(scope: ReportScope): ReportRange {
  const size = GRAIN_MS[dimensionGrain(scope)];
  const rest = scope.to % size;
  return { from: scope.from - (scope.from % size), to: rest ? scope.to - rest + size : scope.to };
}

/** Reads how far compaction has gone, once per report; an unknown site is a 400. */
export async function reportScope(db: Db, filter: ReportFilter): Promise<ReportScope> {
  checkNodeOrSite(filter, "a report");
  const [state, site] = await db.$client.batch([
    db.$client.prepare("SELECT compacted_before AS compactedBefore FROM report_state WHERE id = 1"),
    db.$client.prepare("SELECT name FROM sites WHERE name = ?").bind(filter.site ?? ""),
  ]);
  if (filter.site && !site?.results.length) throw unknownSite(filter.site);
  const row = state?.results[0] as { compactedBefore: number } | undefined;
  return { ...filter, compactedBefore: row?.compactedBefore ?? 0 };
}

// The rollup rows a report reads: the fleet's own rows, one node's, or the rows of a site's
// nodes (nodes_site_idx, then the rollups primary key (kind, node_id, bucket) once per node).
const SITE_NODES = "node_id IN (SELECT id FROM nodes WHERE site = ?)";
const rowsOf = (filter: ReportFilter): { sql: string; arg: string } =>
  filter.site ? { sql: SITE_NODES, arg: filter.site } : { sql: "node_id = ?", arg: filter.node ?? FLEET };

/** Per-node rows of the scope: one node, a site's nodes, or every node (for node counts). */
async function eachNodeRows(db: Db, filter: ReportFilter): Promise<{ sql: string; arg: string }> {
  if (filter.site) return { sql: SITE_NODES, arg: filter.site };
  return {
    sql: "node_id IN (SELECT value FROM json_each(?))",
    arg: JSON.stringify(filter.node ? [filter.node] : await nodeIds(db)),
  };
}

async function nodeIds(db: Db): Promise<string[]> {
  const { results } = await db.$client.prepare("SELECT id FROM nodes").all<{ id: string }>();
  return results.map((r) => r.id);
}

export interface Summary {
  requests: number;
  allowed: number;
  blocked: number;
  authChallenges: number;
  errors: number;
  bytesIn: number;
  bytesOut: number;
  clients: number;
  users: number;
  nodes: number;
  from: number;
  to: number;
  grain: Grain;
  incomplete: Incomplete[];
}

export async function summary(db: Db, range: ReportFilter): Promise<Summary> {
  const d1 = db.$client;
  const filter = await reportScope(db, range);
  const grain = totalsGrain(filter);
  const { from: start, to: end } = effectiveRange(filter);
  const rows = rowsOf(filter);
  const each = await eachNodeRows(db, filter);
  // `(other)` is not a client or user: with keys folded into it the count is a lower bound.
  const distinct = (dimension: Dimension) =>
    d1
      .prepare(
        `SELECT COUNT(DISTINCT key) AS n FROM rollups
         WHERE kind IN (${dimensionKinds(filter, dimension)}) AND ${rows.sql} AND bucket >= ? AND bucket < ? AND key <> '${OTHER_KEY}'`,
      )
      .bind(rows.arg, start, end);
  const [totals, clients, users, nodes] = await d1.batch([
    d1
      .prepare(
        `SELECT COALESCE(SUM(requests), 0) AS requests, COALESCE(SUM(blocked), 0) AS blocked,
                COALESCE(SUM(auth), 0) AS auth, COALESCE(SUM(errors), 0) AS errors,
                COALESCE(SUM(bytes_in), 0) AS bytesIn, COALESCE(SUM(bytes_out), 0) AS bytesOut
         FROM rollups WHERE kind = ? AND ${rows.sql} AND bucket >= ? AND bucket < ?`,
      )
      .bind(kindOf("total", grain), rows.arg, start, end),
    distinct("client"),
    distinct("user"),
    d1
      .prepare(
        `SELECT COUNT(DISTINCT node_id) AS n FROM rollups
         WHERE kind = ? AND ${each.sql} AND bucket >= ? AND bucket < ?`,
      )
      .bind(KIND.totalHour, each.arg, start, end),
  ]);
  const t = totals!.results[0] as Record<
    "requests" | "blocked" | "auth" | "errors" | "bytesIn" | "bytesOut",
    number
  >;
  const count = (r: D1Result | undefined) => (r?.results[0] as { n: number } | undefined)?.n ?? 0;
  return {
    requests: t.requests,
    allowed: t.requests - t.blocked - t.auth - t.errors,
    blocked: t.blocked,
    authChallenges: t.auth,
    errors: t.errors,
    bytesIn: t.bytesIn,
    bytesOut: t.bytesOut,
    clients: count(clients),
    users: count(users),
    nodes: count(nodes),
    from: start,
    to: end,
    grain,
    incomplete: await incomplete(db, filter),
  };
}

export interface Point {
  t: number;
  requests: number;
  allowed: number;
  blocked: number;
  bytesIn: number;
  bytesOut: number;
}

/** Requests, blocked and bytes per bucket; the bucket grows with the range (≤ ~200 points). */
export async function timeseries(db: Db, range: ReportFilter) {
  const filter = await reportScope(db, range);
  const grain = totalsGrain(filter);
  const { from: start, to: end } = effectiveRange(filter);
  const span = end - start;
  const bucketMs = grain === "m" ? (span <= 2 * HOUR ? MINUTE : 5 * MINUTE) : GRAIN_MS[grain];
  const rows = rowsOf(filter);
  const { results } = await db.$client
    .prepare(
      `SELECT bucket - (bucket % ?) AS t, SUM(requests) AS requests, SUM(requests - blocked - auth - errors) AS allowed,
              SUM(blocked) AS blocked, SUM(bytes_in) AS bytesIn, SUM(bytes_out) AS bytesOut
       FROM rollups WHERE kind = ? AND ${rows.sql} AND bucket >= ? AND bucket < ?
       GROUP BY t ORDER BY t`,
    )
    .bind(bucketMs, kindOf("total", grain), rows.arg, start, end)
    .all<Point>();
  const points = new Map<number, Point>();
  for (let t = start - (start % bucketMs); t < end; t += bucketMs) {
    points.set(t, { t, requests: 0, allowed: 0, blocked: 0, bytesIn: 0, bytesOut: 0 });
  }
  for (const row of results) if (points.has(row.t)) points.set(row.t, row);
  return {
    from: start,
    to: end,
    grain,
    bucketMs,
    points: [...points.values()],
    incomplete: await incomplete(db, filter),
  };
}

export const TOP_DIMENSIONS = ["host", "client", "user", "rule", "node"] as const;
export type TopDimension = (typeof TOP_DIMENSIONS)[number];
export type Action = "allow" | "block" | "auth" | "error";

export interface TopRow {
  key: string;
  /** For `by=node`: the node's hostname. */
  label?: string;
  requests: number;
  blocked: number;
  bytesIn: number;
  bytesOut: number;
}

// With an action filter, rows are ranked by that action's count, reported as `requests`.
const ACTION_COUNT: Record<Action, string> = {
  allow: "requests - blocked - auth - errors",
  block: "blocked",
  auth: "auth",
  error: "errors",
};

/** Traffic of keys outside the top K of their node-hour or day, folded at ingestion or compaction. */
export interface OtherRow {
  requests: number;
  blocked: number;
  bytesIn: number;
  bytesOut: number;
}

export async function top(
  db: Db,
  range: ReportFilter & { by: TopDimension; action?: Action; limit: number },
) {
  const filter = { ...range, ...(await reportScope(db, range)) };
  const grain = filter.by === "node" ? "h" : dimensionGrain(filter);
  const { from: start, to: end } = effectiveRange(filter);
  const ranked = filter.action ? `SUM(${ACTION_COUNT[filter.action]})` : "SUM(requests)";
  const select = `${ranked} AS requests, SUM(blocked) AS blocked, SUM(bytes_in) AS bytesIn, SUM(bytes_out) AS bytesOut`;
  const d1 = db.$client;
  if (filter.by === "node") {
    const each = await eachNodeRows(db, filter);
    const { results } = await d1
      .prepare(
        `SELECT r.node_id AS key, ${select}, (SELECT hostname FROM nodes WHERE id = r.node_id) AS label
         FROM rollups r
         WHERE kind = ? AND ${each.sql} AND bucket >= ? AND bucket < ?
         GROUP BY r.node_id HAVING ${ranked} > 0 ORDER BY 2 DESC LIMIT ?`,
      )
      .bind(KIND.totalHour, each.arg, start, end, filter.limit)
      .all<TopRow>();
    return {
      by: filter.by,
      rows: results,
      other: null,
      topK: null,
      incomplete: await incomplete(db, filter),
      grain,
      from: start,
      to: end,
    };
  }
  const rowsSql = rowsOf(filter);
  const where = `kind IN (${dimensionKinds(filter, filter.by)}) AND ${rowsSql.sql} AND bucket >= ? AND bucket < ?`;
  const [rows, other] = await d1.batch([
    d1
      .prepare(
        `SELECT key, ${select} FROM rollups WHERE ${where} AND key <> '${OTHER_KEY}'
         GROUP BY key HAVING ${ranked} > 0 ORDER BY 2 DESC LIMIT ?`,
      )
      .bind(rowsSql.arg, start, end, filter.limit),
    d1
      .prepare(`SELECT ${select} FROM rollups WHERE ${where} AND key = '${OTHER_KEY}' HAVING COUNT(*) > 0`)
      .bind(rowsSql.arg, start, end),
  ]);
  const dim = DIM[filter.by];
  return {
    by: filter.by,
    rows: rows!.results as unknown as TopRow[],
    // Top-K lists: a key outside a node-hour's top K there (or a day's, once compacted) is counted
    // here, so the rows are a lower bound per key and rows + other equal the total exactly.
    other: ((other!.results[0] as OtherRow | undefined) ?? null) as OtherRow | null,
    topK: { perNodeHour: HOUR_TOP_K[dim]!, perDay: DAY_TOP_K[dim]! },
    incomplete: await incomplete(db, filter),
    grain,
    from: start,
    to: end,
  };
}

export interface Incomplete {
  nodeId: string;
  hostname: string;
  kind: "gap" | "backlog";
  missing: string;
}

/**
 * What the report cannot count yet: holes in a node's chunk sequence whose time overlaps the
 * range, and chunks a node reports as still waiting in its spool.
 */
export async function incomplete(db: Db, filter: ReportFilter): Promise<Incomplete[]> {
  const d1 = db.$client;
  const [gaps, backlog] = await d1.batch([
    d1
      .prepare(
        `SELECT g.node_id AS nodeId, n.hostname AS hostname, g.epoch AS epoch, g.prev AS prev, g.seq AS seq
         FROM (SELECT node_id, epoch, first_seq AS seq, first_ts,
                 LAG(last_seq) OVER (PARTITION BY node_id, epoch ORDER BY first_seq) AS prev,
                 LAG(last_ts) OVER (PARTITION BY node_id, epoch ORDER BY first_seq) AS prev_last
               FROM (SELECT node_id, epoch, seq AS first_seq, seq AS last_seq, first_ts, last_ts FROM log_chunks
                     WHERE (?1 IS NULL OR node_id = ?1) AND (?4 IS NULL OR node_id IN (SELECT id FROM nodes WHERE site = ?4))
                     UNION ALL
                     SELECT node_id, epoch, first_seq, last_seq, first_ts, last_ts FROM log_chunk_runs
                     WHERE (?1 IS NULL OR node_id = ?1) AND (?4 IS NULL OR node_id IN (SELECT id FROM nodes WHERE site = ?4)))) g
         JOIN nodes n ON n.id = g.node_id
         WHERE g.prev IS NOT NULL AND g.seq > g.prev + 1 AND g.prev_last < ?3 AND g.first_ts > ?2
         ORDER BY g.node_id, g.epoch, g.seq LIMIT 100`,
      )
      .bind(filter.node ?? null, filter.from, filter.to, filter.site ?? null),
    d1
      .prepare(
        `SELECT id AS nodeId, hostname, spool FROM nodes
         WHERE revoked_at IS NULL AND (?1 IS NULL OR id = ?1) AND (?2 IS NULL OR site = ?2)
           AND json_extract(spool, '$.pendingChunks') > 0`,
      )
      .bind(filter.node ?? null, filter.site ?? null),
  ]);
  const out: Incomplete[] = [];
  for (const g of gaps!.results as {
    nodeId: string;
    hostname: string;
    epoch: string;
    prev: number;
    seq: number;
  }[]) {
    const first = g.prev + 1;
    const last = g.seq - 1;
    out.push({
      nodeId: g.nodeId,
      hostname: g.hostname,
      kind: "gap",
      missing: `chunks ${g.epoch}.${first}${last > first ? `–${last}` : ""} never arrived`,
    });
  }
  for (const b of backlog!.results as { nodeId: string; hostname: string; spool: string }[]) {
    const spool = JSON.parse(b.spool) as { pendingChunks: number; oldestPendingAt: string | null };
    const oldest = spool.oldestPendingAt ? Date.parse(spool.oldestPendingAt) : Number.NaN;
    if (Number.isFinite(oldest) && oldest >= filter.to) continue;
    out.push({
      nodeId: b.nodeId,
      hostname: b.hostname,
      kind: "backlog",
      missing: `${spool.pendingChunks} chunk(s) still in the node's spool${spool.oldestPendingAt ? ` since ${spool.oldestPendingAt}` : ""}`,
    });
  }
  return out;
}

/** Deletes rollups and chunk ledger rows older than the retention period (the cron trigger). */
export async function pruneReports(db: Db, retentionDays: number, now = Date.now()) {
  const cutoff = now - retentionDays * DAY;
  const d1 = db.$client;
  // Each delete walks the primary key (kind, node, bucket) instead of scanning the table.
  const statements = [
    d1.prepare("DELETE FROM log_chunks WHERE last_ts < ?").bind(cutoff),
    d1.prepare("DELETE FROM log_chunk_runs WHERE last_ts < ?").bind(cutoff),
  ];
  for (const node of [FLEET, ...(await nodeIds(db))]) {
    for (const kind of Object.values(KIND)) {
      statements.push(
        d1
          .prepare("DELETE FROM rollups WHERE kind = ? AND node_id = ? AND bucket < ?")
          .bind(kind, node, cutoff),
      );
    }
  }
  for (let i = 0; i < statements.length; i += 200) await d1.batch(statements.slice(i, i + 200));
}

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? "" : String(value);
  // Leading = + - @ would be run as formulas by spreadsheets: prefix a quote (OWASP CSV injection).
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

export function toCsv(header: string[], rows: unknown[][]): string {
  return `${[header, ...rows].map((row) => row.map(csvCell).join(",")).join("\r\n")}\r\n`;
}
