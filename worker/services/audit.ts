import { desc, lt } from "drizzle-orm";
import type { Db } from "../db/client";
import { auditLog } from "../db/schema";
import type { Actor } from "../env";

export interface AuditContext {
  actor: Actor;
  requestId: string;
  address?: string | null;
}

/** What an audited write verb takes: the database, who asks (for the audit log) and its input. */
export interface AuditedWrite<Input> {
  db: Db;
  actor: AuditContext;
  input: Input;
}

export interface AuditEntry {
  action: string;
  target?: string;
  before?: unknown;
  after?: unknown;
}

/** Returns the insert so callers put it in the same db.batch as the change it records. */
export function auditInsert(db: Db, ctx: AuditContext, entry: AuditEntry) {
  return db.insert(auditLog).values({
    at: Date.now(),
    actor: ctx.actor.id,
    action: entry.action,
    target: entry.target ?? null,
    before: entry.before ?? null,
    after: entry.after ?? null,
    requestId: ctx.requestId,
    address: ctx.address ?? null,
  });
}

export async function listAudit(db: Db, options: { limit: number; before?: number }) {
  const rows = await db
    .select()
    .from(auditLog)
    .where(options.before ? lt(auditLog.id, options.before) : undefined)
    .orderBy(desc(auditLog.id))
    .limit(options.limit);
  return rows;
}

export async function pruneAudit(db: Db, olderThan: number) {
  await db.delete(auditLog).where(lt(auditLog.at, olderThan));
}
