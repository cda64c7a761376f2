import { createMiddleware } from "hono/factory";
import { config } from "../config";
import { getDb } from "../db/client";
import type { AppEnv } from "../env";
import { AppError } from "../errors";
import { authenticateBearer, bearerFrom } from "../services/admin-auth";
import { canWrite } from "./can-write";

/** An admin route called with a bearer token (API token or bootstrap): 401 without a valid one; writes need the admin role (403). */
export const adminAuth = createMiddleware<AppEnv>(async (c, next) => {
  const bearer = bearerFrom(c.req.header("Authorization"));
  if (!bearer) {
    throw new AppError("UNAUTHORIZED", "send an API token as 'Authorization: Bearer <token>'", undefined, {
      "WWW-Authenticate": 'Bearer realm="fleetgate"',
    });
  }
  const actor = await authenticateBearer(getDb(c.env.DB), config(c.env).bootstrapToken, bearer);
  if (!canWrite(actor.role, c.req.method, c.req.path)) {
    throw new AppError("FORBIDDEN", `${actor.name} has the viewer role and cannot make changes`);
  }
  c.set("actor", actor);
  await next();
});
