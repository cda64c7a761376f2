// Fleet metrics in the Prometheus text format (docs/fleet.md "Metrics"): what the master knows of
// its nodes, read in a few aggregate queries (never one per node).
import { sql } from "drizzle-orm";
import { config } from "../config";
import type { Db } from "../db/client";
import { onlineWindowMs } from "./nodes";
import { latestHead } from "./policy";
import { activeRollout } from "./rollout-active";

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

class Exposition {
  private readonly lines: string[] = [];
  family(name: string, type: "gauge" | "counter", help: string, samples: [Labels, number][]) {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const keys = Object.keys(labels);
      const text = keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(labels[k]!)}"`).join(",")}}` : "";
      this.lines.push(`${name}${text} ${Number.isFinite(value) ? value : 0}`);
    }
  }
  text() {
    return `${this.lines.join("\n")}\n`;
  }
}

export async function fleetMetrics(db: Db, env: Env, now = Date.now()): Promise<string> {
  const head = await latestHead(db);
  const window = onlineWindowMs(config(env).pollWaitSeconds);
  const byState = await db.all<{ site: string; status: string; sync: string; n: number }>(sql`
    select coalesce(site, '') as site,
      case when revoked_at is not null then 'revoked'
           when last_seen_at is not null and ${now} - last_seen_at <= ${window} then 'online'
           else 'offline' end as status,
      case when sync_state = 'rejected' then 'rejected'
           when applied_hash is null then 'never'
           when applied_hash = ${head?.hash ?? ""} then 'head'
           else 'other' end as sync,
      count(*) as n
    from nodes group by 1, 2, 3`);
  const byVersion = await db.all<{ version: number | null; n: number }>(sql`
    select applied_version as version, count(*) as n from nodes where revoked_at is null group by 1`);
  const [spool] = await db.all<{
    chunks: number;
    bytes: number;
    dropped: number;
    oldest: string | null;
  }>(sql`
    select coalesce(sum(json_extract(spool, '$.pendingChunks')), 0) as chunks,
      coalesce(sum(json_extract(spool, '$.pendingBytes')), 0) as bytes,
      coalesce(sum(json_extract(spool, '$.droppedRecords')), 0) as dropped,
      min(json_extract(spool, '$.oldestPendingAt')) as oldest
    from nodes where revoked_at is null and spool is not null`);
  const [ingest] = await db.all<{ last: number | null; lag: number | null; chunks: number }>(sql`
    select max(received_at) as last, max(received_at - last_ts) as lag, count(*) as chunks
    from log_chunks where received_at >= ${now - 5 * 60_000}`);
  const [newest] = await db.all<{ last: number | null }>(
    sql`select max(received_at) as last from log_chunks`,
  );
  const rollout = await activeRollout(db);

  const m = new Exposition();
  m.family(
    "fleetgate_nodes",
    "gauge",
    "Nodes by site, status (online/offline/revoked) and sync (head: runs the newest version; other, rejected, never).",
    byState.map((r) => [{ site: r.site, status: r.status, sync: r.sync }, r.n]),
  );
  m.family("fleetgate_policy_head_version", "gauge", "The newest published policy version.", [
    [{}, head?.version ?? 0],
  ]);
  m.family(
    "fleetgate_nodes_by_applied_version",
    "gauge",
    'Unrevoked nodes per applied policy version (version skew); head="true" marks the newest.',
    byVersion.map((r) => [
      { version: r.version === null ? "none" : String(r.version), head: String(r.version === head?.version) },
      r.n,
    ]),
  );
  m.family(
    "fleetgate_nodes_behind_head",
    "gauge",
    "Unrevoked nodes whose applied version is not the newest.",
    [[{}, byVersion.filter((r) => r.version !== head?.version).reduce((a, r) => a + r.n, 0)]],
  );
  m.family(
    "fleetgate_spool_pending_chunks",
    "gauge",
    "Log chunks waiting in node spools, as last reported.",
    [[{}, spool?.chunks ?? 0]],
  );
  m.family("fleetgate_spool_pending_bytes", "gauge", "Bytes waiting in node spools, as last reported.", [
    [{}, spool?.bytes ?? 0],
  ]);
  m.family(
    "fleetgate_spool_oldest_pending_age_seconds",
    "gauge",
    "Age of the oldest log record still in any node's spool (0: none pending).",
    // ISO 8601 texts order as their times, so min() is the oldest.
    [[{}, spool?.oldest ? Math.max(0, (now - Date.parse(spool.oldest)) / 1000) : 0]],
  );
  m.family(
    "fleetgate_spool_dropped_records",
    "gauge",
    "Log records nodes dropped on a full spool quota, summed as last reported.",
    [[{}, spool?.dropped ?? 0]],
  );
  m.family(
    "fleetgate_ingest_lag_seconds",
    "gauge",
    "Over the last 5 minutes: the largest delay from a chunk's newest record to its arrival at the master.",
    [[{}, ingest?.lag !== null && ingest?.lag !== undefined ? Math.max(0, ingest.lag / 1000) : 0]],
  );
  m.family("fleetgate_ingest_chunks_5m", "gauge", "Log chunks stored in the last 5 minutes.", [
    [{}, ingest?.chunks ?? 0],
  ]);
  m.family(
    "fleetgate_ingest_last_chunk_age_seconds",
    "gauge",
    "Seconds since the newest stored log chunk arrived (-1: none yet).",
    [[{}, newest?.last ? (now - newest.last) / 1000 : -1]],
  );
  m.family("fleetgate_rollout_active", "gauge", "1 while a staged rollout holds nodes back.", [
    [{}, rollout ? 1 : 0],
  ]);
  m.family("fleetgate_rollout_ring_nodes", "gauge", "Nodes in the active rollout's ring.", [
    [{}, rollout ? rollout.ringNodes.length : 0],
  ]);
  return m.text();
}
