// The disk spool: the proxy's access-log sink (write(), once per request, into a shared slab) and
// the uploader's chunk store (takeNext/ack/quarantine/split) over segment files with a journal.
// One file past 300 lines because it is one class whose serialised I/O queue, buffered bytes and
// quota accounting all guard the same on-disk state; the pieces without that state already live
// beside it (segment.ts, chunk-index.ts, chunk-fate.ts, settings.ts, spool-fs.ts). docs/spool.md.
import * as nodeFs from "node:fs/promises";
import path from "node:path";
import type { LogRecord, SpoolFigures } from "../../protocol/wire";
import { monotonicNow } from "../clock";
import type { AccessLogSink, Clock, EventLogger } from "../ports";
import { type ChunkFateContext, quarantineChunk, splitChunk, writeFirstHalf } from "./chunk-fate";
import { ChunkIndex } from "./chunk-index";
import { type ChunkInfo, chunkId } from "./chunk-name";
import type { ChunkStore } from "./chunk-store";
import { crc32, FRAME_HEADER_BYTES, MAX_RECORD_BYTES } from "./frame";
import { type SpoolJournal, type SpoolMeta, writeMeta } from "./meta";
import { enforceQuota } from "./quota";
import { recoverSpool, type SpoolDirs, spoolDirs } from "./recover";
import {
  addFrame,
  appendBuffered,
  dropOldestUnwritten,
  hasBuffered,
  newSegment,
  type Segment,
  sealSegmentFile,
} from "./segment";
import { resolveSpoolSettings, type SpoolSettings } from "./settings";
import { type SpoolFs, unlinkIfExists } from "./spool-fs";

export interface DiskSpoolOptions {
  /** `<stateDir>/spool`. */
  dir: string;
  fs?: SpoolFs;
  clock: Clock;
  random: () => number;
  events?: EventLogger;
  settings?: Partial<SpoolSettings>;
}

type State = "open" | "closed" | "killed";

// write() runs once per proxied request: frames are cut from a shared slab (one allocation per
// ~1,000 records instead of two Buffers per record), the same bytes encodeFrame() makes, and
// consecutive frames stay one run of the slab, so a sync appends a few runs, not one Buffer each.
const SLAB_BYTES = 256 * 1024;
let slab = Buffer.allocUnsafe(SLAB_BYTES);
let slabUsed = 0;

/** Frames the record at the end of the slab; the frame is `slab[start, slabUsed)`. */
function frameRecord(json: string): number {
  const most = FRAME_HEADER_BYTES + json.length * 3;
  if (slabUsed + most > slab.length) {
    slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, most));
    slabUsed = 0;
  }
  const start = slabUsed;
  const length = slab.write(json, start + FRAME_HEADER_BYTES, "utf8");
  slab.writeUInt32LE(length, start);
  const end = start + FRAME_HEADER_BYTES + length;
  const crc = crc32(slab.subarray(start + FRAME_HEADER_BYTES, end), crc32(slab.subarray(start, start + 4)));
  slab.writeUInt32LE(crc, start + 4);
  slabUsed = end;
  return start;
}
const noEvents: EventLogger = { emit: () => undefined };

/**
 * The durable access-log spool. `write()` only frames the record into memory; a timer appends and
 * fsyncs every `syncIntervalMs`, seals full or old segments into immutable gzip chunks committed by
 * `meta.json`, and keeps the disk under quota by dropping (and counting) the oldest chunks.
 * Every disk mutation runs through one queue, so the on-disk state moves between consistent points.
 */
export class DiskSpool implements AccessLogSink, ChunkStore {
  readonly settings: SpoolSettings;
  private readonly fs: SpoolFs;
  private readonly clock: Clock;
  private readonly events: EventLogger;
  private readonly dirs: SpoolDirs;
  private meta!: SpoolMeta;
  private readonly journal: SpoolJournal = {
    meta: () => this.meta,
    saveMeta: (change, addDropped) => this.saveMeta(change, addDropped),
    dropsDeleted: () => {
      this.meta = { ...this.meta, dropping: [] };
    },
  };
  private unsavedDrops = 0;
  private index = new ChunkIndex();
  private segments: Segment[] = [];
  private bufferedBytes = 0;
  private io: Promise<void> = Promise.resolve();
  private state: State = "open";
  private readonly timerStop = new AbortController();
  private ticking: Promise<void> | null = null;
  private readonly listeners: (() => void)[] = [];
  private readonly figureListeners: (() => void)[] = [];
  private failing: string | null = null;
  /** Sealed (committed) segments whose file could not be deleted yet; never sealed again. */
  private readonly staleSegments = new Set<string>();
  private shedding = false;

