import { createMiddleware } from "hono/factory";
import { AppError } from "../errors";
import { checkCsrfToken } from "../services/sessions";
import { canWrite } from "./can-write";
import type { DashEnv } from "./session";

/**
 * Every dashboard write: a session whose per-session CSRF token came back in the form (`_csrf`)
 * or the `X-CSRF-Token` header, and a role that canWrite allows (viewers see no buttons and are
 * refused here).
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
  if (!canWrite(session.user.role, c.req.method, c.req.path)) {
    throw new AppError("FORBIDDEN", `${session.user.name} has the viewer role and cannot make changes`);
  }
  await next();
});
