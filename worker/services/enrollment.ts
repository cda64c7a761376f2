import { and, desc, eq, gt, isNull, or, sql } from "drizzle-orm";
import type { EnrollRequest } from "../../protocol/wire";
import type { Db } from "../db/client";
import { enrollmentKeys, nodeEvents, nodes } from "../db/schema";
import { AppError } from "../errors";
import { type AuditContext, auditInsert } from "./audit";
import { displayPrefix, hashSecret, newId, newSecret } from "./secrets";

export interface CreateEnrollmentKeyInput {
  name: string;
  maxUses?: number | null;
  expiresAt?: number | null;
}

function publicKey(row: typeof enrollmentKeys.$inferSelect) {
  const { keyHash: _hash, ...rest } = row;
  return rest;
}

export async function createEnrollmentKey(db: Db, input: CreateEnrollmentKeyInput, ctx: AuditContext) {
  if (input.expiresAt != null && input.expiresAt <= Date.now()) {
    throw new AppError("VALIDATION_FAILED", "expiresAt must be in the future", [
      { path: "expiresAt", message: "in the past" },
    ]);
  }
  const key = newSecret("fge");
  const row = {
    id: newId("key"),
    name: input.name,
    keyHash: await hashSecret(key),
    prefix: displayPrefix(key),
    maxUses: input.maxUses ?? null,
    uses: 0,
    expiresAt: input.expiresAt ?? null,
    createdBy: ctx.actor.id,
    createdAt: Date.now(),
    lastUsedAt: null,
    revokedAt: null,
  };
  await db.batch([
    db.insert(enrollmentKeys).values(row),
    auditInsert(db, ctx, { action: "enrollment-key.create", target: row.id, after: publicKey(row) }),
  ]);
  return { key, ...publicKey(row) };
}

export async function listEnrollmentKeys(db: Db) {
  const rows = await db.select().from(enrollmentKeys).orderBy(desc(enrollmentKeys.createdAt));
  return rows.map(publicKey);
}

export async function revokeEnrollmentKey(db: Db, id: string, ctx: AuditContext) {
  const [row] = await db.select().from(enrollmentKeys).where(eq(enrollmentKeys.id, id)).limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no enrollment key ${id}`);
  if (row.revokedAt !== null) return publicKey(row);
  const revokedAt = Date.now();
  await db.batch([
    db.update(enrollmentKeys).set({ revokedAt }).where(eq(enrollmentKeys.id, id)),
    auditInsert(db, ctx, { action: "enrollment-key.revoke", target: id }),
  ]);
  return publicKey({ ...row, revokedAt });
}

/** Consumes one use of a key atomically; the WHERE clause makes max-uses hold under concurrency. */
async function consumeKey(db: Db, key: string, now: number) {
  const keyHash = await hashSecret(key);
  const [used] = await db
    .update(enrollmentKeys)
    .set({ uses: sql`${enrollmentKeys.uses} + 1`, lastUsedAt: now })
    .where(
      and(
        eq(enrollmentKeys.keyHash, keyHash),
        isNull(enrollmentKeys.revokedAt),
        or(isNull(enrollmentKeys.expiresAt), gt(enrollmentKeys.expiresAt, now)),
        or(isNull(enrollmentKeys.maxUses), sql`${enrollmentKeys.uses} < ${enrollmentKeys.maxUses}`),
      ),
    )
    .returning({ id: enrollmentKeys.id });
  if (used) return used.id;
  const [row] = await db.select().from(enrollmentKeys).where(eq(enrollmentKeys.keyHash, keyHash)).limit(1);
  const why = !row
    ? "unknown enrollment key"
    : row.revokedAt !== null
      ? "enrollment key revoked"
      : row.expiresAt !== null && row.expiresAt <= now
        ? "enrollment key expired"
        : "enrollment key has no uses left";
  throw new AppError("ENROLLMENT_KEY_INVALID", why);
}

/**
 * Enrolls a node. The same instanceId keeps its nodeId and gets a fresh token (the old one
 * stops working); re-enrolling a revoked node with a valid key restores it.
 */
export async function enrollNode(db: Db, input: EnrollRequest, address: string | null) {
  const now = Date.now();
  const keyId = await consumeKey(db, input.enrollmentKey, now);
  const nodeToken = newSecret("fgn");
  const tokenHash = await hashSecret(nodeToken);
  const [existing] = await db.select().from(nodes).where(eq(nodes.instanceId, input.instanceId)).limit(1);
  const nodeId = existing?.id ?? newId("node");
  const fields = {
    hostname: input.hostname,
    tokenHash,
    enrollmentKeyId: keyId,
    enrolledAt: now,
    agentVersion: input.agentVersion,
    proxyKind: input.proxyKind,
    lastSeenAt: now,
    lastAddress: address,
    revokedAt: null,
  };
  await db.batch([
    existing
      ? db.update(nodes).set(fields).where(eq(nodes.id, nodeId))
      : db.insert(nodes).values({ id: nodeId, instanceId: input.instanceId, ...fields }),
    db.insert(nodeEvents).values({
      nodeId,
      at: now,
      type: existing ? "re-enrolled" : "enrolled",
      detail: JSON.stringify({ hostname: input.hostname, address, agentVersion: input.agentVersion, keyId }),
    }),
  ]);
  return { nodeId, nodeToken, reEnrolled: Boolean(existing) };
}
