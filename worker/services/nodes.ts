import { and, desc, eq, lt } from "drizzle-orm";
import type { StatusReport } from "../../protocol/wire";
import type { Db } from "../db/client";
import { nodeEvents, nodes } from "../db/schema";
import type { Role } from "../env";
import { AppError } from "../errors";
import { type AuditContext, auditInsert } from "./audit";
import { hashSecret } from "./secrets";

export type NodeRow = typeof nodes.$inferSelect;

/** How long after its last poll a node still counts as online. */
export function onlineWindowMs(pollWaitSeconds: number) {
  return (pollWaitSeconds + 30) * 1000;
}

export async function authenticateNode(db: Db, token: string | null): Promise<NodeRow> {
  if (!token) throw new AppError("NODE_UNKNOWN", "missing node token");
  const [node] = await db
    .select()
    .from(nodes)
    .where(eq(nodes.tokenHash, await hashSecret(token)))
    .limit(1);
  if (!node) throw new AppError("NODE_UNKNOWN", "unknown node token: re-enroll this node");
  if (node.revokedAt !== null) throw new AppError("NODE_UNKNOWN", "this node was revoked: re-enroll it");
  return node;
}

export async function recordHeartbeat(db: Db, nodeId: string, address: string | null, agentVersion?: string) {
  await db
    .update(nodes)
    .set({ lastSeenAt: Date.now(), lastAddress: address, ...(agentVersion ? { agentVersion } : {}) })
    .where(eq(nodes.id, nodeId));
}

/** Records an ACK/NACK; an event is added only when the outcome changes, so heartbeats stay quiet. */
export async function recordStatus(db: Db, node: NodeRow, report: StatusReport, address: string | null) {
  const now = Date.now();
  const changed =
    node.syncState !== report.state ||
    node.appliedVersion !== report.appliedVersion ||
    (report.state === "rejected" && node.lastError !== (report.error ?? null));
  const update = db
    .update(nodes)
    .set({
      appliedVersion: report.appliedVersion,
      appliedHash: report.appliedHash,
      syncState: report.state,
      lastStatusAt: now,
      lastSeenAt: now,
      lastAddress: address,
      agentVersion: report.agentVersion,
      proxyKind: report.proxy.kind,
      proxyListen: report.proxy.listen,
      proxyVersion: report.proxy.version,
      uptimeSeconds: Math.floor(report.uptimeSeconds),
      spool: report.spool,
      ...(report.state === "rejected"
        ? { lastError: report.error ?? "rejected without a reason", lastErrorAt: now }
        : {}),
    })
    .where(eq(nodes.id, node.id));
  if (!changed) {
    await update;
    return;
  }
  const type = report.state === "applied" ? "policy.applied" : "policy.rejected";
  const detail = report.state === "rejected" ? (report.error ?? null) : null;
  const d1 = db.$client;
  const change = update.toSQL();
  await d1.batch([
    d1.prepare(change.sql).bind(...change.params),
    ...eventStatements(d1, node.id, now, type, report.appliedVersion, detail),
  ]);
}

/** Events a node keeps (newest first); older ones go as new ones arrive. */
export const NODE_EVENTS_KEPT = 100;
/** The same event again within this window is not a new event (a flapping node stays quiet). */
const EVENT_DEDUP_MS = 10 * 60_000;

/**
 * A node-written event, bounded: skipped when the same (type, version, detail) was recorded
 * within EVENT_DEDUP_MS, and the node's timeline trimmed to NODE_EVENTS_KEPT rows.
 */
function eventStatements(
  d1: D1Database,
  nodeId: string,
  at: number,
  type: string,
  version: number | null,
  detail: string | null,
) {
  return [
    d1
      .prepare(
        `INSERT INTO node_events (node_id, at, type, version, detail)
         SELECT ?1, ?2, ?3, ?4, ?5
         WHERE NOT EXISTS (SELECT 1 FROM node_events WHERE node_id = ?1 AND at > ?6
           AND type = ?3 AND version IS ?4 AND detail IS ?5)`,
      )
      .bind(nodeId, at, type, version, detail, at - EVENT_DEDUP_MS),
    d1
      .prepare(
        `DELETE FROM node_events WHERE node_id = ?1 AND id <= (
           SELECT id FROM node_events WHERE node_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`,
      )
      .bind(nodeId, NODE_EVENTS_KEPT),
  ];
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

export async function listNodes(db: Db) {
  return db.select().from(nodes).orderBy(nodes.hostname);
}

export async function getNode(db: Db, id: string) {
  const [node] = await db.select().from(nodes).where(eq(nodes.id, id)).limit(1);
  if (!node) throw new AppError("NOT_FOUND", `no node ${id}`);
  return node;
}

export async function revokeNode(db: Db, id: string, ctx: AuditContext) {
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
export async function restoreNode(db: Db, id: string, ctx: AuditContext, now = Date.now()) {
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
