// Which version a node should run: a pure function of the node, the newest head and the active
// rollout, evaluated by the node's PolicyHub shard on every poll and release (no D1 per poll).
import type { PolicyHead } from "./policy-head";

/** What a hub needs to know of the active rollout (services/rollout.ts builds it). */
export interface RolloutTargeting {
  id: string;
  /** The version every node not in the ring keeps while the ring soaks ("held"); null: none existed. */
  from: PolicyHead | null;
  /** The ring's node ids, resolved when the rollout started. */
  ring: readonly string[];
}

/**
 * The head a node should have: the newest one, except while a rollout soaks, when nodes outside
 * its ring keep the version they had before the rollout's publish.
 */
export function targetHead(
  nodeId: string,
  head: PolicyHead | null,
  rollout: { from: PolicyHead | null; ring: ReadonlySet<string> } | null,
): PolicyHead | null {
  if (!rollout || !head) return head;
  return rollout.ring.has(nodeId) ? head : rollout.from;
}

/** Deterministic percentage ring: the node's place in 0..9999 from a hash of its id. */
export async function inPercentRing(nodeId: string, percent: number): Promise<boolean> {
  // The node id alone: the same nodes go first in every rollout of that percentage (stable canaries).
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(nodeId)));
  const place = ((digest[0]! << 8) | digest[1]!) % 10_000;
  return place < Math.round(percent * 100);
}