  private constructor(options: DiskSpoolOptions) {
    this.settings = resolveSpoolSettings(options.settings);
    this.fs = options.fs ?? nodeFs;
    this.clock = options.clock;
    this.events = options.events ?? noEvents;
    this.dirs = spoolDirs(options.dir);
  }

  /** Opens (or creates) the spool, finishes whatever a crash interrupted and seals what it left. */
  static async open(options: DiskSpoolOptions): Promise<DiskSpool> {
    const spool = new DiskSpool(options);
    const recovered = await recoverSpool({
      fs: spool.fs,
      dirs: spool.dirs,
      now: spool.clock.now(),
      random: options.random,
      events: spool.events,
      resealFirstHalf: (original, records) => writeFirstHalf(spool.chunkContext(), original, records),
    });
    spool.meta = recovered.meta;
    spool.index = new ChunkIndex(recovered.chunks, recovered.quarantined);
    spool.segments = recovered.segments;
    spool.segments.push(newSegment(spool.dirs.segments, recovered.nextSegment));
    await spool.serial(() => spool.flushNow());
    return spool;
  }

  /** Starts the sync timer (production); tests may drive `flush()` by hand instead. */
  start(): void {
    this.ticking ??= this.tick();
  }

  write(record: LogRecord): void {
    if (this.state !== "open") {
      this.countDrop(1);
      return;
    }
    const start = frameRecord(JSON.stringify(record));
    const frameLength = slabUsed - start;
    const payloadLength = frameLength - FRAME_HEADER_BYTES;
    if (payloadLength > MAX_RECORD_BYTES) {
      slabUsed = start;
      this.countDrop(1);
      this.events.emit("spool.record_too_large", { level: "warn", bytes: payloadLength });
      return;
    }
    let segment = this.active();
    const full =
      segment.records >= this.settings.maxChunkRecords ||
      segment.payloadBytes + payloadLength + 1 > this.settings.maxChunkBytes;
    if (segment.records > 0 && full) segment = this.rotate();
    addFrame(segment, slab, start, slabUsed);
    segment.records++;
    segment.payloadBytes += payloadLength + 1;
    segment.firstMs ??= this.clock.now();
    segment.firstMono ??= monotonicNow(this.clock);
    this.bufferedBytes += frameLength;
    if (this.bufferedBytes > this.settings.maxBufferedBytes) this.shedBuffered();
  }

  /** Writes and fsyncs buffered records, seals what is due, enforces the quota. */
  flush(): Promise<void> {
    return this.serial(() => this.flushNow());
  }

  /** Seals the active segment now, whatever its size or age (shutdown, tests). */
  sealNow(): Promise<void> {
    return this.serial(async () => {
      if (this.active().records > 0) this.rotate();
      await this.flushNow();
    });
  }

  /** Stops the timer, syncs and seals everything; later writes are counted as dropped. */
  async close(): Promise<void> {
    if (this.state !== "open") return;
    this.timerStop.abort();
    await this.ticking;
    await this.sealNow();
    this.state = "closed";
  }

  /** Test hook for a crash: stops at the current disk operation and forgets everything in memory. */
  async kill(): Promise<void> {
    this.state = "killed";
    this.timerStop.abort();
    await this.io;
    for (const segment of this.segments) await segment.handle?.close().catch(() => undefined);
  }

  figures(): SpoolFigures {
    let oldest = Number.POSITIVE_INFINITY;
    let pendingBytes = 0;
    for (const chunk of this.index.pending()) {
      pendingBytes += chunk.bytes;
      oldest = Math.min(oldest, chunk.oldestMs);
    }
    for (const segment of this.segments) {
      pendingBytes += segment.diskBytes;
      if (segment.records > 0 && segment.firstMs !== null) oldest = Math.min(oldest, segment.firstMs);
    }
    return {
      pendingChunks: this.index.pendingCount(),
      pendingBytes,
      oldestPendingAt: Number.isFinite(oldest) ? new Date(oldest).toISOString() : null,
      droppedRecords: this.meta.droppedRecords + this.unsavedDrops,
      quarantinedChunks: this.index.quarantined.length,
    };
  }

