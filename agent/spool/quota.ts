// The disk quota: past it the oldest records go, counted — the proxy is never slowed or blocked.
import path from "node:path";
import type { EventLogger } from "../ports";
import type { ChunkIndex } from "./chunk-index";
import { type ChunkInfo, chunkId } from "./chunk-name";
import type { SpoolJournal } from "./meta";
import type { SpoolDirs } from "./recover";
import { type SpoolFs, unlinkIfExists } from "./spool-fs";

export interface QuotaContext {
  fs: SpoolFs;
  dirs: SpoolDirs;
  events: EventLogger;
  journal: SpoolJournal;
  index: ChunkIndex;
}

/**
 * Over quota: drops quarantined chunks first, then the oldest pending ones, never one being
 * uploaded; every record counted. `segmentBytes` is what unsealed segments use on disk.
 * Returns the number of records dropped.
 */
export async function enforceQuota(
  ctx: QuotaContext,
  segmentBytes: number,
  quotaBytes: number,
): Promise<number> {
  const { index } = ctx;
  const bytes = index.chunkBytes();
  let usage = bytes.pending + bytes.quarantined + segmentBytes;
  if (usage <= quotaBytes) return 0;
  const victims: { chunk: ChunkInfo; dir: string }[] = [];
  for (const chunk of index.quarantined) {
    if (usage <= quotaBytes) break;
    victims.push({ chunk, dir: ctx.dirs.quarantine });
    usage -= chunk.bytes;
  }
  for (const chunk of index.pending()) {
    if (usage <= quotaBytes) break;
    // A chunk on its way to the master may be accepted there: it is not dropped (nor counted).
    if (index.isUploading(chunk)) continue;
    victims.push({ chunk, dir: ctx.dirs.sealed });
    usage -= chunk.bytes;
  }
  if (victims.length === 0) return 0;
  const records = victims.reduce((sum, v) => sum + v.chunk.records, 0);
  // Out of the index before the first await: the uploader (outside the disk queue) must not take a
  // victim while its drop is being journaled, or its records would count as dropped and delivered.
  for (const { chunk } of victims) {
    index.forget(chunk);
    index.forgetQuarantined(chunk);
  }
  try {
    // Counted and journaled before deleting: a crash in between finishes the deletes, never recounts.
    await ctx.journal.saveMeta({ dropping: victims.map((v) => v.chunk.file) }, records);
  } catch (error) {
    // Not counted, not deleted: the chunks are pending (or quarantined) again.
    for (const { chunk, dir } of victims) {
      if (dir === ctx.dirs.quarantine) index.quarantined.push(chunk);
      else index.addPending(chunk);
    }
    throw error;
  }
  for (const { chunk, dir } of victims) await unlinkIfExists(ctx.fs, path.join(dir, chunk.file));
  ctx.journal.dropsDeleted();
  ctx.events.emit("spool.dropped", {
    level: "error",
    reason: "disk quota",
    quotaBytes,
    chunks: victims.map((v) => chunkId(v.chunk)),
    records,
    droppedTotal: ctx.journal.meta().droppedRecords,
  });
  return records;
}
