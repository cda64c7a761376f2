import type { PolicyHub } from "../durable/policy-hub";
import { intVar } from "../env";

function hubs(env: Env): DurableObjectNamespace<PolicyHub> {
  return env.POLICY_HUB as unknown as DurableObjectNamespace<PolicyHub>;
}

function shardCount(env: Env) {
  return intVar(env.POLICY_HUB_SHARDS, 4, 1, 64);
}

function shardOf(nodeId: string, shards: number) {
  let h = 0;
  for (let i = 0; i < nodeId.length; i++) h = (Math.imul(h, 31) + nodeId.charCodeAt(i)) | 0;
  return Math.abs(h) % shards;
}

export function waitForNewerVersion(env: Env, nodeId: string, known: number, timeoutMs: number) {
  const ns = hubs(env);
  return ns.get(ns.idFromName(`shard-${shardOf(nodeId, shardCount(env))}`)).waitForVersion(known, timeoutMs);
}

/** Releases every parked poll on every shard; failures are logged, the next poll catches up. */
export async function announceVersion(env: Env, version: number) {
  const ns = hubs(env);
  const results = await Promise.allSettled(
    Array.from({ length: shardCount(env) }, (_, shard) =>
      ns.get(ns.idFromName(`shard-${shard}`)).notify(version),
    ),
  );
  for (const result of results) {
    if (result.status === "rejected") console.error("policy-hub notify failed", String(result.reason));
  }
}
