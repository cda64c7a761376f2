// What the fleet pages share: the node shape the views get, and small renderers.
import { formatBytes } from "../components";
export interface NodeView {
  id: string;
  hostname: string;
  status: "online" | "offline" | "revoked";
  sync: "in-sync" | "behind" | "rejected" | "never" | "held";
  site?: string | null;
  appliedVersion: number | null;
  latestVersion: number | null;
  agentVersion: string;
  proxyKind: string;
  proxyListen: string | null;
  proxyVersion: string | null;
  lastAddress: string | null;
  lastSeenAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
  enrolledAt: number;
  uptimeSeconds: number | null;
  spool: {
    pendingChunks?: number;
    pendingBytes?: number;
    oldestPendingAt?: string | number | null;
    droppedRecords?: number;
  } | null;
  revokedAt: number | null;
}

export interface NodeEvent {
  id: number;
  at: number;
  type: string;
  version: number | null;
  detail: string | null;
}

export const reportQuery = (r: { from: number; to: number; node?: string }) =>
  `from=${r.from}&to=${r.to}${r.node ? `&node=${encodeURIComponent(r.node)}` : ""}`;

export function Spool(props: { spool: NodeView["spool"] }) {
  const s = props.spool;
  if (!s) return <span class="muted">–</span>;
  return (
    <span>
      {s.pendingChunks ?? 0} chunks / {formatBytes(s.pendingBytes ?? 0)}
      {s.droppedRecords ? <span class="badge bad">{s.droppedRecords} dropped</span> : null}
    </span>
  );
}