  /** Records not yet delivered: in pending chunks and in segments not sealed yet (metrics). */
  pendingRecords(): number {
    let records = 0;
    for (const chunk of this.index.pending()) records += chunk.records;
    for (const segment of this.segments) records += segment.records;
    return records;
  }

  /** The current epoch (changes only when the spool directory is recreated). */
  get epoch(): string {
    return this.meta.epoch;
  }

  // ---- ChunkStore (the uploader's side) ----

  takeNext(): ChunkInfo | null {
    return this.index.takeNext();
  }

  release(chunk: ChunkInfo): void {
    this.index.release(chunk);
  }

  async readChunk(chunk: ChunkInfo): Promise<Uint8Array> {
    return this.fs.readFile(path.join(this.dirs.sealed, chunk.file));
  }

  ack(chunk: ChunkInfo): Promise<void> {
    return this.serial(async () => {
      // No directory sync: if the unlink is lost in a crash, the re-upload is answered "duplicate".
      await unlinkIfExists(this.fs, path.join(this.dirs.sealed, chunk.file));
      this.index.forget(chunk);
      this.notify(this.figureListeners);
    });
  }

  quarantine(chunk: ChunkInfo, reason: string): Promise<void> {
    return this.serial(async () => {
      await quarantineChunk(this.chunkContext(), chunk, reason);
      this.notify(this.figureListeners);
    });
  }

  setAside(chunk: ChunkInfo, reason: string): Promise<void> {
    return this.serial(async () => {
      try {
        await quarantineChunk(this.chunkContext(), chunk, reason);
      } catch (error) {
        // Not even movable, or gone: out of the upload order until the next start looks again.
        this.index.forget(chunk);
        const gone = (error as NodeJS.ErrnoException).code === "ENOENT";
        if (gone) this.countDrop(chunk.records);
        this.events.emit("spool.chunk_skipped", {
          level: "error",
          chunk: chunkId(chunk),
          records: chunk.records,
          reason,
          error: (error as Error).message,
          ...(gone ? { dropped: chunk.records } : {}),
        });
      }
      this.notify(this.figureListeners);
    });
  }

  split(chunk: ChunkInfo): Promise<void> {
    return this.serial(async () => {
      const split = await splitChunk(this.chunkContext(), chunk);
      if (split) this.notify(this.listeners);
      this.notify(this.figureListeners);
    });
  }

  pendingCount(): number {
    return this.index.pendingCount();
  }

  onChunks(listener: () => void): void {
    this.listeners.push(listener);
  }

  /**
   * Called after the figures may have changed (chunks sealed, acked, quarantined, split or dropped);
   * from the disk queue, never from `write()`, so at most about once per sync interval or upload.
   */
  onFiguresChange(listener: () => void): void {
    this.figureListeners.push(listener);
  }

  // ---- internals ----

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.io.then(() => (this.state === "killed" ? (undefined as T) : op()));
    this.io = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async tick(): Promise<void> {
    const signal = this.timerStop.signal;
    while (!signal.aborted) {
      await this.clock.sleep(this.settings.syncIntervalMs, signal);
      if (signal.aborted) break;
      await this.flush().catch((error: unknown) => this.reportFailure("flush", error));
    }
  }

