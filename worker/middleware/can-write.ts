// The one viewer/admin rule, for every caller (bearer token, API session, dashboard form).
import type { Role } from "../env";

/** POSTs that change nothing; a viewer may send them (API and dashboard paths). */
export const READ_ONLY_ROUTES: ReadonlySet<string> = new Set([
  "/api/v1/policy/validate",
  "/api/v1/policy/simulate",
  "/logout",
  "/policy/test",
]);

/** Whether a request only reads: GET, HEAD, or a POST to one of the READ_ONLY_ROUTES. */
export function isReadOnly(method: string, path: string): boolean {
  return method === "GET" || method === "HEAD" || (method === "POST" && READ_ONLY_ROUTES.has(path));
}

/** Whether `role` may send `method path`: admins anything, viewers only what reads. */
export function canWrite(role: Role, method: string, path: string): boolean {
  return role === "admin" || isReadOnly(method, path);
}
