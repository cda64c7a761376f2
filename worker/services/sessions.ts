import { eq, lt } from "drizzle-orm";
import { randomToken, sha256Base64Url } from "../../protocol/encoding";
import type { Db } from "../db/client";
import { sessions, users } from "../db/schema";
import { type AuditContext, auditInsert } from "./audit";
import { constantTimeEqual, hashSecret } from "./secrets";
import type { UserRow } from "./users";

export interface SessionLimits {
  /** Absolute lifetime from login. */
  maxAgeMs: number;
  /** A session unused this long is dead. */
  idleMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { maxAgeMs: 12 * 3600_000, idleMs: 30 * 60_000 };

// Sliding the idle window costs a write; once a minute per session is plenty.
const TOUCH_RESOLUTION_MS = 60_000;

/**
 * The per-session CSRF token: derived from the secret session id, so it needs no column, is
 * stable for the session's life, and cannot be computed without the cookie.
 */
export function csrfTokenFor(sessionId: string): Promise<string> {
  return sha256Base64Url(`fleetgate-csrf\n${sessionId}`);
}

export async function checkCsrfToken(sessionId: string, sent: string | undefined | null): Promise<boolean> {
  if (!sent) return false;
  return constantTimeEqual(sent, await csrfTokenFor(sessionId));
}

export async function createSession({
  db,
  userId,
  meta,
  limits = DEFAULT_SESSION_LIMITS,
  now = Date.now(),
}: {
  db: Db;
  userId: string;
  meta: { address?: string | null; userAgent?: string | null };
  limits?: SessionLimits;
  now?: number;
}) {
  // 256 random bits: only the SHA-256 is stored, so a database leak yields no usable cookie.
  const id = randomToken(32);
  await db.insert(sessions).values({
    idHash: await hashSecret(id),
    userId,
    createdAt: now,
    expiresAt: now + limits.maxAgeMs,
    lastSeenAt: now,
    address: meta.address ?? null,
    userAgent: meta.userAgent?.slice(0, 300) ?? null,
  });
  return { id, expiresAt: now + limits.maxAgeMs };
}

export interface ResolvedSession {
  id: string;
  user: UserRow;
  csrf: string;
  expiresAt: number;
}

/** The live session for a cookie value, or null (unknown, expired, idle too long, user disabled). */
export async function resolveSession(
  db: Db,
  id: string | undefined,
  limits = DEFAULT_SESSION_LIMITS,
  now = Date.now(),
): Promise<ResolvedSession | null> {
  if (!id || id.length > 100) return null;
  const idHash = await hashSecret(id);
  const [row] = await db
    .select({ session: sessions, user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(eq(sessions.idHash, idHash))
    .limit(1);
  if (!row) return null;
  const { session, user } = row;
  const dead =
    session.expiresAt <= now || now - session.lastSeenAt > limits.idleMs || user.disabledAt !== null;
  if (dead) {
    await db.delete(sessions).where(eq(sessions.idHash, idHash));
    return null;
  }
  if (now - session.lastSeenAt > TOUCH_RESOLUTION_MS) {
    await db.update(sessions).set({ lastSeenAt: now }).where(eq(sessions.idHash, idHash));
  }
  return { id, user, csrf: await csrfTokenFor(id), expiresAt: session.expiresAt };
}

export async function endSession(db: Db, id: string, ctx: AuditContext) {
  await db.batch([
    db.delete(sessions).where(eq(sessions.idHash, await hashSecret(id))),
    auditInsert(db, ctx, { action: "user.logout", target: ctx.actor.id }),
  ]);
}

/** Ends every session of a user (password change, disable). */
export async function endUserSessions(db: Db, userId: string) {
  await db.delete(sessions).where(eq(sessions.userId, userId));
}

export async function pruneSessions(db: Db, now = Date.now()) {
  await db.delete(sessions).where(lt(sessions.expiresAt, now));
}
