import type { LogChunkAnswer } from "../../protocol/wire";
import type { IngestCoalescer } from "../durable/ingest-coalescer";
import { AppError } from "../errors";
import type { ArchiveMeta } from "./chunk-archive";
import type { ChunkId, ParsedChunk } from "./ingest";
import { foldChunk } from "./ingest-fold";

// Nodes are spread over this many coalescers by a hash of their id. A constant, not a var:
// changing it moves nodes to another shard, and a chunk retried within the second its old
// shard still buffers it would not be recognised there (docs/reports.md, Coalescing).
export const INGEST_SHARDS = 8;

export function shardOf(nodeId: string, shards = INGEST_SHARDS) {
  let h = 0;
  for (let i = 0; i < nodeId.length; i++) h = (Math.imul(h, 31) + nodeId.charCodeAt(i)) | 0;
  return Math.abs(h) % shards;
}

export function coalescer(env: Env, shard: number) {
  const ns = env.INGEST_COALESCER as unknown as DurableObjectNamespace<IngestCoalescer>;
  return ns.get(ns.idFromName(`shard-${shard}`));
}

/**
 * Accepts a parsed chunk: folds it and hands it to its node's coalescer, which answers once the
 * chunk is durable there (counted in D1 within about a second). Any failure on the way is a 503:
 * the node keeps the chunk and sends it again; only a chunk id already accepted is a duplicate.
 */
export async function acceptChunk(
  env: Env,
  nodeId: string,
  id: ChunkId,
  chunk: ParsedChunk,
  archive?: ArchiveMeta,
): Promise<LogChunkAnswer> {
  const fold = foldChunk(chunk);
  let answer: Awaited<ReturnType<IngestCoalescer["accept"]>>;
  try {
    answer = await coalescer(env, shardOf(nodeId)).accept(
      nodeId,
      id.epoch,
      id.seq,
      { records: fold.records, firstTs: fold.firstTs, lastTs: fold.lastTs, ...(archive ? { archive } : {}) },
      JSON.stringify(fold),
    );
  } catch (error) {
    console.error("ingest coalescer unavailable", String(error));
    throw new AppError("UNAVAILABLE", "the log buffer is unavailable; send the chunk again", undefined, {
      "Retry-After": "5",
    });
  }
  if ("busy" in answer) {
    throw new AppError("UNAVAILABLE", "the master is behind on log chunks; send the chunk again", undefined, {
      "Retry-After": "10",
    });
  }
  return answer;
}

/** Flushes every coalescer now (tests, the bench); resolves with the records written. */
export async function flushAllCoalescers(env: Env): Promise<number> {
  const counts = await Promise.all(
    Array.from({ length: INGEST_SHARDS }, (_, shard) => coalescer(env, shard).flush()),
  );
  return counts.reduce((a, b) => a + b, 0);
}
