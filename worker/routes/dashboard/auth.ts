// Who is looking at the dashboard: a session cookie, else (when configured) a Cloudflare Access
// JWT, which opens a session. Also the cookie path for /api/v1 so the browser can call the API.

import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { getDb } from "../../db/client";
import type { Actor, AppEnv } from "../../env";
import { intVar } from "../../env";
import { AppError } from "../../errors";
import { adminAuth, isReadOnlyApiRequest } from "../../middleware/admin-auth";
import { auditContext, clientAddress } from "../../middleware/context";
import { accessConfigFrom, verifyAccessJwt } from "../../services/access-jwt";
import {
  checkCsrfToken,
  createSession,
  DEFAULT_SESSION_LIMITS,
  type ResolvedSession,
  resolveSession,
  type SessionLimits,
} from "../../services/sessions";
import { type UserRow, upsertAccessUser, userActor } from "../../services/users";

declare global {
  namespace Cloudflare {
    interface Env {
      /** Minutes without a request after which a dashboard session ends (default 30). */
      SESSION_IDLE_MINUTES?: string;
      /** Hours after login after which a dashboard session ends (default 12). */
      SESSION_MAX_HOURS?: string;
    }
  }
}

export interface DashVariables {
  requestId: string;
  actor: Actor;
  nodeId: string;
  user: UserRow | null;
  session: ResolvedSession | null;
  secureHeadersNonce?: string;
}

export type DashEnv = { Bindings: Env; Variables: DashVariables };
export type DashContext = Context<DashEnv>;

// `__Host-` pins the cookie to this origin over HTTPS; plain http://127.0.0.1 (wrangler dev) cannot use it.
const cookieName = (c: Context) =>
  new URL(c.req.url).protocol === "https:" ? "__Host-fg_session" : "fg_session";

export function sessionLimits(env: Env): SessionLimits {
  return {
    idleMs: intVar(env.SESSION_IDLE_MINUTES, DEFAULT_SESSION_LIMITS.idleMs / 60_000, 1, 24 * 60) * 60_000,
    maxAgeMs:
      intVar(env.SESSION_MAX_HOURS, DEFAULT_SESSION_LIMITS.maxAgeMs / 3600_000, 1, 24 * 30) * 3600_000,
  };
}

export function sessionCookieValue(c: Context): string | undefined {
  return getCookie(c, cookieName(c));
}

/** Logs a user in: new session row, cookie `HttpOnly; Secure; SameSite=Strict`. */
export async function startSession(c: Context<DashEnv>, user: UserRow) {
  const limits = sessionLimits(c.env);
  const db = getDb(c.env.DB);
  const session = await createSession(
    db,
    user.id,
    {
      address: clientAddress(c as unknown as Context<AppEnv>),
      userAgent: c.req.header("User-Agent") ?? null,
    },
    limits,
  );
  setCookie(c, cookieName(c), session.id, {
    httpOnly: true,
    secure: true,
    sameSite: "Strict",
    path: "/",
    maxAge: Math.floor(limits.maxAgeMs / 1000),
  });
  const resolved = await resolveSession(db, session.id, limits);
  c.set("session", resolved);
  c.set("user", user);
  c.set("actor", userActor(user));
  return resolved;
}

export function clearSessionCookie(c: Context) {
  deleteCookie(c, cookieName(c), { path: "/", secure: true, httpOnly: true, sameSite: "Strict" });
}

/** Sets `user`, `session` and `actor` when the caller is signed in; never refuses by itself. */
export const loadViewer = createMiddleware<DashEnv>(async (c, next) => {
  c.set("user", null);
  c.set("session", null);
  const db = getDb(c.env.DB);
  const cookie = sessionCookieValue(c);
  const session = await resolveSession(db, cookie, sessionLimits(c.env));
  if (session) {
    c.set("session", session);
    c.set("user", session.user);
    c.set("actor", userActor(session.user));
  } else {
    if (cookie) clearSessionCookie(c);
    const config = accessConfigFrom(c.env);
    const assertion = c.req.header("Cf-Access-Jwt-Assertion");
    if (config && assertion) {
      const identity = await verifyAccessJwt(assertion, config);
      if (!identity) throw new AppError("UNAUTHORIZED", "the Cloudflare Access token is invalid or expired");
      if (!identity.role) {
        throw new AppError(
          "FORBIDDEN",
          `${identity.email} has no Fleetgate role (ACCESS_ADMINS / ACCESS_VIEWERS)`,
        );
      }
      const user = await upsertAccessUser(db, identity.email, identity.role);
      if (user.disabledAt !== null) throw new AppError("FORBIDDEN", `${identity.email} is disabled`);
      await startSession(c, user);
    }
  }
  await next();
});

// Dashboard POSTs that change nothing; a viewer may send them.
const READ_ONLY_POSTS = new Set(["/logout", "/policy/test"]);

/**
 * Every dashboard write: a session whose per-session CSRF token came back in the form (`_csrf`)
 * or the `X-CSRF-Token` header, and the admin role (viewers see no buttons and are refused here).
 */
export const guardWrites = createMiddleware<DashEnv>(async (c, next) => {
  if (c.req.method === "GET" || c.req.method === "HEAD") return next();
  const session = c.get("session");
  if (!session) throw new AppError("UNAUTHORIZED", "sign in first");
  let sent = c.req.header("X-CSRF-Token");
  if (
    !sent &&
    /^(application\/x-www-form-urlencoded|multipart\/form-data)/i.test(c.req.header("Content-Type") ?? "")
  ) {
    const body = await c.req.parseBody();
    sent = typeof body._csrf === "string" ? body._csrf : undefined;
  }
  if (!(await checkCsrfToken(session.id, sent))) {
    throw new AppError(
      "FORBIDDEN",
      "the form's CSRF token is missing or stale; reload the page and try again",
    );
  }
  if (session.user.role !== "admin" && !READ_ONLY_POSTS.has(c.req.path)) {
    throw new AppError("FORBIDDEN", `${session.user.name} has the viewer role and cannot make changes`);
  }
  await next();
});

export const requireUser = createMiddleware<DashEnv>(async (c, next) => {
  if (!c.get("user")) {
    const next_ = c.req.method === "GET" ? `?next=${encodeURIComponent(c.req.path)}` : "";
    return c.redirect(`/login${next_}`, 303);
  }
  await next();
});

/**
 * /api/v1: a bearer token goes through adminAuth unchanged; without one, a dashboard session
 * cookie authenticates, and its writes need the `X-CSRF-Token` header.
 */
export const apiAuth = createMiddleware<AppEnv>(async (c, next) => {
  const cookie = c.req.header("Authorization") ? undefined : sessionCookieValue(c);
  if (!cookie) return adminAuth(c, next);
  const session = await resolveSession(getDb(c.env.DB), cookie, sessionLimits(c.env));
  if (!session) throw new AppError("UNAUTHORIZED", "the dashboard session has ended; sign in again");
  const readOnly = isReadOnlyApiRequest(c.req.method, c.req.path);
  if (!readOnly) {
    if (!(await checkCsrfToken(session.id, c.req.header("X-CSRF-Token")))) {
      throw new AppError("FORBIDDEN", "a session-authenticated write needs the X-CSRF-Token header");
    }
    if (session.user.role !== "admin") {
      throw new AppError("FORBIDDEN", `${session.user.name} has the viewer role and cannot make changes`);
    }
  }
  c.set("actor", userActor(session.user));
  await next();
});

/** The audit context of a dashboard request (same shape the API routes use). */
export const auditOf = (c: DashContext) => auditContext(c as unknown as Context<AppEnv>);
