// What happens to a chunk the master did not simply accept: quarantine (refused for good) and
// the journaled 413 split. Both run inside DiskSpool's disk queue.
import path from "node:path";
import type { EventLogger } from "../ports";
import type { ChunkIndex } from "./chunk-index";
import { type ChunkInfo, chunkFileName, chunkId } from "./chunk-name";
import type { SpoolJournal } from "./meta";
import type { SpoolDirs } from "./recover";
import { gzipLines, oldestOf, readLines } from "./seal";
import { type SpoolFs, syncDir, unlinkIfExists, writeFileAtomic } from "./spool-fs";

export interface ChunkFateContext {
  fs: SpoolFs;
  dirs: SpoolDirs;
  events: EventLogger;
  journal: SpoolJournal;
  index: ChunkIndex;
}

/** Moves a chunk to `quarantine/`: kept and counted, never uploaded again automatically. */
export async function quarantineChunk(
  ctx: ChunkFateContext,
  chunk: ChunkInfo,
  reason: string,
): Promise<void> {
  const { fs, dirs } = ctx;
  await fs.rename(path.join(dirs.sealed, chunk.file), path.join(dirs.quarantine, chunk.file));
  await syncDir(fs, dirs.quarantine);
  await syncDir(fs, dirs.sealed);
  ctx.index.forget(chunk);
  ctx.index.quarantined.push(chunk);
  ctx.events.emit("spool.quarantined", {
    level: "error",
    chunk: chunkId(chunk),
    records: chunk.records,
    reason,
    file: path.join(dirs.quarantine, chunk.file),
  });
}

/**
 * 413: the first half keeps the chunk's id (the master refused it, so it has nothing under that id),
 * the second half takes the next fresh seq — a split consumes exactly one seq and leaves no gap.
 * Returns false when the chunk could not be split (one record) and was quarantined instead.
 */
export async function splitChunk(ctx: ChunkFateContext, chunk: ChunkInfo): Promise<boolean> {
  const { fs, dirs, journal } = ctx;
  const lines = await readLines(await fs.readFile(path.join(dirs.sealed, chunk.file)));
  if (lines.length < 2) {
    await quarantineChunk(ctx, chunk, "master refused it as too large (413)");
    return false;
  }
  const half = Math.ceil(lines.length / 2);
  const secondLines = lines.slice(half);
  const meta = journal.meta();
  const second = {
    epoch: meta.epoch,
    seq: meta.nextSeq,
    records: secondLines.length,
    oldestMs: oldestOf(secondLines, chunk.oldestMs),
  };
  const secondGz = await gzipLines(secondLines);
  const secondFile = chunkFileName(second);
  await writeFileAtomic(fs, path.join(dirs.sealed, secondFile), secondGz);
  await syncDir(fs, dirs.sealed);
  const firstFile = chunkFileName({ ...chunk, records: half });
  await journal.saveMeta({ nextSeq: second.seq + 1, split: { original: chunk.file, firstHalf: firstFile } });
  const firstBytes = await writeFirstHalf(ctx, chunk.file, half, lines);
  await journal.saveMeta({ split: null });
  ctx.index.forget(chunk);
  ctx.index.addPending(
    { ...chunk, records: half, file: firstFile, bytes: firstBytes },
    { ...second, file: secondFile, bytes: secondGz.length },
  );
  ctx.events.emit("spool.split", {
    level: "warn",
    chunk: chunkId(chunk),
    records: lines.length,
    into: [chunkId(chunk), chunkId(second)],
  });
  return true;
}

/**
 * Writes the first `half` records of `original` under its new name and deletes the original; used by
 * a split and by the start-up recovery of an interrupted one. Returns the new file's size.
 */
export async function writeFirstHalf(
  ctx: Pick<ChunkFateContext, "fs" | "dirs">,
  original: string,
  half: number,
  lines?: Buffer[],
): Promise<number> {
  const { fs, dirs } = ctx;
  const originalPath = path.join(dirs.sealed, original);
  const all = lines ?? (await readLines(await fs.readFile(originalPath)));
  const parsed = /^(.*)\.r\d+\.(t\d+\.ndjson\.gz)$/.exec(original);
  const firstFile = parsed ? `${parsed[1]}.r${half}.${parsed[2]}` : original;
  const gz = await gzipLines(all.slice(0, half));
  await writeFileAtomic(fs, path.join(dirs.sealed, firstFile), gz);
  await unlinkIfExists(fs, originalPath);
  await syncDir(fs, dirs.sealed);
  return gz.length;
}
