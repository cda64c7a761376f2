// PAC files generated from node health (docs/fleet.md "PAC files"): a site's healthy nodes in a
// fixed failover order, DIRECT only when the site allows it, and the site's bypass networks.
import { and, eq, isNull } from "drizzle-orm";
import { config } from "../config";
import type { Db } from "../db/client";
import { nodes } from "../db/schema";
import { AppError } from "../errors";
import { type PacEntry, proxyAddress, renderPac } from "./pac-script";
import { latestHead } from "./policy";
import { activeRollout, targetingOf } from "./rollout-active";
import { targetHead } from "./rollout-target";
import { findSite } from "./sites";

/** Seconds a client or cache may keep a PAC file: with PAC_ONLINE_SLACK_S, a dead node is gone within a minute. */
export const PAC_MAX_AGE_SECONDS = 15;
/** A node counts for PAC while seen within the poll wait + this (a parked poll marks it seen on arrival). */
const PAC_ONLINE_SLACK_S = 10;
type PacNode = Pick<
  typeof nodes.$inferSelect,
  | "id"
  | "hostname"
  | "publicAddress"
  | "proxyListen"
  | "lastAddress"
  | "lastSeenAt"
  | "syncState"
  | "appliedHash"
>;

/** Which site, judged at which time (now by default). */
interface SiteAsk {
  db: Db;
  env: Env;
  site: string;
  now?: number;
}

/** The site's nodes clients should use now: online, in sync with their target, with an address; in failover order. */
export async function healthyNodes({ db, env, site, now = Date.now() }: SiteAsk): Promise<PacEntry[]> {
  const rows: PacNode[] = await db
    .select({
      id: nodes.id,
      hostname: nodes.hostname,
      publicAddress: nodes.publicAddress,
      proxyListen: nodes.proxyListen,
      lastAddress: nodes.lastAddress,
      lastSeenAt: nodes.lastSeenAt,
      syncState: nodes.syncState,
      appliedHash: nodes.appliedHash,
    })
    .from(nodes)
    .where(and(eq(nodes.site, site), isNull(nodes.revokedAt)));
  const head = await latestHead(db);
  const rollout = await activeRollout(db);
  const targeting = rollout ? targetingOf(rollout) : null;
  const ring = targeting ? { from: targeting.from, ring: new Set(targeting.ring) } : null;
  const windowMs = (config(env).pollWaitSeconds + PAC_ONLINE_SLACK_S) * 1000;
  const entries: PacEntry[] = [];
  for (const node of rows) {
    if (node.lastSeenAt === null || now - node.lastSeenAt > windowMs) continue;
    if (node.syncState === "rejected") continue;
    const target = targetHead(node.id, head, ring);
    if (target && node.appliedHash !== target.hash) continue;
    const address = proxyAddress(node);
    if (address) entries.push({ nodeId: node.id, hostname: node.hostname, address });
  }
  // Failover order is stable between fetches: by hostname, then id.
  return entries.sort((a, b) => a.hostname.localeCompare(b.hostname) || a.nodeId.localeCompare(b.nodeId));
}

export async function sitePac({ db, env, site, now = Date.now() }: SiteAsk) {
  const row = await findSite(db, site);
  if (!row) throw new AppError("NOT_FOUND", `no site ${site}`);
  const entries = await healthyNodes({ db, env, site, now });
  return { text: renderPac(site, row.settings, entries, new Date(now)), entries };
}
