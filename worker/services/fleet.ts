// The fleet as people look at it: one verb for the API's GET /nodes, the overview, the nodes page
// and the reports' node picker. Filters and sorting run in SQL so a page of 25 costs one query
// however large the fleet; `status` and `sync` are derived from the same rules as describeNode.

import { and, asc, count, desc, eq, isNotNull, isNull, or, type SQL, sql } from "drizzle-orm";
import { z } from "zod";
import { config } from "../config";
import type { Db } from "../db/client";
import { nodes } from "../db/schema";
import { AppError } from "../errors";
import { describeNode, getNode, type NodeView, onlineWindowMs } from "./nodes";
import { latestHead } from "./policy";

export const FLEET_SORTS = ["hostname", "status", "sync", "applied", "agent", "seen"] as const;
export const FLEET_PAGE_SIZE = 25;

/** Query-string shape shared by the dashboard and the API (every field optional). */
export const FleetQuery = z.object({
  q: z.string().trim().max(200).optional(),
  state: z.enum(["online", "offline", "revoked"]).optional(),
  sync: z.enum(["in-sync", "behind", "rejected", "never"]).optional(),
  version: z.string().trim().max(64).optional(),
  site: z.string().trim().min(1).max(64).optional(),
  sort: z
    .string()
    .regex(new RegExp(`^-?(${FLEET_SORTS.join("|")})$`))
    .optional(),
  page: z.coerce.number().int().min(1).max(100_000).optional(),
  size: z.coerce.number().int().min(1).max(1000).optional(),
});
export type FleetQuery = z.infer<typeof FleetQuery>;

/** The agent's spool report as stored (protocol StatusReport.spool). */
export interface SpoolState {
  pendingChunks?: number;
  pendingBytes?: number;
  oldestPendingAt?: string | number | null;
  droppedRecords?: number;
}
export type FleetNode = Omit<NodeView, "spool"> & { spool: SpoolState | null };

export interface FleetPage {
  nodes: FleetNode[];
  total: number;
  page: number;
  pages: number;
  size: number;
  latestVersion: number | null;
  /** Agent versions seen in the fleet (for the version filter). */
  agentVersions: string[];
  /** Every node counted by status and sync, unfiltered (the overview's tiles). */
  counts: Record<string, number>;
}

export const pollWaitSeconds = (env: Env) => config(env).pollWaitSeconds;

/** Parses a query object (from the URL) into FleetQuery; bad values are a 400, not a silent default. */
export function parseFleetQuery(query: Record<string, string | undefined>): FleetQuery {
  const clean = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined && v !== ""));
  const result = FleetQuery.safeParse(clean);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new AppError("BAD_REQUEST", `${issue?.path.join(".") || "query"}: ${issue?.message ?? "invalid"}`);
  }
  return result.data;
}

function statusSql(cutoff: number): SQL<string> {
  return sql<string>`case when ${nodes.revokedAt} is not null then 'revoked' when ${nodes.lastSeenAt} >= ${cutoff} then 'online' else 'offline' end`;
}

function syncSql(latest: number | null): SQL<string> {
  return sql<string>`case when ${nodes.syncState} = 'rejected' then 'rejected' when ${nodes.appliedVersion} is null then 'never' when ${latest ?? 0} > ${nodes.appliedVersion} then 'behind' else 'in-sync' end`;
}

function conditions(input: FleetQuery, cutoff: number, latest: number | null): SQL | undefined {
  const where: (SQL | undefined)[] = [];
  if (input.q) {
    // LIKE with the user's text escaped: % and _ are literal here.
    const pattern = `%${input.q.toLowerCase().replace(/[\\%_]/g, (m) => `\\${m}`)}%`;
    where.push(
      or(
        sql`lower(${nodes.hostname}) like ${pattern} escape '\\'`,
        sql`lower(${nodes.id}) like ${pattern} escape '\\'`,
        sql`lower(coalesce(${nodes.lastAddress}, '')) like ${pattern} escape '\\'`,
      ),
    );
  }
  if (input.state === "revoked") where.push(isNotNull(nodes.revokedAt));
  if (input.state === "online")
    where.push(and(isNull(nodes.revokedAt), sql`${nodes.lastSeenAt} >= ${cutoff}`));
  if (input.state === "offline")
    where.push(and(isNull(nodes.revokedAt), sql`coalesce(${nodes.lastSeenAt}, 0) < ${cutoff}`));
  if (input.sync) where.push(sql`${syncSql(latest)} = ${input.sync}`);
  if (input.version) where.push(eq(nodes.agentVersion, input.version));
  if (input.site) where.push(eq(nodes.site, input.site));
  return where.length ? and(...where) : undefined;
}

