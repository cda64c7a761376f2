// Accepting one log chunk, the one verb the /logs route calls. In order: the chunk id, a
// duplicate of a counted chunk (answered without reading the body), the body with its limits,
// the fold — the node's tally, checked (a sample also folded from the records and compared), or
// every record validated and folded here — then the fold and the raw gzip handed to the node's
// ingest coalescer, which answers once the chunk is durable there and, about a second later,
// writes the flush's raw chunks to R2 as one object and ledger, archive index and rollups in one
// D1 batch (docs/reports.md, Ingestion).
import { type ChunkId, parseChunkId } from "../../protocol/chunk-id";
import {
  type ChunkFold,
  chunkLag,
  foldChunk,
  foldDifference,
  readTally,
  TALLY_LIMITS,
} from "../../protocol/chunk-tally";
import { CHUNK_LIMITS, type LogChunkAnswer } from "../../protocol/wire";
import { config } from "../config";
import type { Db } from "../db/client";
import type { IngestCoalescer } from "../durable/ingest-coalescer";
import { AppError } from "../errors";
import { fireAlert } from "./alerts";
import { type ArchiveMeta, archiveMeta } from "./chunk-archive";
import {
  GZIP_MIN_BYTES,
  inflateChunk,
  inflateTally,
  readCompressedChunk,
  readTalliedChunk,
  requireGzipEncoding,
} from "./ingest-body";
import { encodeFold } from "./ingest-fold";
import { parseRecords, type RecordWindow, recordWindow } from "./ingest-validate";
import { COMPACT_AFTER_MS } from "./rollup-compact";
import { chunkExists } from "./rollup-store";

// Nodes are spread over this many coalescers by a hash of their id. A constant, not a var:
// changing it moves nodes to another shard, and a chunk retried within the second its old
// shard still buffers it would not be recognised there (docs/reports.md, Coalescing).
export const INGEST_SHARDS = 8;

/**
 * Ledger rows of chunks younger than this are rows, never compacted runs (compaction takes days
 * older than COMPACT_AFTER_MS), with a day's margin for node clocks.
 */
const LEDGER_ROW_MS = COMPACT_AFTER_MS - 24 * 3_600_000;

export function shardOf(nodeId: string, shards = INGEST_SHARDS) {
  let h = 0;
  for (let i = 0; i < nodeId.length; i++) h = (Math.imul(h, 31) + nodeId.charCodeAt(i)) | 0;
  return Math.abs(h) % shards;
}

export function coalescer(env: Env, shard: number) {
  const ns = env.INGEST_COALESCER as unknown as DurableObjectNamespace<IngestCoalescer>;
  return ns.get(ns.idFromName(`shard-${shard}`));
}

/** An upload as it arrives: the headers that matter and the body stream. */
export interface ChunkUpload {
  /** `X-Fleetgate-Chunk` */
  chunkId: string | undefined;
  /** `Content-Encoding` */
  encoding: string | undefined;
  /** `Content-Length`, when sent */
  length: string | undefined;
  /** `X-Fleetgate-Tally-Length`: the body starts with this many bytes of tally gzip. */
  tallyLength?: string | undefined;
  body: ReadableStream<Uint8Array> | null;
}

function chunkIdOf(header: string | undefined): ChunkId {
  const id = parseChunkId(header);
  if (!id) {
    throw new AppError("VALIDATION_FAILED", "X-Fleetgate-Chunk must be <epoch>.<seq>", [
      { path: "headers.x-fleetgate-chunk", message: `got ${JSON.stringify(header ?? null)}` },
    ]);
  }
  return id;
}

/**
 * Accepts one chunk of `node` exactly once. Answers `{accepted, duplicate}`; a refused chunk
 * writes nothing (4xx naming the line and field); any failure past validation is a 503, so the
 * node keeps the chunk and sends the same id again.
 */
