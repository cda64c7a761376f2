// Who is looking at the dashboard: a session cookie, else (when configured) a Cloudflare Access
// JWT, which opens a session. api-auth.ts uses the same cookie for /api/v1 calls from the browser.

import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { createMiddleware } from "hono/factory";
import { config } from "../config";
import { getDb } from "../db/client";
import type { Actor, AppEnv } from "../env";
import { AppError } from "../errors";
import { verifyAccessJwt } from "../services/access-jwt";
import { createSession, type ResolvedSession, resolveSession } from "../services/sessions";
import { type UserRow, upsertAccessUser, userActor } from "../services/users";
import { auditContext, clientAddress } from "./context";

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

export function sessionCookieValue(c: Context): string | undefined {
  return getCookie(c, cookieName(c));
}

/** The signed-in session behind a cookie value, or null (ended, idle or unknown). */
export function sessionFrom(env: Env, cookie: string | undefined) {
  return resolveSession(getDb(env.DB), cookie, config(env).session);
}

/** Logs a user in: new session row, cookie `HttpOnly; Secure; SameSite=Strict`. */
export async function startSession(c: Context<DashEnv>, user: UserRow) {
  const limits = config(c.env).session;
  const db = getDb(c.env.DB);
  const session = await createSession({
    db,
    userId: user.id,
    meta: {
      address: clientAddress(c as unknown as Context<AppEnv>),
      userAgent: c.req.header("User-Agent") ?? null,
    },
    limits,
  });
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
  const cookie = sessionCookieValue(c);
  const session = await sessionFrom(c.env, cookie);
  if (session) {
    c.set("session", session);
    c.set("user", session.user);
    c.set("actor", userActor(session.user));
  } else {
    if (cookie) clearSessionCookie(c);
    const access = config(c.env).access;
    const assertion = c.req.header("Cf-Access-Jwt-Assertion");
    if (access && assertion) {
      const identity = await verifyAccessJwt(assertion, access);
      if (!identity) throw new AppError("UNAUTHORIZED", "the Cloudflare Access token is invalid or expired");
      if (!identity.role) {
        throw new AppError(
          "FORBIDDEN",
          `${identity.email} has no Fleetgate role (ACCESS_ADMINS / ACCESS_VIEWERS)`,
        );
      }
      const user = await upsertAccessUser(getDb(c.env.DB), identity.email, identity.role);
      if (user.disabledAt !== null) throw new AppError("FORBIDDEN", `${identity.email} is disabled`);
      await startSession(c, user);
    }
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

/** The audit context of a dashboard request (same shape the API routes use). */
export const auditOf = (c: DashContext) => auditContext(c as unknown as Context<AppEnv>);
