import { createMiddleware } from "hono/factory";
import { getDb } from "../db/client";
import type { AppEnv } from "../env";
import { bearerFrom } from "../services/admin-auth";
import { authenticateNodeCached } from "../services/node-auth";

/**
 * Every agent call but enroll: the node token (`Authorization: Bearer <nodeToken>`) names an
 * enrolled, unrevoked node, or 401 NODE_UNKNOWN. Sets `node` and `nodeId` for the handler.
 * The identity comes from the isolate cache (services/node-auth.ts), so a steady poll or upload
 * costs no D1 read, and a revoke still lands within seconds.
 */
export const nodeAuth = createMiddleware<AppEnv>(async (c, next) => {
  const node = await authenticateNodeCached(getDb(c.env.DB), bearerFrom(c.req.header("Authorization")));
  c.set("node", node);
  c.set("nodeId", node.id);
  await next();
});
