import { and, desc, eq, inArray, lt, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { nodeEvents, nodes } from "../db/schema";
import type { Role } from "../env";
import { AppError } from "../errors";
import { type AuditContext, auditInsert } from "./audit";

// Defined next to the status writes that apply them; re-exported for the callers that know them from here.
export { EVENT_DEDUP_MS, NODE_EVENTS_KEPT } from "./node-status";

import { hashSecret } from "./secrets";

export type NodeRow = typeof nodes.$inferSelect;

/** How long after its last poll a node still counts as online. */
export function onlineWindowMs(pollWaitSeconds: number) {
  return (pollWaitSeconds + 30) * 1000;
}

export async function authenticateNode(db: Db, token: string | null): Promise<NodeRow> {
  if (!token) throw new AppError("NODE_UNKNOWN", "missing node token");
  return nodeByTokenHash(db, await hashSecret(token));
}

export async function nodeByTokenHash(db: Db, tokenHash: string): Promise<NodeRow> {
  const [node] = await db.select().from(nodes).where(eq(nodes.tokenHash, tokenHash)).limit(1);
  if (!node) throw new AppError("NODE_UNKNOWN", "unknown node token: re-enroll this node");
  if (node.revokedAt !== null) throw new AppError("NODE_UNKNOWN", "this node was revoked: re-enroll it");
  return node;
}

/** Address or agent version changed: written at once (rare); plain last-seen goes through touchNodes. */
export async function recordHeartbeat({
  db,
  nodeId,
  address,
  agentVersion,
}: {
  db: Db;
  nodeId: string;
  address: string | null;
  agentVersion?: string;
}) {
  await db
    .update(nodes)
    .set({ lastSeenAt: Date.now(), lastAddress: address, ...(agentVersion ? { agentVersion } : {}) })
    .where(eq(nodes.id, nodeId));
}

// Ids are bound as one JSON array each (json_each), so a statement binds two values however many
// nodes it touches; 2,000 ids of ~30 characters stay far below D1's statement and value limits.
const TOUCH_IDS_PER_STATEMENT = 2_000;

/** Coalesced heartbeats: one UPDATE per 2,000 nodes seen, in one batch. */
export async function touchNodes(db: Db, ids: string[], at: number) {
  const statements = [];
  for (let i = 0; i < ids.length; i += TOUCH_IDS_PER_STATEMENT) {
    const slice = JSON.stringify(ids.slice(i, i + TOUCH_IDS_PER_STATEMENT));
    statements.push(
      db
        .update(nodes)
        .set({ lastSeenAt: sql`max(coalesce(${nodes.lastSeenAt}, 0), ${at})` })
        .where(inArray(nodes.id, sql`(select value from json_each(${slice}))`)),
    );
  }
  const [first, ...rest] = statements;
  if (!first) return;
  await db.batch([first, ...rest]);
}

export async function pruneNodeEvents(db: Db, olderThan: number) {
  await db.delete(nodeEvents).where(lt(nodeEvents.at, olderThan));
}

export type NodeStatus = "online" | "offline" | "revoked";

export function describeNode(
  node: NodeRow,
  latestVersion: number | null,
  pollWaitSeconds: number,
  now = Date.now(),
) {
  const status: NodeStatus =
    node.revokedAt !== null
      ? "revoked"
      : node.lastSeenAt !== null && now - node.lastSeenAt <= onlineWindowMs(pollWaitSeconds)
        ? "online"
        : "offline";
  const sync: "rejected" | "never" | "behind" | "in-sync" =
    node.syncState === "rejected"
      ? "rejected"
      : node.appliedVersion === null
        ? "never"
        : latestVersion !== null && node.appliedVersion < latestVersion
          ? "behind"
          : "in-sync";
  const { tokenHash: _hash, reenrollUntil, ...rest } = node;
  return { ...rest, reenrollUntil, status, sync, latestVersion };
}

export type NodeView = ReturnType<typeof describeNode>;

/**
 * What a role may see of a node: the instanceId is the node's enrollment identity, so only
 * admins see it (with the token, it was once enough to re-enroll as that node).
 */
export function nodeViewFor(
  role: Role,
  view: NodeView,
): Omit<NodeView, "instanceId" | "reenrollUntil"> & Partial<Pick<NodeView, "instanceId" | "reenrollUntil">> {
  if (role === "admin") return view;
  const { instanceId: _instance, reenrollUntil: _until, ...rest } = view;
  return rest;
}

/** Every node, or one site's (`site`). */
export async function listNodes(db: Db, site?: string) {
  return db
    .select()
    .from(nodes)
    .where(site ? eq(nodes.site, site) : undefined)
    .orderBy(nodes.hostname);
}

export async function getNode(db: Db, id: string) {
  const [node] = await db.select().from(nodes).where(eq(nodes.id, id)).limit(1);
  if (!node) throw new AppError("NOT_FOUND", `no node ${id}`);
  return node;
}

export async function revokeNode({ db, id, ctx }: { db: Db; id: string; ctx: AuditContext }) {
  const node = await getNode(db, id);
  if (node.revokedAt !== null) return node;
  const now = Date.now();
  await db.batch([
    db.update(nodes).set({ revokedAt: now }).where(eq(nodes.id, id)),
    db.insert(nodeEvents).values({ nodeId: id, at: now, type: "revoked", detail: `by ${ctx.actor.id}` }),
    auditInsert(db, ctx, { action: "node.revoke", target: id, before: { hostname: node.hostname } }),
  ]);
  return { ...node, revokedAt: now };
}

/** How long a restore lets the node re-enroll once without its token. */
export const RESTORE_WINDOW_MS = 60 * 60_000;

/**
 * Admin restore: lifts a revocation (the node's token works again) and opens a one-time window
 * in which the node may re-enroll with a valid key but without its token (lost credentials).
 */
export async function restoreNode({
  db,
  id,
  ctx,
  now = Date.now(),
}: {
  db: Db;
  id: string;
  ctx: AuditContext;
  now?: number;
}) {
  const node = await getNode(db, id);
  const reenrollUntil = now + RESTORE_WINDOW_MS;
  await db.batch([
    db.update(nodes).set({ revokedAt: null, reenrollUntil }).where(eq(nodes.id, id)),
    db.insert(nodeEvents).values({ nodeId: id, at: now, type: "restored", detail: `by ${ctx.actor.id}` }),
    auditInsert(db, ctx, {
      action: "node.restore",
      target: id,
      before: { hostname: node.hostname, revokedAt: node.revokedAt },
      after: { reenrollUntil },
    }),
  ]);
  return { ...node, revokedAt: null, reenrollUntil };
}

export async function listNodeEvents(db: Db, nodeId: string, options: { limit: number; before?: number }) {
  await getNode(db, nodeId);
  return db
    .select()
    .from(nodeEvents)
    .where(and(eq(nodeEvents.nodeId, nodeId), options.before ? lt(nodeEvents.id, options.before) : undefined))
    .orderBy(desc(nodeEvents.id))
    .limit(options.limit);
}
