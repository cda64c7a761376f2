import { config } from "../config";
import type { HubAnswer, HubStats, PolicyHub } from "../durable/policy-hub";
import type { StatusRow } from "./node-status";
import type { PolicyHead } from "./policy";
import type { RolloutTargeting } from "./rollout-target";

function hubs(env: Env): DurableObjectNamespace<PolicyHub> {
  return env.POLICY_HUB as unknown as DurableObjectNamespace<PolicyHub>;
}

export function shardCount(env: Env) {
  return config(env).policyHubShards;
}

function shardOf(nodeId: string, shards: number) {
  let h = 0;
  for (let i = 0; i < nodeId.length; i++) h = (Math.imul(h, 31) + nodeId.charCodeAt(i)) | 0;
  return Math.abs(h) % shards;
}

function shard(env: Env, index: number) {
  const ns = hubs(env);
  return ns.get(ns.idFromName(`shard-${index}`));
}

/**
 * The newest head as the node's shard knows it: at once when it differs from `known`, else after a
 * publish or `timeoutMs`. Marks the node seen (the hub writes last-seen times in batches).
 */
export function pollHub(
  env: Env,
  nodeId: string,
  known: string | null,
  timeoutMs: number,
): Promise<HubAnswer> {
  return shard(env, shardOf(nodeId, shardCount(env))).poll(nodeId, known, timeoutMs);
}

/** Stores a status report in the node's shard's next batch; resolves once it is in D1. */
export function reportStatus(env: Env, row: StatusRow): Promise<void> {
  return shard(env, shardOf(row.id, shardCount(env))).report(row);
}

/**
 * Hands a new head to every shard, which releases its waiters; resolves once every shard has
 * them queued, not once they are answered. Failures are logged: the hubs re-read D1 within 30 s.
 */
export async function announceVersion(env: Env, head: PolicyHead, releaseAfterMs = 0) {
  const results = await Promise.allSettled(
    Array.from({ length: shardCount(env) }, (_, i) => shard(env, i).notify(head, releaseAfterMs)),
  );
  for (const result of results) {
    if (result.status === "rejected") console.error("policy-hub notify failed", String(result.reason));
  }
}

/**
 * announceVersion without holding the publish: the answer goes out while the shards release their
 * waiters (the isolate that answers the publish also sends those answers). The version is in D1
 * before this is called, so a lost hand-off costs nodes at most the hubs' 30 s re-read.
 */
export function announceInBackground(
  ctx: Pick<ExecutionContext, "waitUntil">,
  env: Env,
  head: PolicyHead,
): Promise<void> {
  // The shards take the head at once (a poll arriving now gets it), but release their parked
  // polls only after a head start for the publish's own answer: the release wakes every poll this
  // isolate holds (locally: all of them, on the one workerd thread), and the answer was written
  // after theirs (0.35–0.7 s at 1,000 waiters, 2.3–6.3 s at 5,000; docs/scale.md).
  ctx.waitUntil(announceVersion(env, head, PUBLISH_ANSWER_HEAD_START_MS));
  return Promise.resolve();
}

const PUBLISH_ANSWER_HEAD_START_MS = 20;

/**
 * Hands every shard the active rollout's targeting (null: none), before the head it concerns, so no
 * shard serves a held node the new head. Unlike a head, this must reach every shard: it throws.
 */
export async function announceRollout(env: Env, rollout: RolloutTargeting | null) {
  await Promise.all(Array.from({ length: shardCount(env) }, (_, i) => shard(env, i).setRollout(rollout)));
}

/** Ends a revoked node's parked poll; best effort (the auth sweep refuses it within seconds anyway). */
export async function announceRevocation(env: Env, nodeId: string) {
  try {
    await shard(env, shardOf(nodeId, shardCount(env))).revoke(nodeId);
  } catch (error) {
    console.error("policy-hub revoke failed", String(error));
  }
}

export async function hubStats(env: Env): Promise<(HubStats & { shard: number })[]> {
  return Promise.all(
    Array.from({ length: shardCount(env) }, async (_, i) => ({ shard: i, ...(await shard(env, i).stats()) })),
  );
}

/** Writes every shard's pending last-seen times now (tests; the hubs do it every few seconds). */
export async function flushHubs(env: Env): Promise<number> {
  const counts = await Promise.all(
    Array.from({ length: shardCount(env) }, (_, i) => shard(env, i).flushSeen()),
  );
  return counts.reduce((a, b) => a + b, 0);
}
