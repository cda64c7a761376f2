import { createMiddleware } from "hono/factory";
import { getDb } from "../db/client";
import type { AppEnv } from "../env";
import { AppError } from "../errors";
import { authenticateBearer, bearerFrom } from "../services/admin-auth";

// POSTs that change nothing; a viewer may call them.
const READ_ONLY_POSTS = new Set(["/api/v1/policy/validate", "/api/v1/policy/simulate"]);

/** Whether an /api/v1 request only reads, whichever way the caller authenticated. */
export function isReadOnlyApiRequest(method: string, path: string): boolean {
  return method === "GET" || method === "HEAD" || READ_ONLY_POSTS.has(path);
}

/** Every admin route: a valid bearer token (401 otherwise); writes need the admin role (403). */
export const adminAuth = createMiddleware<AppEnv>(async (c, next) => {
  const bearer = bearerFrom(c.req.header("Authorization"));
  if (!bearer) {
    throw new AppError("UNAUTHORIZED", "send an API token as 'Authorization: Bearer <token>'", undefined, {
      "WWW-Authenticate": 'Bearer realm="fleetgate"',
    });
  }
  const actor = await authenticateBearer(getDb(c.env.DB), c.env.FLEETGATE_BOOTSTRAP_TOKEN, bearer);
  const readOnly = isReadOnlyApiRequest(c.req.method, c.req.path);
  if (!readOnly && actor.role !== "admin") {
    throw new AppError("FORBIDDEN", `${actor.name} has the viewer role and cannot make changes`);
  }
  c.set("actor", actor);
  await next();
});