  private active(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  private rotate(): Segment {
    const current = this.active();
    current.closed = true;
    // Sized for a segment like this one (the chunk limit at most), so it rarely grows.
    const linesBytes = Math.min(current.payloadBytes, this.settings.maxChunkBytes);
    const next = newSegment(this.dirs.segments, current.n + 1, linesBytes);
    this.segments.push(next);
    return next;
  }

  private countDrop(records: number): void {
    this.unsavedDrops += records;
  }

  /** The disk stopped keeping up: drop the oldest records not already being written, counted. */
  private shedBuffered(): void {
    const target = this.settings.maxBufferedBytes * 0.9;
    let dropped = 0;
    for (const segment of this.segments) {
      while (this.bufferedBytes > target) {
        const bytes = dropOldestUnwritten(segment);
        if (bytes === 0) break;
        this.bufferedBytes -= bytes;
        dropped++;
      }
    }
    this.countDrop(dropped);
    if (!this.shedding) {
      this.shedding = true;
      this.events.emit("spool.buffer_full", {
        level: "error",
        message: "the disk is not keeping up: dropping the oldest unsynced records",
        dropped,
      });
    }
  }

  private async flushNow(): Promise<void> {
    for (const segment of this.segments) {
      if (!hasBuffered(segment)) continue;
      try {
        await this.appendBuffered(segment);
        this.recovered();
      } catch (error) {
        this.reportFailure("write", error);
      }
    }
    if (this.bufferedBytes <= this.settings.maxBufferedBytes * 0.5) this.shedding = false;
    const active = this.active();
    if (
      active.firstMono !== null &&
      monotonicNow(this.clock) - active.firstMono >= this.settings.maxChunkAgeMs
    ) {
      this.rotate();
    }
    for (const file of this.staleSegments) await this.unlinkSealedSegment(file);
    while (this.segments[0]?.closed) {
      try {
        await this.sealSegment(this.segments[0]);
      } catch (error) {
        // Keep order: a later segment is never sealed before an earlier one.
        this.reportFailure("seal", error);
        break;
      }
    }
    // Segments left waiting by a failed seal let go of their lines (memory stays bounded while the
    // disk fails); their records are on disk, and the retry reads the file.
    for (const segment of this.segments) if (segment.closed) segment.lines = null;
    const segmentBytes = this.segments.reduce((sum, segment) => sum + segment.diskBytes, 0);
    const quotaDrops = await enforceQuota(this.chunkContext(), segmentBytes, this.settings.quotaBytes);
    const savedDrops = this.unsavedDrops;
    if (savedDrops > 0) await this.saveMeta({});
    if (quotaDrops > 0 || savedDrops > 0) this.notify(this.figureListeners);
  }

  private async appendBuffered(segment: Segment): Promise<void> {
    this.bufferedBytes -= await appendBuffered(this.fs, segment);
  }

  private async sealSegment(segment: Segment): Promise<void> {
    if (hasBuffered(segment)) await this.appendBuffered(segment);
    const sealed = await sealSegmentFile(
      this.chunkContext(),
      segment,
      {
        maxRecords: this.settings.maxChunkRecords,
        maxInflatedBytes: this.settings.maxChunkBytes,
        maxGzipBytes: this.settings.maxChunkGzipBytes,
      },
      this.clock.now(),
    );
    // Committed: the segment is done whatever happens to its file. Dropped from the list before the
    // unlink, so a failed unlink cannot make the next flush seal the same records a second time.
    this.index.addPending(...sealed);
    this.segments.shift();
    if (sealed.length > 0) {
      this.notify(this.listeners);
      this.notify(this.figureListeners);
    }
    await this.unlinkSealedSegment(segment.path);
  }

  /** A sealed segment's file; one whose unlink failed is retried on the next flush (and at start). */
  private async unlinkSealedSegment(file: string): Promise<void> {
    try {
      await unlinkIfExists(this.fs, file);
      this.staleSegments.delete(file);
    } catch (error) {
      this.staleSegments.add(file);
      this.reportFailure("segment_unlink", error);
    }
  }

  private chunkContext(): ChunkFateContext {
    return { fs: this.fs, dirs: this.dirs, events: this.events, journal: this.journal, index: this.index };
  }

  private notify(listeners: (() => void)[]): void {
    for (const listener of listeners) listener();
  }

  private async saveMeta(change: Partial<SpoolMeta>, addDropped = 0): Promise<void> {
    const drops = this.unsavedDrops;
    const next = { ...this.meta, ...change, droppedRecords: this.meta.droppedRecords + drops + addDropped };
    await writeMeta(this.fs, this.dirs.root, next);
    this.meta = next;
    this.unsavedDrops -= drops;
  }

  private reportFailure(what: string, error: unknown): void {
    const message = (error as Error)?.message ?? String(error);
    if (this.failing === message) return;
    this.failing = message;
    this.events.emit(`spool.${what}_failed`, { level: "error", error: message });
  }

  private recovered(): void {
    if (this.failing === null) return;
    this.failing = null;
    this.events.emit("spool.write_recovered", {});
  }
}
