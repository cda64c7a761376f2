import { desc, inArray } from "drizzle-orm";
import type { Db } from "../db/client";
import { rollouts } from "../db/schema";
import { AppError } from "../errors";
import type { RolloutTargeting } from "./rollout-target";

/** States in which a rollout holds nodes back: publishing (pending) and soaking. */
export const ACTIVE_STATES = ["pending", "soaking"] as const;

export type RolloutRow = typeof rollouts.$inferSelect;

export async function activeRollout(db: Db): Promise<RolloutRow | null> {
  const [row] = await db
    .select()
    .from(rollouts)
    .where(inArray(rollouts.state, [...ACTIVE_STATES]))
    .orderBy(desc(rollouts.startedAt))
    .limit(1);
  return row ?? null;
}

export function targetingOf(row: RolloutRow): RolloutTargeting {
  return {
    id: row.id,
    from:
      row.fromVersion !== null && row.fromHash !== null
        ? { version: row.fromVersion, hash: row.fromHash, generation: row.fromGeneration ?? 0 }
        : null,
    ring: row.ringNodes,
  };
}

/** What the PolicyHub reads beside the head when it re-checks D1. */
export async function activeTargeting(db: Db): Promise<RolloutTargeting | null> {
  const row = await activeRollout(db);
  return row ? targetingOf(row) : null;
}

/** A plain publish during a rollout would reach every node at once: refused until it ends. */
export async function assertNoActiveRollout(db: Db): Promise<void> {
  const row = await activeRollout(db);
  if (row) {
    throw new AppError(
      "CONFLICT",
      `rollout ${row.id} is in progress: promote, halt or roll it back first (/api/v1/rollouts/${row.id})`,
    );
  }
}

/**
 * A node view's sync, seen through the active rollout: a node outside the ring that runs the
 * rollout's previous version is "held", not "behind"; a node that runs its target's content is in sync.
 */
export function rolloutSync<T extends { id: string; sync: string; appliedHash?: string | null }>(
  view: T,
  rollout: RolloutRow | null,
): T & { held: boolean } {
  if (!rollout || view.sync === "rejected" || view.sync === "never") return { ...view, held: false };
  const held = !rollout.ringNodes.includes(view.id);
  if (held && view.appliedHash === rollout.fromHash)
    return { ...view, sync: "held" as T["sync"], held: true };
  return { ...view, held };
}
