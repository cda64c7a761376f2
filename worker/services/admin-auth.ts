import { and, eq, isNull } from "drizzle-orm";
import type { Db } from "../db/client";
import { apiTokens, settings, users } from "../db/schema";
import type { Actor } from "../env";
import { AppError } from "../errors";
import { type AuditedWrite, auditInsert } from "./audit";
import { constantTimeEqual, hashSecret } from "./secrets";

const LAST_USED_RESOLUTION_MS = 60_000;

/** Resolves a bearer token to an actor: the bootstrap secret, or a stored API token. */
export async function authenticateBearer(
  db: Db,
  bootstrapToken: string | undefined,
  bearer: string,
  now = Date.now(),
): Promise<Actor> {
  if (bootstrapToken && bootstrapToken.length >= 16 && (await constantTimeEqual(bearer, bootstrapToken))) {
    if (!(await getBootstrapSetting(db)).enabled) {
      throw new AppError(
        "UNAUTHORIZED",
        "the bootstrap token is switched off (settings/bootstrap-token); use an API token or sign in",
      );
    }
    return { id: "bootstrap", name: "bootstrap token", role: "admin" };
  }
  // Looking up by the hash of a 256-bit secret leaks nothing usable through timing.
  const [row] = await db
    .select({ token: apiTokens, ownerDisabledAt: users.disabledAt, ownerId: users.id })
    .from(apiTokens)
    .leftJoin(users, eq(users.id, apiTokens.ownerUserId))
    .where(eq(apiTokens.tokenHash, await hashSecret(bearer)))
    .limit(1);
  const token = row?.token;
  if (!token || token.revokedAt !== null || (token.expiresAt !== null && token.expiresAt <= now)) {
    throw new AppError("UNAUTHORIZED", "the API token is unknown, revoked or expired");
  }
  // A token ends with the user it acts for (disabled or deleted), whatever its own state.
  if (token.ownerUserId !== null && (row.ownerId === null || row.ownerDisabledAt !== null)) {
    throw new AppError("UNAUTHORIZED", "the API token's owner is disabled");
  }
  if (token.lastUsedAt === null || now - token.lastUsedAt > LAST_USED_RESOLUTION_MS) {
    await db.update(apiTokens).set({ lastUsedAt: now }).where(eq(apiTokens.id, token.id));
  }
  return { id: `token:${token.id}`, name: token.name, role: token.role, userId: token.ownerUserId };
}

const BOOTSTRAP_KEY = "bootstrap-token";

export interface BootstrapSetting {
  enabled: boolean;
}

/** Whether FLEETGATE_BOOTSTRAP_TOKEN is accepted as an admin token (on until an admin turns it off). */
export async function getBootstrapSetting(db: Db): Promise<BootstrapSetting> {
  const [row] = await db.select().from(settings).where(eq(settings.key, BOOTSTRAP_KEY)).limit(1);
  return { enabled: (row?.value as BootstrapSetting | undefined)?.enabled !== false };
}

/**
 * Switches the bootstrap token off (or on again). Off needs an active admin user first, so a
 * deployment can never lock itself out; /setup (first admin) is closed by then anyway.
 */
export async function setBootstrapSetting({ db, input: next, actor: ctx }: AuditedWrite<BootstrapSetting>) {
  if (!next.enabled) {
    const [admin] = await db
      .select({ id: users.id })
      .from(users)
      .where(and(eq(users.role, "admin"), isNull(users.disabledAt)))
      .limit(1);
    if (!admin) {
      throw new AppError("CONFLICT", "create an active admin user before switching the bootstrap token off");
    }
  }
  const before = await getBootstrapSetting(db);
  const now = Date.now();
  const value = { enabled: next.enabled };
  await db.batch([
    db
      .insert(settings)
      .values({ key: BOOTSTRAP_KEY, value, updatedAt: now, updatedBy: ctx.actor.id })
      .onConflictDoUpdate({ target: settings.key, set: { value, updatedAt: now, updatedBy: ctx.actor.id } }),
    auditInsert(db, ctx, { action: "settings.bootstrap-token", target: BOOTSTRAP_KEY, before, after: value }),
  ]);
  return value;
}

export function bearerFrom(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S{1,512})\s*$/i.exec(header);
  return match?.[1] ?? null;
}