export async function acceptChunk({
  db,
  env,
  node,
  input,
  waitUntil,
}: {
  db: Db;
  env: Env;
  node: { id: string };
  input: ChunkUpload;
  /** Runs work after the answer (the route's executionCtx.waitUntil); awaited inline without it. */
  waitUntil?: (work: Promise<unknown>) => void;
}): Promise<LogChunkAnswer> {
  const id = chunkIdOf(input.chunkId);
  if (Number(input.length ?? "0") > CHUNK_LIMITS.maxGzipBytes) {
    throw new AppError(
      "PAYLOAD_TOO_LARGE",
      `compressed chunk exceeds ${CHUNK_LIMITS.maxGzipBytes} bytes; split the chunk`,
    );
  }
  const tallyLength = tallyLengthOf(input.tallyLength);
  const window = recordWindow(config(env).retentionDays);
  let counted: Counted;
  if (tallyLength === null) {
    if (await chunkExists(db.$client, node.id, id)) {
      await input.body?.cancel();
      return { accepted: 0, duplicate: true };
    }
    requireGzipEncoding(input.encoding);
    counted = fromRecords(await readCompressedChunk(input.body), window);
  } else {
    counted = fromTally(
      await readTalliedChunk(input.body, tallyLength),
      window,
      config(env).tallyVerifyEvery,
    );
    // A chunk whose records are all younger than LEDGER_ROW_MS cannot be inside a compacted ledger
    // run, so a repeat is caught without a D1 read: by the coalescer's seen ids, or by the ledger's
    // key when its flush commits (docs/reports.md, Coalescing). Only older chunks ask D1 first.
    if (counted.fold.firstTs < window.now - LEDGER_ROW_MS && (await chunkExists(db.$client, node.id, id))) {
      return { accepted: 0, duplicate: true, counted: "tally" };
    }
  }
  const { fold, lagMs, gzip } = counted;
  const answer = await bufferChunk(env, node.id, id, {
    records: fold.records,
    fold: encodeFold(fold),
    archive: archiveMeta(fold, lagMs, gzip),
    gzip,
  });
  if (counted.tallyRefused) {
    console.warn("tally refused, counted from the records", node.id, input.chunkId, counted.tallyRefused);
    const alert = tallyRefusedAlert(db, env, node.id, input.chunkId!, counted.tallyRefused);
    if (waitUntil) waitUntil(alert);
    else await alert;
  }
  // Only a tallied upload hears how it was counted: answers to agents that send none stay as they were.
  if (tallyLength === null) return answer;
  return {
    ...answer,
    counted: counted.fromTally ? "tally" : "records",
    ...(counted.tallyRefused ? { tallyRefused: counted.tallyRefused } : {}),
  };
}

/**
 * A refused tally is an agent that folds differently from the master (a bug, a build that does
 * not match its version) or one that lies: the chunk was counted from its records, but whoever
 * watches the fleet should hear of it. One open alert per node (fireAlert dedupes); never fails
 * the upload.
 */
async function tallyRefusedAlert(db: Db, env: Env, nodeId: string, chunkId: string, reason: string) {
  await fireAlert({
    db,
    env,
    kind: "logs.tally_refused",
    subject: nodeId,
    summary: `node ${nodeId} sent a log tally the master refused; chunk ${chunkId} was counted from its records`,
    details: { chunk: chunkId, reason: reason.slice(0, 300) },
  }).catch((error) => console.error(JSON.stringify({ tallyAlertFailed: nodeId, error: String(error) })));
}

function tallyLengthOf(header: string | undefined): number | null {
  if (header === undefined) return null;
  const n = /^\d{1,8}$/.test(header) ? Number(header) : -1;
  if (n < GZIP_MIN_BYTES || n > TALLY_LIMITS.maxGzipBytes) {
    throw new AppError(
      "VALIDATION_FAILED",
      `X-Fleetgate-Tally-Length must be ${GZIP_MIN_BYTES}..${TALLY_LIMITS.maxGzipBytes}`,
      [{ path: "headers.x-fleetgate-tally-length", message: `got ${JSON.stringify(header)}` }],
    );
  }
  return n;
}

interface Counted {
  fold: ChunkFold;
  lagMs: number;
  gzip: Uint8Array;
  fromTally: boolean;
  tallyRefused?: string;
}

/** Every record parsed, validated and folded here (4xx naming the first bad line). */
function fromRecords(gzip: Uint8Array, window: RecordWindow): Counted {
  const chunk = parseRecords(inflateChunk(gzip), window);
  return { fold: foldChunk(chunk), lagMs: chunkLag(chunk.times), gzip, fromTally: false };
}

/**
 * The node's tally, checked; one in `verifyEvery` chunks is also folded from its records and
 * compared. A tally that breaks a rule or differs from its records is not used: the chunk is
 * counted from the records (which must then be valid), and the answer says why.
 */
function fromTally(
  { tally, gzip }: { tally: Uint8Array; gzip: Uint8Array },
  window: RecordWindow,
  verifyEvery: number,
): Counted {
  const checked = readTally(inflateTally(tally), {
    earliest: window.now - window.maxAgeMs,
    latest: window.now + window.maxAheadMs,
    maxRecords: CHUNK_LIMITS.maxRecords,
  });
  if (!checked.ok) {
    const counted = fromRecords(gzip, window);
    return { ...counted, tallyRefused: `${checked.path || "tally"}: ${checked.message}` };
  }
  if (verifyEvery > 0 && Math.random() * verifyEvery < 1) {
    const counted = fromRecords(gzip, window);
    const difference =
      foldDifference(checked.tally.fold, counted.fold) ??
      (checked.tally.lagMs === counted.lagMs ? null : `lagMs ${checked.tally.lagMs} ≠ ${counted.lagMs}`);
    if (difference) return { ...counted, tallyRefused: `differs from the records: ${difference}` };
  }
  return { ...checked.tally, gzip, fromTally: true };
}

async function bufferChunk(
  env: Env,
  nodeId: string,
  id: ChunkId,
  chunk: { records: number; fold: ReturnType<typeof encodeFold>; archive: ArchiveMeta; gzip: Uint8Array },
): Promise<LogChunkAnswer> {
  let answer: Awaited<ReturnType<IngestCoalescer["accept"]>>;
  try {
    answer = await coalescer(env, shardOf(nodeId)).accept({ nodeId, ...id, ...chunk });
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
