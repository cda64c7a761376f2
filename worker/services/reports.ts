import type { Db } from "../db/client";
import { AppError } from "../errors";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MAX_SPAN = 400 * DAY;

export type Grain = "m" | "h" | "d";
const GRAIN_MS: Record<Grain, number> = { m: MINUTE, h: HOUR, d: DAY };

export interface ReportRange {
  from: number;
  to: number;
}

export interface ReportFilter extends ReportRange {
  /** A node id, or undefined for the whole fleet. */
  node?: string;
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

// Totals exist per minute, hour and day; dimensions (host, client, …) per hour and day.
// The grain is the finest one whose row count stays small for the span asked.
export function totalsGrain({ from, to }: ReportRange): Grain {
  const span = to - from;
  return span <= 6 * HOUR ? "m" : span <= 8 * DAY ? "h" : "d";
}

export function dimensionGrain({ from, to }: ReportRange): Grain {
  return to - from <= 8 * DAY ? "h" : "d";
}

function bounds(range: ReportRange, grain: Grain) {
  const size = GRAIN_MS[grain];
  return { start: range.from - (range.from % size), end: range.to };
}

const scope = (filter: ReportFilter) => filter.node ?? "*";

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

export async function summary(db: Db, filter: ReportFilter): Promise<Summary> {
  const d1 = db.$client;
  const grain = totalsGrain(filter);
  const { start, end } = bounds(filter, grain);
  const dimGrain = dimensionGrain(filter);
  const dim = bounds(filter, dimGrain);
  const node = scope(filter);
  const [totals, clients, users, nodes] = await d1.batch([
    d1
      .prepare(
        `SELECT action, SUM(requests) AS requests, SUM(bytes_in) AS bytesIn, SUM(bytes_out) AS bytesOut
         FROM rollups WHERE dim = 'total' AND node_id = ? AND grain = ? AND bucket >= ? AND bucket < ? GROUP BY action`,
      )
      .bind(node, grain, start, end),
    d1
      .prepare(
        "SELECT COUNT(DISTINCT key) AS n FROM rollups WHERE dim = 'client' AND node_id = ? AND grain = ? AND bucket >= ? AND bucket < ?",
      )
      .bind(node, dimGrain, dim.start, dim.end),
    d1
      .prepare(
        "SELECT COUNT(DISTINCT key) AS n FROM rollups WHERE dim = 'user' AND node_id = ? AND grain = ? AND bucket >= ? AND bucket < ?",
      )
      .bind(node, dimGrain, dim.start, dim.end),
    d1
      .prepare(
        `SELECT COUNT(DISTINCT node_id) AS n FROM rollups
         WHERE dim = 'total' AND node_id IN (SELECT value FROM json_each(?)) AND grain = ? AND bucket >= ? AND bucket < ?`,
      )
      .bind(JSON.stringify(filter.node ? [filter.node] : await nodeIds(db)), dimGrain, dim.start, dim.end),
  ]);
  const out: Summary = {
    requests: 0,
    allowed: 0,
    blocked: 0,
    authChallenges: 0,
    errors: 0,
    bytesIn: 0,
    bytesOut: 0,
    clients: (clients!.results[0] as { n: number } | undefined)?.n ?? 0,
    users: (users!.results[0] as { n: number } | undefined)?.n ?? 0,
    nodes: (nodes!.results[0] as { n: number } | undefined)?.n ?? 0,
    from: start,
    to: end,
    grain,
    incomplete: await incomplete(db, filter),
  };
  for (const row of totals!.results as {
    action: string;
    requests: number;
    bytesIn: number;
    bytesOut: number;
  }[]) {
    out.requests += row.requests;
    out.bytesIn += row.bytesIn;
    out.bytesOut += row.bytesOut;
    if (row.action === "allow") out.allowed += row.requests;
    else if (row.action === "block") out.blocked += row.requests;
    else if (row.action === "auth") out.authChallenges += row.requests;
    else out.errors += row.requests;
  }
  return out;
}

async function nodeIds(db: Db): Promise<string[]> {
  const { results } = await db.$client.prepare("SELECT id FROM nodes").all<{ id: string }>();
  return results.map((r) => r.id);
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
export async function timeseries(db: Db, filter: ReportFilter) {
  const grain = totalsGrain(filter);
  const { start, end } = bounds(filter, grain);
  const span = end - start;
  const bucketMs = grain === "m" ? (span <= 2 * HOUR ? MINUTE : 5 * MINUTE) : GRAIN_MS[grain];
  const { results } = await db.$client
    .prepare(
      `SELECT bucket - (bucket % ?) AS t, action, SUM(requests) AS requests, SUM(bytes_in) AS bytesIn, SUM(bytes_out) AS bytesOut
       FROM rollups WHERE dim = 'total' AND node_id = ? AND grain = ? AND bucket >= ? AND bucket < ?
       GROUP BY t, action ORDER BY t`,
    )
    .bind(bucketMs, scope(filter), grain, start, end)
    .all<{ t: number; action: string; requests: number; bytesIn: number; bytesOut: number }>();
  const points = new Map<number, Point>();
  for (let t = start - (start % bucketMs); t < end; t += bucketMs) {
    points.set(t, { t, requests: 0, allowed: 0, blocked: 0, bytesIn: 0, bytesOut: 0 });
  }
  for (const row of results) {
    const point = points.get(row.t);
    if (!point) continue;
    point.requests += row.requests;
    point.bytesIn += row.bytesIn;
    point.bytesOut += row.bytesOut;
    if (row.action === "allow") point.allowed += row.requests;
    if (row.action === "block") point.blocked += row.requests;
  }
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

export interface TopRow {
  key: string;
  requests: number;
  blocked: number;
  bytesIn: number;
  bytesOut: number;
}

export async function top(
  db: Db,
  filter: ReportFilter & { by: TopDimension; action?: string; limit: number },
): Promise<{
  by: TopDimension;
  rows: TopRow[];
  incomplete: Incomplete[];
  grain: Grain;
  from: number;
  to: number;
}> {
  const grain = dimensionGrain(filter);
  const { start, end } = bounds(filter, grain);
  const actionClause = filter.action ? "AND action = ?" : "";
  const select = `SUM(requests) AS requests, SUM(CASE WHEN action = 'block' THEN requests ELSE 0 END) AS blocked,
    SUM(bytes_in) AS bytesIn, SUM(bytes_out) AS bytesOut`;
  const statement =
    filter.by === "node"
      ? db.$client
          .prepare(
            `SELECT node_id AS key, ${select} FROM rollups
             WHERE dim = 'total' AND node_id IN (SELECT value FROM json_each(?)) AND grain = ? AND bucket >= ? AND bucket < ? ${actionClause}
             GROUP BY node_id ORDER BY requests DESC LIMIT ?`,
          )
          .bind(
            JSON.stringify(filter.node ? [filter.node] : await nodeIds(db)),
            grain,
            start,
            end,
            ...(filter.action ? [filter.action] : []),
            filter.limit,
          )
      : db.$client
          .prepare(
            `SELECT key, ${select} FROM rollups
             WHERE dim = ? AND node_id = ? AND grain = ? AND bucket >= ? AND bucket < ? ${actionClause}
             GROUP BY key ORDER BY requests DESC LIMIT ?`,
          )
          .bind(
            filter.by,
            scope(filter),
            grain,
            start,
            end,
            ...(filter.action ? [filter.action] : []),
            filter.limit,
          );
  const { results } = await statement.all<TopRow>();
  return {
    by: filter.by,
    rows: results,
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
         FROM (SELECT node_id, epoch, seq, first_ts,
                 LAG(seq) OVER (PARTITION BY node_id, epoch ORDER BY seq) AS prev,
                 LAG(last_ts) OVER (PARTITION BY node_id, epoch ORDER BY seq) AS prev_last
               FROM log_chunks WHERE (?1 IS NULL OR node_id = ?1)) g
         JOIN nodes n ON n.id = g.node_id
         WHERE g.prev IS NOT NULL AND g.seq > g.prev + 1 AND g.prev_last < ?3 AND g.first_ts > ?2
         ORDER BY g.node_id, g.epoch, g.seq LIMIT 100`,
      )
      .bind(filter.node ?? null, filter.from, filter.to),
    d1
      .prepare(
        `SELECT id AS nodeId, hostname, spool FROM nodes
         WHERE revoked_at IS NULL AND (?1 IS NULL OR id = ?1) AND json_extract(spool, '$.pendingChunks') > 0`,
      )
      .bind(filter.node ?? null),
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
  await d1.batch([
    d1.prepare("DELETE FROM rollups WHERE grain = 'm' AND bucket < ?").bind(cutoff),
    d1.prepare("DELETE FROM rollups WHERE grain = 'h' AND bucket < ?").bind(cutoff),
    d1.prepare("DELETE FROM rollups WHERE grain = 'd' AND bucket < ?").bind(cutoff - (cutoff % DAY)),
    d1.prepare("DELETE FROM log_chunks WHERE last_ts < ?").bind(cutoff),
  ]);
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
