import { sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { nodeEvents } from "../db/schema";
import type { AuthedNode } from "../env";
import { AppError } from "../errors";
import { nodeByTokenHash } from "./nodes";
import { hashSecret } from "./secrets";

export type { AuthedNode } from "../env";

// A node polls every `wait` seconds, so without a cache every poll would read its row. Entries
// live this long; revocations and re-enrollments reach every isolate far sooner through the
// sweep below, which reads the node events added since the last sweep: one D1 query per isolate
// per SWEEP_MS, however large the fleet, and a revoke lands within SWEEP_MS + one query.
const ENTRY_TTL_MS = 10 * 60_000;
const SWEEP_MS = 2_000;
const MAX_ENTRIES = 50_000;

const byToken = new Map<string, { node: AuthedNode; at: number }>();
let cursor: number | null = null;
let sweptAt = 0;
let sweepingSince: number | null = null;
/** Nodes a sweep saw change lately: a row read that raced with the change is not cached. */
const recentlyChanged = new Map<string, number>();
const RECENT_MS = 60_000;

/** The node events that end a token (services/nodes.ts revokeNode, services/enrollment.ts). */
export const TOKEN_ENDING_EVENTS = ["revoked", "re-enrolled"] as const;
// A site move ("site" event) also drops the cached entry, so polls carry the new site within seconds.
const AUTH_EVENTS = sql`${nodeEvents.type} in ${[...TOKEN_ENDING_EVENTS, "site"]}`;

async function sweep(db: Db): Promise<void> {
  const [row] = await db.all<{ top: number | null; ids: string }>(
    sql`select (select max(${nodeEvents.id}) from ${nodeEvents}) as top,
      (select json_group_array(${nodeEvents.nodeId}) from ${nodeEvents}
        where ${nodeEvents.id} > ${cursor ?? Number.MAX_SAFE_INTEGER} and ${AUTH_EVENTS}) as ids`,
  );
  const changed = new Set(JSON.parse(row?.ids ?? "[]") as string[]);
  const now = Date.now();
  for (const [id, at] of recentlyChanged) if (now - at > RECENT_MS) recentlyChanged.delete(id);
  if (changed.size > 0) {
    for (const id of changed) recentlyChanged.set(id, now);
    for (const [hash, entry] of byToken) if (changed.has(entry.node.id)) byToken.delete(hash);
  }
  cursor = row?.top ?? 0;
}

// A promise that does I/O belongs to the request that started it: a Worker must never make
// another request await it (if the first one is cancelled, the second hangs). So one request
// sweeps and the others keep using the cache meanwhile; a sweep that never finished (its request
// was cancelled) is taken over after SWEEP_STALE_MS.
const SWEEP_STALE_MS = 5_000;

/** Brings the cache up to date with revocations, at most once per SWEEP_MS. */
async function sweepIfDue(db: Db): Promise<void> {
  const now = Date.now();
  if (cursor !== null && now - sweptAt < SWEEP_MS) return;
  if (cursor !== null && sweepingSince !== null && now - sweepingSince < SWEEP_STALE_MS) return;
  sweepingSince = now;
  try {
    await sweep(db);
    sweptAt = now;
  } finally {
    if (sweepingSince === now) sweepingSince = null;
  }
}

/** authenticateNode with an isolate cache; a revoked or re-enrolled token stops working within seconds. */
export async function authenticateNodeCached(db: Db, token: string | null): Promise<AuthedNode> {
  if (!token) throw new AppError("NODE_UNKNOWN", "missing node token");
  const tokenHash = await hashSecret(token);
  // The cursor is set before the first row is cached, so no revocation can slip between them.
  await sweepIfDue(db);
  const hit = byToken.get(tokenHash);
  if (hit && Date.now() - hit.at < ENTRY_TTL_MS) return hit.node;
  const row = await nodeByTokenHash(db, tokenHash);
  const node: AuthedNode = {
    id: row.id,
    tokenHash,
    lastAddress: row.lastAddress,
    agentVersion: row.agentVersion,
    site: row.site,
    siteSince: row.siteSince,
  };
  byToken.delete(tokenHash);
  if (recentlyChanged.has(row.id)) return node;
  byToken.set(tokenHash, { node, at: Date.now() });
  if (byToken.size > MAX_ENTRIES) byToken.delete(byToken.keys().next().value!);
  return node;
}

/** After a long wait: is the node still allowed? Costs a query only when a sweep is due. */
export async function confirmNode(db: Db, node: AuthedNode): Promise<void> {
  await sweepIfDue(db);
  if (byToken.has(node.tokenHash)) return;
  await nodeByTokenHash(db, node.tokenHash);
}

/** Keeps the cached copy in step with a heartbeat that wrote new address/agent fields. */
export function rememberNodeFields(
  node: AuthedNode,
  fields: Partial<Pick<AuthedNode, "lastAddress" | "agentVersion">>,
) {
  Object.assign(node, fields);
}

export function nodeAuthCacheSize() {
  return byToken.size;
}
