import { and, asc, eq, isNull, lte, or, sql } from "drizzle-orm";
import { hashPassword, verifyPassword } from "../../protocol/policy/password";
import type { Db } from "../db/client";
import { sessions, users } from "../db/schema";
import type { Actor, Role } from "../env";
import { AppError } from "../errors";
import { revokeUserTokens } from "./api-tokens";
import { type AuditContext, type AuditedWrite, auditInsert } from "./audit";
import { hitAddressLimit } from "./rate-limit";
import { constantTimeEqual, newId } from "./secrets";

export type UserRow = typeof users.$inferSelect;
export type PublicUser = Omit<UserRow, "passwordHash"> & { hasPassword: boolean };

/** Consecutive wrong passwords before an account is locked, and for how long. */
export const LOCKOUT_THRESHOLD = 5;
export const LOCKOUT_MS = 15 * 60_000;
/** Login attempts per source address per window, whatever the user name. */
export const LOGIN_RATE_LIMIT = 20;
export const LOGIN_WINDOW_MS = 10 * 60_000;
export const MIN_PASSWORD_LENGTH = 10;

// Verifying against this keeps an unknown user name as slow as a wrong password.
let dummyHash: Promise<string> | undefined;

export function publicUser(row: UserRow): PublicUser {
  const { passwordHash, ...rest } = row;
  return { ...rest, hasPassword: passwordHash !== null };
}

export function userActor(row: Pick<UserRow, "id" | "name" | "role">): Actor {
  return { id: `user:${row.id}`, name: row.name, role: row.role, userId: row.id };
}

function checkPassword(password: string, path = "password") {
  if (password.length < MIN_PASSWORD_LENGTH || password.length > 1024) {
    throw new AppError("VALIDATION_FAILED", `the password needs ${MIN_PASSWORD_LENGTH} to 1024 characters`, [
      { path, message: `at least ${MIN_PASSWORD_LENGTH} characters` },
    ]);
  }
}

function checkName(name: string) {
  if (!/^[^\s:\p{Cc}]{1,64}$/u.test(name)) {
    throw new AppError("VALIDATION_FAILED", "a user name is 1-64 characters without spaces or colons", [
      { path: "name", message: "1-64 characters, no spaces or colons" },
    ]);
  }
}

export async function countUsers(db: Db): Promise<number> {
  const row = await db.get<{ n: number }>(sql`SELECT COUNT(*) AS n FROM users`);
  return row?.n ?? 0;
}

export async function listUsers(db: Db): Promise<PublicUser[]> {
  return (await db.select().from(users).orderBy(asc(users.name))).map(publicUser);
}

