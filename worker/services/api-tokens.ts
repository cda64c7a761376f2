import { and, desc, eq, isNull } from "drizzle-orm";
import type { Db } from "../db/client";
import { apiTokens } from "../db/schema";
import type { Role } from "../env";
import { AppError } from "../errors";
import { type AuditedWrite, auditInsert } from "./audit";
import { displayPrefix, hashSecret, newId, newSecret } from "./secrets";

export interface CreateApiTokenInput {
  name: string;
  role: Role;
  expiresAt?: number | null;
}

function publicToken(row: typeof apiTokens.$inferSelect) {
  const { tokenHash: _hash, ...rest } = row;
  return rest;
}

export async function createApiToken({ db, input, actor: ctx }: AuditedWrite<CreateApiTokenInput>) {
  if (input.expiresAt != null && input.expiresAt <= Date.now()) {
    throw new AppError("VALIDATION_FAILED", "expiresAt must be in the future", [
      { path: "expiresAt", message: "in the past" },
    ]);
  }
  const token = newSecret("fgt");
  const row = {
    id: newId("tok"),
    name: input.name,
    role: input.role,
    tokenHash: await hashSecret(token),
    prefix: displayPrefix(token),
    createdBy: ctx.actor.id,
    // A token acts for its creator's user (through a chain of tokens too), so it ends with them.
    ownerUserId: ctx.actor.userId ?? null,
    createdAt: Date.now(),
    expiresAt: input.expiresAt ?? null,
    lastUsedAt: null,
    revokedAt: null,
  };
  await db.batch([
    db.insert(apiTokens).values(row),
    auditInsert(db, ctx, { action: "api-token.create", target: row.id, after: publicToken(row) }),
  ]);
  return { token, ...publicToken(row) };
}

export async function listApiTokens(db: Db) {
  const rows = await db.select().from(apiTokens).orderBy(desc(apiTokens.createdAt));
  return rows.map(publicToken);
}

/** The batch statement that revokes every live token acting for a user (password change, disable). */
export function revokeUserTokens(db: Db, userId: string, now = Date.now()) {
  return db
    .update(apiTokens)
    .set({ revokedAt: now })
    .where(and(eq(apiTokens.ownerUserId, userId), isNull(apiTokens.revokedAt)));
}

export async function revokeApiToken({ db, input: { id }, actor: ctx }: AuditedWrite<{ id: string }>) {
  const [row] = await db.select().from(apiTokens).where(eq(apiTokens.id, id)).limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no API token ${id}`);
  if (row.revokedAt !== null) return publicToken(row);
  const revokedAt = Date.now();
  await db.batch([
    db.update(apiTokens).set({ revokedAt }).where(eq(apiTokens.id, id)),
    auditInsert(db, ctx, { action: "api-token.revoke", target: id }),
  ]);
  return publicToken({ ...row, revokedAt });
}
