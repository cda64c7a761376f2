// Segments: the append-only files records wait in until they are sealed into chunks.
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import type { ChunkFateContext } from "./chunk-fate";
import { type ChunkInfo, chunkFileName, chunkId, segmentFileName } from "./chunk-name";
import { SEGMENT_MAGIC, scanSegment } from "./frame";
import { type ChunkLimits, packChunks } from "./seal";
import { type SpoolFs, syncDir, writeFileAtomic } from "./spool-fs";

/** An append-only segment: the records of (about) one future chunk, on disk and still in memory. */
export interface Segment {
  n: number;
  path: string;
  handle: FileHandle | null;
  /** Bytes on disk known good (magic + synced frames). */
  diskBytes: number;
  /** A write failed: the file must be cut back to `diskBytes` before the next append. */
  dirty: boolean;
  records: number;
  /** Inflated NDJSON bytes of all its records. */
  payloadBytes: number;
  firstMs: number | null;
  /** Frames not yet written; the first `writing` of them are being written right now. */
  buffer: Buffer[];
  writing: number;
  closed: boolean;
}

export function newSegment(segmentsDir: string, n: number): Segment {
  return {
    n,
    path: path.join(segmentsDir, segmentFileName(n)),
    handle: null,
    diskBytes: 0,
    dirty: false,
    records: 0,
    payloadBytes: 0,
    firstMs: null,
    buffer: [],
    writing: 0,
    closed: false,
  };
}

/** Appends and fsyncs the segment's buffered frames; returns the buffered bytes now on disk. */
export async function appendBuffered(fs: SpoolFs, segment: Segment): Promise<number> {
  const count = segment.buffer.length;
  segment.writing = count;
  try {
    if (!segment.handle) {
      // Never append after a half-written frame: it would hide every later record from the scan.
      if (segment.dirty) await fs.truncate(segment.path, segment.diskBytes);
      segment.handle = await fs.open(segment.path, "a", 0o640);
      segment.dirty = false;
    }
    const frames = segment.buffer.slice(0, count);
    const data = Buffer.concat(segment.diskBytes === 0 ? [SEGMENT_MAGIC, ...frames] : frames);
    try {
      await segment.handle.appendFile(data);
      await segment.handle.datasync();
    } catch (error) {
      segment.dirty = true;
      await segment.handle.close().catch(() => undefined);
      segment.handle = null;
      throw error;
    }
    segment.diskBytes += data.length;
    const written = segment.buffer.splice(0, count);
    return written.reduce((sum, frame) => sum + frame.length, 0);
  } finally {
    segment.writing = 0;
  }
}

/**
 * Seals a closed, fully written segment: packs its records into chunk files, commits them with
 * `meta.json` (`nextSeq` and `sealedSegment` in one write). Returns the committed chunks (none for
 * an empty segment); the caller indexes them, then deletes the segment file.
 */
export async function sealSegmentFile(
  ctx: Omit<ChunkFateContext, "index">,
  segment: Segment,
  limits: ChunkLimits,
  nowMs: number,
): Promise<ChunkInfo[]> {
  const { fs, dirs, journal } = ctx;
  if (segment.handle) {
    await segment.handle.close();
    segment.handle = null;
  }
  const payloads =
    segment.diskBytes > 0
      ? scanSegment((await fs.readFile(segment.path)).subarray(0, segment.diskBytes)).payloads
      : [];
  const sealed: ChunkInfo[] = [];
  if (payloads.length > 0) {
    const bodies = await packChunks(payloads, limits, segment.firstMs ?? nowMs);
    const { epoch, nextSeq: firstSeq } = journal.meta();
    for (const [i, body] of bodies.entries()) {
      const info = { epoch, seq: firstSeq + i, records: body.records, oldestMs: body.oldestMs };
      const file = chunkFileName(info);
      await writeFileAtomic(fs, path.join(dirs.sealed, file), body.gz);
      sealed.push({ ...info, file, bytes: body.gz.length });
    }
    await syncDir(fs, dirs.sealed);
    // The commit point: from here the chunks exist and the segment counts as sealed.
    await journal.saveMeta({ nextSeq: firstSeq + bodies.length, sealedSegment: segment.n });
    ctx.events.emit("spool.sealed", {
      level: "debug",
      chunks: sealed.map(chunkId),
      records: payloads.length,
    });
  }
  return sealed;
}