export async function getUser(db: Db, id: string): Promise<UserRow> {
  const [row] = await db.select().from(users).where(eq(users.id, id)).limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no user ${id}`);
  return row;
}

/**
 * First run: the bootstrap token creates the first admin. The insert only happens while the
 * users table is empty, so two racing setups cannot both succeed.
 */
export async function setupFirstAdmin(
  db: Db,
  bootstrapToken: string | undefined,
  input: { token: string; name: string; password: string },
  ctx: Omit<AuditContext, "actor">,
) {
  await hitAddressLimit({
    db,
    scope: "setup",
    address: ctx.address,
    limit: LOGIN_RATE_LIMIT,
    windowMs: LOGIN_WINDOW_MS,
  });
  if ((await countUsers(db)) > 0) throw new AppError("FORBIDDEN", "setup is closed: an admin already exists");
  if (
    !bootstrapToken ||
    bootstrapToken.length < 16 ||
    !(await constantTimeEqual(input.token, bootstrapToken))
  ) {
    throw new AppError("UNAUTHORIZED", "that is not the bootstrap token (FLEETGATE_BOOTSTRAP_TOKEN)", [
      { path: "token", message: "does not match FLEETGATE_BOOTSTRAP_TOKEN" },
    ]);
  }
  checkName(input.name);
  checkPassword(input.password);
  const id = newId("usr");
  const now = Date.now();
  const hash = await hashPassword(input.password);
  const inserted = await db.all<{ id: string }>(sql`
    INSERT INTO users (id, name, role, password_hash, created_at, created_by, failed_logins)
    SELECT ${id}, ${input.name}, 'admin', ${hash}, ${now}, 'bootstrap', 0
    WHERE NOT EXISTS (SELECT 1 FROM users)
    RETURNING id`);
  if (inserted.length === 0) throw new AppError("FORBIDDEN", "setup is closed: an admin already exists");
  const user = await getUser(db, id);
  await auditInsert(
    db,
    { ...ctx, actor: { id: "bootstrap", name: "bootstrap token", role: "admin" } },
    { action: "user.setup", target: id, after: { name: input.name, role: "admin" } },
  );
  return user;
}

export interface CreateUserInput {
  name: string;
  role: Role;
  password?: string | null;
  email?: string | null;
}

export async function createUser({ db, input, actor: ctx }: AuditedWrite<CreateUserInput>) {
  checkName(input.name);
  if (input.password) checkPassword(input.password);
  const [taken] = await db.select({ id: users.id }).from(users).where(eq(users.name, input.name)).limit(1);
  if (taken) throw new AppError("CONFLICT", `a user named ${input.name} exists`);
  const row: UserRow = {
    id: newId("usr"),
    name: input.name,
    email: input.email?.toLowerCase() ?? null,
    role: input.role,
    passwordHash: input.password ? await hashPassword(input.password) : null,
    createdAt: Date.now(),
    createdBy: ctx.actor.id,
    disabledAt: null,
    failedLogins: 0,
    lockedUntil: null,
    lastLoginAt: null,
  };
  await db.batch([
    db.insert(users).values(row),
    auditInsert(db, ctx, { action: "user.create", target: row.id, after: publicUser(row) }),
  ]);
  return publicUser(row);
}

export interface UpdateUserInput {
  role?: Role;
  password?: string;
  disabled?: boolean;
}

export async function updateUser({
  db,
  input: { id, ...input },
  actor: ctx,
}: AuditedWrite<UpdateUserInput & { id: string }>) {
  const before = await getUser(db, id);
  if (input.password !== undefined) checkPassword(input.password);
  const set: Partial<UserRow> = {};
  if (input.role) set.role = input.role;
  if (input.password !== undefined) {
    set.passwordHash = await hashPassword(input.password);
    set.failedLogins = 0;
    set.lockedUntil = null;
  }
  if (input.disabled !== undefined)
    set.disabledAt = input.disabled ? (before.disabledAt ?? Date.now()) : null;
  const demotes = (set.role && set.role !== "admin") || input.disabled;
  if (before.role === "admin" && demotes && (await countActiveAdmins(db)) <= 1) {
    throw new AppError("CONFLICT", "this is the last active admin; make another admin first");
  }
  const after = { ...before, ...set };
  // A new password or a disable ends every credential the user had: sessions and their tokens.
  const ends = input.password !== undefined || input.disabled === true;
  await db.batch([
    db.update(users).set(set).where(eq(users.id, id)),
    ...(ends ? [db.delete(sessions).where(eq(sessions.userId, id)), revokeUserTokens(db, id)] : []),
    auditInsert(db, ctx, {
      action: input.password !== undefined ? "user.password" : "user.update",
      target: id,
      before: publicUser(before),
      after: publicUser(after),
    }),
  ]);
  return publicUser(after);
}

async function countActiveAdmins(db: Db) {
  const rows = await db
    .select({ id: users.id })
    .from(users)
    .where(and(eq(users.role, "admin"), isNull(users.disabledAt)));
  return rows.length;
}

/**
 * Password login with a per-address rate limit and a per-account lockout after
 * LOCKOUT_THRESHOLD consecutive failures. Failures and lockouts land in the audit log.
 */
export async function loginWithPassword(
  db: Db,
  input: { name: string; password: string },
  ctx: Omit<AuditContext, "actor">,
  now = Date.now(),
): Promise<UserRow> {
  await hitAddressLimit({
    db,
    scope: "login",
    address: ctx.address,
    limit: LOGIN_RATE_LIMIT,
    windowMs: LOGIN_WINDOW_MS,
    now,
  });
  const [user] = await db.select().from(users).where(eq(users.name, input.name)).limit(1);
  const anonymous = {
    ...ctx,
    actor: { id: "anonymous", name: input.name.slice(0, 64), role: "viewer" as Role },
  };
  const refused = new AppError("UNAUTHORIZED", "wrong user name or password");
  if (!user || user.passwordHash === null) {
    dummyHash ??= hashPassword("fleetgate-dummy-password");
    await verifyPassword(input.password, await dummyHash);
    await auditInsert(db, anonymous, { action: "user.login-failed", target: input.name.slice(0, 64) });
    throw refused;
  }
  const actorCtx = { ...ctx, actor: userActor(user) };
  if (user.lockedUntil !== null && user.lockedUntil > now) {
    await auditInsert(db, actorCtx, { action: "user.login-locked", target: user.id });
    throw new AppError(
      "RATE_LIMITED",
      `too many wrong passwords: this account is locked until ${new Date(user.lockedUntil).toISOString()}`,
      undefined,
      { "Retry-After": String(Math.ceil((user.lockedUntil - now) / 1000)) },
    );
  }
  if (user.disabledAt !== null) {
    await auditInsert(db, actorCtx, {
      action: "user.login-failed",
      target: user.id,
      after: { disabled: true },
    });
    throw refused;
  }
  if (!(await verifyPassword(input.password, user.passwordHash))) {
    // One conditional UPDATE … RETURNING: parallel failures each count (a read-then-write of
    // "failures + 1" counted ten parallel guesses as one). The right-hand sides see the old row.
    const counted = await db.get<{ failures: number }>(sql`
      UPDATE users SET
        failed_logins = CASE WHEN failed_logins + 1 >= ${LOCKOUT_THRESHOLD} THEN 0 ELSE failed_logins + 1 END,
        locked_until = CASE WHEN failed_logins + 1 >= ${LOCKOUT_THRESHOLD} THEN ${now + LOCKOUT_MS} ELSE locked_until END
      WHERE id = ${user.id}
      RETURNING failed_logins AS failures`);
    const locks = counted?.failures === 0;
    await auditInsert(db, actorCtx, {
      action: locks ? "user.locked" : "user.login-failed",
      target: user.id,
      after: { failures: locks ? LOCKOUT_THRESHOLD : (counted?.failures ?? 0) },
    });
    throw refused;
  }
  // Conditional too: a lockout that landed while this password was being checked still holds.
  const [signedIn] = await db
    .update(users)
    .set({ failedLogins: 0, lockedUntil: null, lastLoginAt: now })
    .where(and(eq(users.id, user.id), or(isNull(users.lockedUntil), lte(users.lockedUntil, now))))
    .returning({ id: users.id });
  if (!signedIn) {
    await auditInsert(db, actorCtx, { action: "user.login-locked", target: user.id });
    throw new AppError("RATE_LIMITED", "too many wrong passwords: this account is locked", undefined, {
      "Retry-After": String(Math.ceil(LOCKOUT_MS / 1000)),
    });
  }
  await auditInsert(db, actorCtx, { action: "user.login", target: user.id });
  return user;
}

/** Cloudflare Access: the verified email becomes (or refreshes) a password-less user with the mapped role. */
export async function upsertAccessUser(
  db: Db,
  email: string,
  role: Role,
  now = Date.now(),
): Promise<UserRow> {
  const normalized = email.toLowerCase();
  const [existing] = await db.select().from(users).where(eq(users.email, normalized)).limit(1);
  if (existing) {
    if (existing.role !== role || existing.lastLoginAt === null || now - existing.lastLoginAt > 60_000) {
      await db.update(users).set({ role, lastLoginAt: now }).where(eq(users.id, existing.id));
    }
    return { ...existing, role };
  }
  const row: UserRow = {
    id: newId("usr"),
    name: normalized,
    email: normalized,
    role,
    passwordHash: null,
    createdAt: now,
    createdBy: "cloudflare-access",
    disabledAt: null,
    failedLogins: 0,
    lockedUntil: null,
    lastLoginAt: now,
  };
  await db.insert(users).values(row).onConflictDoNothing();
  const [stored] = await db.select().from(users).where(eq(users.email, normalized)).limit(1);
  return stored ?? row;
}
