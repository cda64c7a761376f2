// The gates of a staged rollout: what they are, and the figures they are judged on (the ring's
// NACKs, online/applied counts and report rollups before and during the soak). Reading only; the
// state changes that follow a verdict are in rollout.ts.
import { and, eq, inArray, sql } from "drizzle-orm";
import { config } from "../config";
import type { Db } from "../db/client";
import { getDb } from "../db/client";
import { nodes, rollups } from "../db/schema";
import { onlineWindowMs } from "./nodes";
import type { RolloutRow } from "./rollout-active";
import { KIND, MINUTE } from "./rollup-kinds";

export interface Gates {
  /** Halt when the ring's error share (action "error") rises by more than this (0-1) over before. */
  maxErrorShareIncrease: number;
  /** Halt when the ring's blocked share rises by more than this (0-1). */
  maxBlockedShareIncrease: number;
  /** The share gates judge only once the ring served at least this many requests since it applied. */
  minRequests: number;
}

export const DEFAULT_GATES: Gates = {
  maxErrorShareIncrease: 0.05,
  maxBlockedShareIncrease: 0.2,
  minRequests: 20,
};
/** The "before" window of the share gates: this long before the rollout started. */
const BASELINE_MS = 60 * MINUTE;

interface Window {
  requests: number;
  blocked: number;
  errors: number;
}

/** The ring's minute rollups with bucket in [from, to). */
async function ringTraffic(db: Db, ring: string[], from: number, to: number): Promise<Window> {
  const [row] = await db
    .select({
      requests: sql<number>`coalesce(sum(${rollups.requests}), 0)`,
      blocked: sql<number>`coalesce(sum(${rollups.blocked}), 0)`,
      errors: sql<number>`coalesce(sum(${rollups.errors}), 0)`,
    })
    .from(rollups)
    .where(
      and(
        eq(rollups.kind, KIND.totalMinute),
        inArray(rollups.nodeId, sql`(select value from json_each(${JSON.stringify(ring)}))`),
        sql`${rollups.bucket} >= ${from} and ${rollups.bucket} < ${to}`,
      ),
    );
  return row ?? { requests: 0, blocked: 0, errors: 0 };
}

const share = (part: number, whole: number) => (whole > 0 ? part / whole : 0);

export interface GateFigures {
  at: number;
  ringSize: number;
  ringOnline: number;
  ringApplied: number;
  nacks: { nodeId: string; error: string | null }[];
  before: Window & { errorShare: number; blockedShare: number };
  during: Window & { errorShare: number; blockedShare: number };
  soakRemainingSeconds: number | null;
  verdict: "waiting" | "soaking" | "promote" | "halt";
  reason: string | null;
}

/** Reads the gates of a soaking rollout; pure reading, no state change. */
export async function gateFigures(env: Env, row: RolloutRow, now = Date.now()): Promise<GateFigures> {
  const db = getDb(env.DB);
  const gates = { ...DEFAULT_GATES, ...(row.gates as Partial<Gates>) };
  const ring = row.ringNodes;
  const members = await db
    .select({
      id: nodes.id,
      lastSeenAt: nodes.lastSeenAt,
      appliedHash: nodes.appliedHash,
      syncState: nodes.syncState,
      lastError: nodes.lastError,
      lastErrorAt: nodes.lastErrorAt,
    })
    .from(nodes)
    .where(inArray(nodes.id, sql`(select value from json_each(${JSON.stringify(ring)}))`));
  const window = onlineWindowMs(config(env).pollWaitSeconds);
  const online = members.filter((n) => n.lastSeenAt !== null && now - n.lastSeenAt <= window);
  const applied = members.filter((n) => row.toHash !== null && n.appliedHash === row.toHash);
  const nacks = members
    .filter((n) => n.syncState === "rejected" && (n.lastErrorAt ?? 0) >= row.startedAt)
    .map((n) => ({ nodeId: n.id, error: n.lastError }));
  const ringAppliedAt = row.ringAppliedAt;
  const since = ringAppliedAt ?? row.startedAt;
  // Minute grain: the minute the rollout started counts as "during" (the gate errs towards caution).
  const startMinute = Math.floor(row.startedAt / MINUTE) * MINUTE;
  const before = await ringTraffic(db, ring, startMinute - BASELINE_MS, startMinute);
  const during = await ringTraffic(
    db,
    ring,
    Math.min(startMinute, Math.floor(since / MINUTE) * MINUTE),
    now + 1,
  );
  const figures = (w: Window) => ({
    ...w,
    errorShare: share(w.errors, w.requests),
    blockedShare: share(w.blocked, w.requests),
  });
  const b = figures(before);
  const d = figures(during);
  let verdict: GateFigures["verdict"] = "waiting";
  let reason: string | null = null;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  if (nacks.length > 0) {
    verdict = "halt";
    reason = `node ${nacks[0]!.nodeId} rejected v${row.toVersion}: ${nacks[0]!.error ?? "no reason given"}`;
  } else if (d.requests >= gates.minRequests && d.errorShare - b.errorShare > gates.maxErrorShareIncrease) {
    verdict = "halt";
    reason = `error share in the ring rose from ${pct(b.errorShare)} to ${pct(d.errorShare)} (gate: +${pct(gates.maxErrorShareIncrease)})`;
  } else if (
    d.requests >= gates.minRequests &&
    d.blockedShare - b.blockedShare > gates.maxBlockedShareIncrease
  ) {
    verdict = "halt";
    reason = `blocked share in the ring rose from ${pct(b.blockedShare)} to ${pct(d.blockedShare)} (gate: +${pct(gates.maxBlockedShareIncrease)})`;
  } else if (ringAppliedAt !== null) {
    const remaining = row.soakSeconds * 1000 - (now - ringAppliedAt);
    verdict = remaining <= 0 ? "promote" : "soaking";
    if (remaining <= 0) reason = `gates held for the ${row.soakSeconds} s soak`;
  }
  return {
    at: now,
    ringSize: ring.length,
    ringOnline: online.length,
    ringApplied: applied.length,
    nacks,
    before: b,
    during: d,
    soakRemainingSeconds:
      ringAppliedAt === null
        ? null
        : Math.max(0, Math.ceil((row.soakSeconds * 1000 - (now - ringAppliedAt)) / 1000)),
    verdict,
    reason,
  };
}
