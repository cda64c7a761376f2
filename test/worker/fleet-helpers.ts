// Factories for the fleet tests (sites, rollouts, PAC, metrics): through the real API only.
import { env } from "cloudflare:test";
import { statusReport } from "../helpers/status-report";
import { call, json } from "./helpers/api";
import { createEnrollmentKey, enrollNode } from "./helpers/factories";

let siteCounter = 0;

export async function createSite(overrides: Record<string, unknown> = {}) {
  const name = (overrides.name as string) ?? `site-${Date.now().toString(36)}-${siteCounter++}`;
  return json<{ name: string; settings: { bypass: string[]; allowDirect: boolean } }>(
    await call("/api/v1/sites", { body: { name, ...overrides } }),
    201,
  );
}

export async function enrollInSite(site: string | null, hostname = "proxy.example") {
  const key = await createEnrollmentKey(site ? { site } : {});
  return enrollNode({ enrollmentKey: key.key, hostname });
}

export { statusReport };

/** The node ACKs (or NACKs) a version, as the agent would after applying it. */
export async function ack(
  token: string,
  version: { version: number; hash: string },
  overrides: Record<string, unknown> = {},
) {
  const res = await call("/api/agent/v1/status", {
    token,
    body: statusReport({ appliedVersion: version.version, appliedHash: version.hash, ...overrides }),
  });
  if (res.status !== 204) throw new Error(`status answered ${res.status}: ${await res.text()}`);
}

/** Moves a node's last-seen time (an offline node in PAC and gate tests). */
export async function setLastSeen(nodeId: string, at: number) {
  await env.DB.prepare("UPDATE nodes SET last_seen_at = ?1 WHERE id = ?2").bind(at, nodeId).run();
}

/** One poll without waiting: the head the node's hub shard answers it. */
export async function pollNow(token: string, known?: string) {
  const res = await call("/api/agent/v1/policy?wait=0", {
    token,
    headers: known ? { "If-None-Match": `"${known}"` } : {},
  });
  const body = res.status === 200 ? ((await res.json()) as { version: number; hash: string }) : null;
  if (res.status !== 200) await res.body?.cancel();
  return {
    status: res.status,
    bundle: body,
    etag: res.headers.get("ETag"),
    site: res.headers.get("X-Fleetgate-Site"),
  };
}
