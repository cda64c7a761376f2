import type { Context } from "hono";
import type { AppEnv } from "../env";
import type { AuditContext } from "../services/audit";

export function clientAddress(c: Context<AppEnv>): string | null {
  return c.req.header("CF-Connecting-IP") ?? null;
}

export function auditContext(c: Context<AppEnv>): AuditContext {
  return { actor: c.get("actor"), requestId: c.get("requestId"), address: clientAddress(c) };
}
