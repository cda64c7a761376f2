// Segments: the append-only files records wait in until they are sealed into chunks.
import type { FileHandle } from "node:fs/promises";
import path from "node:path";
import type { ChunkFateContext } from "./chunk-fate";
import { type ChunkInfo, chunkFileName, chunkId, segmentFileName } from "./chunk-name";
import { FRAME_HEADER_BYTES, SEGMENT_MAGIC, scanSegment } from "./frame";
import { type ChunkLimits, packChunks, packNdjson } from "./seal";
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
  /** Monotonic time of its first record: the age seal is measured on it, not on the wall clock. */
  firstMono: number | null;
  /**
   * Frames not yet written, as runs of consecutive frames (slices of the writer's slab, not one
   * Buffer per record); the first `writing` runs are being written right now.
   */
  buffer: Buffer[];
  /** The run the next adjacent frame extends; moved into `buffer` when a write takes it. */
  tail: FrameRun | null;
  writing: number;
  /**
   * The NDJSON of every record of the segment, written or not, so the seal never re-reads and
   * re-checks what it just wrote. Null when it is not the segment's exact content (a recovered
   * segment, records shed, a seal that failed): the seal then reads the segment file.
   */
  lines: LineBuffer | null;
  closed: boolean;
}

interface FrameRun {
  slab: Buffer;
  start: number;
  end: number;
}

interface LineBuffer {
  bytes: Buffer;
  used: number;
}

const FIRST_LINES_BYTES = 64 * 1024;

/**
 * `linesBytes`: room for the NDJSON up front; the caller passes about what the previous segment
 * needed, so a busy spool does not copy a growing buffer over and over on the event loop.
 */
export function newSegment(segmentsDir: string, n: number, linesBytes = FIRST_LINES_BYTES): Segment {
  return {
    n,
    path: path.join(segmentsDir, segmentFileName(n)),
    handle: null,
    diskBytes: 0,
    dirty: false,
    records: 0,
    payloadBytes: 0,
    firstMs: null,
    firstMono: null,
    buffer: [],
    tail: null,
    writing: 0,
    lines: { bytes: Buffer.allocUnsafe(Math.max(FIRST_LINES_BYTES, linesBytes)), used: 0 },
    closed: false,
  };
}

/**
 * Adds the frame at `slab[start, end)`. Hot path (once per proxied request): a frame right after
 * the previous one only extends the current run, and the payload is copied once into the lines.
 */
export function addFrame(segment: Segment, slab: Buffer, start: number, end: number): void {
  const tail = segment.tail;
  if (tail !== null && tail.slab === slab && tail.end === start) {
    tail.end = end;
  } else {
    if (tail !== null) segment.buffer.push(tail.slab.subarray(tail.start, tail.end));
    segment.tail = { slab, start, end };
  }
  const lines = segment.lines;
  if (lines === null) return;
  const lineBytes = end - start - FRAME_HEADER_BYTES + 1;
  if (lines.used + lineBytes > lines.bytes.length) {
    const grown = Buffer.allocUnsafe(Math.max(lines.bytes.length * 2, lines.used + lineBytes));
    lines.bytes.copy(grown, 0, 0, lines.used);
    lines.bytes = grown;
  }
  slab.copy(lines.bytes, lines.used, start + FRAME_HEADER_BYTES, end);
  lines.bytes[lines.used + lineBytes - 1] = 0x0a;
  lines.used += lineBytes;
}

function takeTail(segment: Segment): void {
  const tail = segment.tail;
  if (tail === null) return;
  segment.buffer.push(tail.slab.subarray(tail.start, tail.end));
  segment.tail = null;
}

export function hasBuffered(segment: Segment): boolean {
  return segment.tail !== null || segment.buffer.length > 0;
}

/**
 * Drops the oldest frame not being written (the disk is not keeping up); returns its bytes, 0 when
 * there is none. The in-memory lines no longer match the segment, so its seal will read the file.
 */
export function dropOldestUnwritten(segment: Segment): number {
  takeTail(segment);
  const run = segment.buffer[segment.writing];
  if (run === undefined) return 0;
  const bytes = FRAME_HEADER_BYTES + run.readUInt32LE(0);
  if (bytes >= run.length) segment.buffer.splice(segment.writing, 1);
  else segment.buffer[segment.writing] = run.subarray(bytes);
  segment.records--;
  segment.payloadBytes -= bytes - FRAME_HEADER_BYTES + 1;
  segment.lines = null;
  return bytes;
}

/** Appends and fsyncs the segment's buffered frames as one write; returns the buffered bytes now on disk. */
export async function appendBuffered(fs: SpoolFs, segment: Segment): Promise<number> {
  takeTail(segment);
  const count = segment.buffer.length;
  segment.writing = count;
  try {
    if (!segment.handle) {
      // Never append after a half-written frame: it would hide every later record from the scan.
      if (segment.dirty) await fs.truncate(segment.path, segment.diskBytes);
      segment.handle = await fs.open(segment.path, "a", 0o640);
      segment.dirty = false;
    }
    const runs = segment.buffer.slice(0, count);
    const data = Buffer.concat(segment.diskBytes === 0 ? [SEGMENT_MAGIC, ...runs] : runs);
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
    return written.reduce((sum, run) => sum + run.length, 0);
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
  const sealed: ChunkInfo[] = [];
  const records = await segmentRecords(fs, segment);
  if (records.count > 0) {
    const fallbackMs = segment.firstMs ?? nowMs;
    const bodies =
      "ndjson" in records
        ? await packNdjson(records.ndjson, records.count, limits, fallbackMs)
        : await packChunks(records.payloads, limits, fallbackMs);
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
      records: records.count,
    });
  }
  return sealed;
}

/**
 * A written segment's records: its NDJSON from memory when that matches what is on disk (the normal
 * case), else the payloads of the file's checked frames (after a restart, or when memory was let go).
 */
async function segmentRecords(
  fs: SpoolFs,
  segment: Segment,
): Promise<{ count: number; ndjson: Buffer } | { count: number; payloads: Buffer[] }> {
  const lines = segment.lines;
  if (lines !== null && lines.used === segment.payloadBytes && !hasBuffered(segment)) {
    return { count: segment.records, ndjson: lines.bytes.subarray(0, lines.used) };
  }
  if (segment.diskBytes === 0) return { count: 0, payloads: [] };
  const { payloads } = scanSegment((await fs.readFile(segment.path)).subarray(0, segment.diskBytes));
  return { count: payloads.length, payloads };
}
