import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { AppError } from "../errors";
import { checkCsrfToken } from "../services/sessions";
import { userActor } from "../services/users";
import { adminAuth } from "./admin-auth";
import { canWrite, isReadOnly } from "./can-write";
import { sessionCookieValue, sessionFrom } from "./session";

/**
 * /api/v1: a bearer token goes through adminAuth unchanged; without one, a dashboard session
 * cookie authenticates, and its writes need the `X-CSRF-Token` header.
 */
export const apiAuth = createMiddleware<AppEnv>(async (c, next) => {
  const cookie = c.req.header("Authorization") ? undefined : sessionCookieValue(c);
  if (!cookie) return adminAuth(c, next);
  const session = await sessionFrom(c.env, cookie);
  if (!session) throw new AppError("UNAUTHORIZED", "the dashboard session has ended; sign in again");
  if (!isReadOnly(c.req.method, c.req.path)) {
    if (!(await checkCsrfToken(session.id, c.req.header("X-CSRF-Token")))) {
      throw new AppError("FORBIDDEN", "a session-authenticated write needs the X-CSRF-Token header");
    }
    if (!canWrite(session.user.role, c.req.method, c.req.path)) {
      throw new AppError("FORBIDDEN", `${session.user.name} has the viewer role and cannot make changes`);
    }
  }
  c.set("actor", userActor(session.user));
  await next();
});