function orderOf(sort: string | undefined, cutoff: number, latest: number | null): SQL[] {
  const key = (sort ?? "hostname").replace(/^-/, "");
  const dir = sort?.startsWith("-") ? desc : asc;
  const column: Record<string, SQL> = {
    hostname: sql`${nodes.hostname}`,
    status: statusSql(cutoff),
    sync: syncSql(latest),
    applied: sql`coalesce(${nodes.appliedVersion}, -1)`,
    agent: sql`${nodes.agentVersion}`,
    seen: sql`coalesce(${nodes.lastSeenAt}, 0)`,
  };
  return [dir(column[key] ?? sql`${nodes.hostname}`), asc(nodes.hostname), asc(nodes.id)];
}

/** One page of the fleet, filtered and sorted, with the counts the overview shows. */
export async function listFleet(args: {
  db: Db;
  env: Env;
  input?: FleetQuery;
  /** Every matching node on one page (the API's GET /nodes and the overview). */
  all?: boolean;
  now?: number;
}): Promise<FleetPage> {
  const { db, env, input = {} } = args;
  const now = args.now ?? Date.now();
  const wait = pollWaitSeconds(env);
  const cutoff = now - onlineWindowMs(wait);
  const head = await latestHead(db);
  const latest = head?.version ?? null;
  const where = conditions(input, cutoff, latest);
  const size = input.size ?? FLEET_PAGE_SIZE;
  const limit = args.all ? -1 : size;
  const [totals, versions, tally] = await db.batch([
    db.select({ n: count() }).from(nodes).where(where),
    db.selectDistinct({ v: nodes.agentVersion }).from(nodes).orderBy(nodes.agentVersion),
    db
      .select({ status: statusSql(cutoff), sync: syncSql(latest), n: count() })
      .from(nodes)
      .groupBy(statusSql(cutoff), syncSql(latest)),
  ]);
  const total = totals[0]?.n ?? 0;
  const pages = args.all ? 1 : Math.max(1, Math.ceil(total / size));
  const page = Math.min(input.page ?? 1, pages);
  const rows = await db
    .select()
    .from(nodes)
    .where(where)
    .orderBy(...orderOf(input.sort, cutoff, latest))
    .limit(limit)
    .offset(args.all ? 0 : (page - 1) * size);
  const counts: Record<string, number> = { all: 0 };
  for (const t of tally) {
    counts.all = (counts.all ?? 0) + t.n;
    counts[t.status] = (counts[t.status] ?? 0) + t.n;
    // Sync counts only for nodes that still belong to the fleet.
    if (t.status !== "revoked") counts[`sync:${t.sync}`] = (counts[`sync:${t.sync}`] ?? 0) + t.n;
  }
  return {
    nodes: rows.map((n) => describeNode(n, latest, wait, now) as FleetNode),
    total,
    page,
    pages,
    size,
    latestVersion: latest,
    agentVersions: versions.map((v) => v.v),
    counts,
  };
}

/** Every node, hostname order: for pickers (id + hostname only). */
export async function listNodeNames(args: { db: Db }) {
  return args.db.select({ id: nodes.id, hostname: nodes.hostname }).from(nodes).orderBy(nodes.hostname);
}

/** One node described with the fleet's rules (status, sync against the latest version). */
export async function describeFleetNode(args: { db: Db; env: Env; id: string }): Promise<FleetNode> {
  const node = await getNode(args.db, args.id);
  const head = await latestHead(args.db);
  return describeNode(node, head?.version ?? null, pollWaitSeconds(args.env)) as FleetNode;
}

/** How many live nodes run `version` (the "applied on x of y" line after a publish). */
export async function appliedCount(args: { db: Db; version: number }) {
  const [row] = await args.db
    .select({
      applied: sql<number>`sum(case when ${nodes.appliedVersion} >= ${args.version} and coalesce(${nodes.syncState}, '') <> 'rejected' then 1 else 0 end)`,
      rejected: sql<number>`sum(case when ${nodes.syncState} = 'rejected' then 1 else 0 end)`,
      total: count(),
    })
    .from(nodes)
    .where(isNull(nodes.revokedAt));
  return { applied: Number(row?.applied ?? 0), rejected: Number(row?.rejected ?? 0), total: row?.total ?? 0 };
}
