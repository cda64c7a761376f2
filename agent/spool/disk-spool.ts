import type { FileHandle } from "node:fs/promises";
import * as nodeFs from "node:fs/promises";
import path from "node:path";
import type { LogRecord, SpoolFigures } from "../../protocol/wire";
import type { AccessLogSink, EventLogger } from "../proxy/types";
import type { Clock } from "../sync/types";
import { type ChunkInfo, chunkFileName, chunkId, compareChunks, segmentFileName } from "./chunk-name";
import type { ChunkStore } from "./chunk-store";
import { encodeFrame, MAX_RECORD_BYTES, SEGMENT_MAGIC, scanSegment } from "./frame";
import { type SpoolMeta, writeMeta } from "./meta";
import { recoverSpool, type SpoolDirs, spoolDirs } from "./recover";
import { gzipLines, oldestOf, packChunks, readLines } from "./seal";
import { resolveSpoolSettings, type SpoolSettings } from "./settings";
import { type SpoolFs, syncDir, unlinkIfExists, writeFileAtomic } from "./spool-fs";

export interface DiskSpoolOptions {
  /** `<stateDir>/spool`. */
  dir: string;
  fs?: SpoolFs;
  clock: Clock;
  random: () => number;
  events?: EventLogger;
  settings?: Partial<SpoolSettings>;
}

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

type State = "open" | "closed" | "killed";
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
  private unsavedDrops = 0;
  private chunks: ChunkInfo[] = [];
  private chunksSorted = true;
  private readonly inflight = new Set<string>();
  private quarantined: ChunkInfo[] = [];
  private segments: Segment[] = [];
  private bufferedBytes = 0;
  private io: Promise<void> = Promise.resolve();
  private state: State = "open";
  private readonly timerStop = new AbortController();
  private ticking: Promise<void> | null = null;
  private readonly listeners: (() => void)[] = [];
  private failing: string | null = null;
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
      resealFirstHalf: (original, records) => spool.firstHalfOf(original, records),
    });
    spool.meta = recovered.meta;
    spool.chunks = recovered.chunks;
    spool.chunksSorted = false;
    spool.quarantined = recovered.quarantined;
    spool.segments = recovered.segments;
    spool.segments.push(spool.newSegment(recovered.nextSegment));
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
    const payload = Buffer.from(JSON.stringify(record));
    if (payload.length > MAX_RECORD_BYTES) {
      this.countDrop(1);
      this.events.emit("spool.record_too_large", { level: "warn", bytes: payload.length });
      return;
    }
    let segment = this.active();
    const full =
      segment.records >= this.settings.maxChunkRecords ||
      segment.payloadBytes + payload.length + 1 > this.settings.maxChunkBytes;
    if (segment.records > 0 && full) segment = this.rotate();
    const frame = encodeFrame(payload);
    segment.buffer.push(frame);
    segment.records++;
    segment.payloadBytes += payload.length + 1;
    segment.firstMs ??= this.clock.now();
    this.bufferedBytes += frame.length;
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
    for (const chunk of this.chunks) {
      pendingBytes += chunk.bytes;
      oldest = Math.min(oldest, chunk.oldestMs);
    }
    for (const segment of this.segments) {
      pendingBytes += segment.diskBytes;
      if (segment.records > 0 && segment.firstMs !== null) oldest = Math.min(oldest, segment.firstMs);
    }
    return {
      pendingChunks: this.chunks.length,
      pendingBytes,
      oldestPendingAt: Number.isFinite(oldest) ? new Date(oldest).toISOString() : null,
      droppedRecords: this.meta.droppedRecords + this.unsavedDrops,
      quarantinedChunks: this.quarantined.length,
    };
  }

  /** The current epoch (changes only when the spool directory is recreated). */
  get epoch(): string {
    return this.meta.epoch;
  }

  // ---- ChunkStore (the uploader's side) ----

  takeNext(): ChunkInfo | null {
    if (!this.chunksSorted) {
      this.chunks.sort(compareChunks);
      this.chunksSorted = true;
    }
    const next = this.chunks.find((chunk) => !this.inflight.has(chunk.file)) ?? null;
    if (next) this.inflight.add(next.file);
    return next;
  }

  release(chunk: ChunkInfo): void {
    this.inflight.delete(chunk.file);
  }

  async readChunk(chunk: ChunkInfo): Promise<Uint8Array> {
    return this.fs.readFile(path.join(this.dirs.sealed, chunk.file));
  }

  ack(chunk: ChunkInfo): Promise<void> {
    return this.serial(async () => {
      // No directory sync: if the unlink is lost in a crash, the re-upload is answered "duplicate".
      await unlinkIfExists(this.fs, path.join(this.dirs.sealed, chunk.file));
      this.forget(chunk);
    });
  }

  quarantine(chunk: ChunkInfo, reason: string): Promise<void> {
    return this.serial(() => this.quarantineNow(chunk, reason));
  }

  split(chunk: ChunkInfo): Promise<void> {
    return this.serial(() => this.splitNow(chunk));
  }

  pendingCount(): number {
    return this.chunks.length;
  }

  onChunks(listener: () => void): void {
    this.listeners.push(listener);
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

  private newSegment(n: number): Segment {
    return {
      n,
      path: path.join(this.dirs.segments, segmentFileName(n)),
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

  private rotate(): Segment {
    const current = this.active();
    current.closed = true;
    const next = this.newSegment(current.n + 1);
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
      while (this.bufferedBytes > target && segment.buffer.length > segment.writing) {
        const [frame] = segment.buffer.splice(segment.writing, 1);
        this.bufferedBytes -= frame!.length;
        segment.records--;
        segment.payloadBytes -= frame!.length - 8 + 1;
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
      if (segment.buffer.length === 0) continue;
      try {
        await this.appendBuffered(segment);
        this.recovered();
      } catch (error) {
        this.reportFailure("write", error);
      }
    }
    if (this.bufferedBytes <= this.settings.maxBufferedBytes * 0.5) this.shedding = false;
    const active = this.active();
    if (active.firstMs !== null && this.clock.now() - active.firstMs >= this.settings.maxChunkAgeMs) {
      this.rotate();
    }
    while (this.segments[0]?.closed) {
      try {
        await this.sealSegment(this.segments[0]);
      } catch (error) {
        // Keep order: a later segment is never sealed before an earlier one.
        this.reportFailure("seal", error);
        break;
      }
    }
    await this.enforceQuota();
    if (this.unsavedDrops > 0) await this.saveMeta({});
  }

  private async appendBuffered(segment: Segment): Promise<void> {
    const count = segment.buffer.length;
    segment.writing = count;
    try {
      if (!segment.handle) {
        // Never append after a half-written frame: it would hide every later record from the scan.
        if (segment.dirty) await this.fs.truncate(segment.path, segment.diskBytes);
        segment.handle = await this.fs.open(segment.path, "a", 0o640);
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
      for (const frame of written) this.bufferedBytes -= frame.length;
    } finally {
      segment.writing = 0;
    }
  }

  private async sealSegment(segment: Segment): Promise<void> {
    if (segment.buffer.length > 0) await this.appendBuffered(segment);
    if (segment.handle) {
      await segment.handle.close();
      segment.handle = null;
    }
    const payloads =
      segment.diskBytes > 0
        ? scanSegment((await this.fs.readFile(segment.path)).subarray(0, segment.diskBytes)).payloads
        : [];
    if (payloads.length > 0) {
      const bodies = await packChunks(
        payloads,
        {
          maxRecords: this.settings.maxChunkRecords,
          maxInflatedBytes: this.settings.maxChunkBytes,
          maxGzipBytes: this.settings.maxChunkGzipBytes,
        },
        segment.firstMs ?? this.clock.now(),
      );
      const firstSeq = this.meta.nextSeq;
      const sealed: ChunkInfo[] = [];
      for (const [i, body] of bodies.entries()) {
        const info = {
          epoch: this.meta.epoch,
          seq: firstSeq + i,
          records: body.records,
          oldestMs: body.oldestMs,
        };
        const file = chunkFileName(info);
        await writeFileAtomic(this.fs, path.join(this.dirs.sealed, file), body.gz);
        sealed.push({ ...info, file, bytes: body.gz.length });
      }
      await syncDir(this.fs, this.dirs.sealed);
      // The commit point: from here the chunks exist and the segment counts as sealed.
      await this.saveMeta({ nextSeq: firstSeq + bodies.length, sealedSegment: segment.n });
      this.chunks.push(...sealed);
      this.chunksSorted = false;
      this.events.emit("spool.sealed", {
        level: "debug",
        chunks: sealed.map(chunkId),
        records: payloads.length,
      });
    }
    await unlinkIfExists(this.fs, segment.path);
    this.segments.shift();
    if (payloads.length > 0) for (const listener of this.listeners) listener();
  }

  private diskUsage(): number {
    let bytes = 0;
    for (const chunk of this.chunks) bytes += chunk.bytes;
    for (const chunk of this.quarantined) bytes += chunk.bytes;
    for (const segment of this.segments) bytes += segment.diskBytes;
    return bytes;
  }

  /** Over quota: drop quarantined chunks first, then the oldest pending ones; every record counted. */
  private async enforceQuota(): Promise<void> {
    let usage = this.diskUsage();
    if (usage <= this.settings.quotaBytes) return;
    if (!this.chunksSorted) {
      this.chunks.sort(compareChunks);
      this.chunksSorted = true;
    }
    const victims: { chunk: ChunkInfo; dir: string }[] = [];
    for (const chunk of this.quarantined) {
      if (usage <= this.settings.quotaBytes) break;
      victims.push({ chunk, dir: this.dirs.quarantine });
      usage -= chunk.bytes;
    }
    for (const chunk of this.chunks) {
      if (usage <= this.settings.quotaBytes) break;
      // A chunk on its way to the master may be accepted there: it is not dropped (nor counted).
      if (this.inflight.has(chunk.file)) continue;
      victims.push({ chunk, dir: this.dirs.sealed });
      usage -= chunk.bytes;
    }
    if (victims.length === 0) return;
    const records = victims.reduce((sum, v) => sum + v.chunk.records, 0);
    // Counted and journaled before deleting: a crash in between finishes the deletes, never recounts.
    await this.saveMeta({ dropping: victims.map((v) => v.chunk.file) }, records);
    for (const { chunk, dir } of victims) {
      await unlinkIfExists(this.fs, path.join(dir, chunk.file));
      this.forget(chunk);
      this.quarantined = this.quarantined.filter((q) => q.file !== chunk.file);
    }
    this.meta = { ...this.meta, dropping: [] };
    this.events.emit("spool.dropped", {
      level: "error",
      reason: "disk quota",
      quotaBytes: this.settings.quotaBytes,
      chunks: victims.map((v) => chunkId(v.chunk)),
      records,
      droppedTotal: this.meta.droppedRecords,
    });
  }

  private async quarantineNow(chunk: ChunkInfo, reason: string): Promise<void> {
    await this.fs.rename(
      path.join(this.dirs.sealed, chunk.file),
      path.join(this.dirs.quarantine, chunk.file),
    );
    await syncDir(this.fs, this.dirs.quarantine);
    await syncDir(this.fs, this.dirs.sealed);
    this.forget(chunk);
    this.quarantined.push(chunk);
    this.events.emit("spool.quarantined", {
      level: "error",
      chunk: chunkId(chunk),
      records: chunk.records,
      reason,
      file: path.join(this.dirs.quarantine, chunk.file),
    });
  }

  /**
   * 413: the first half keeps the chunk's id (the master refused it, so it has nothing under that id),
   * the second half takes the next fresh seq — a split consumes exactly one seq and leaves no gap.
   */
  private async splitNow(chunk: ChunkInfo): Promise<void> {
    const lines = await readLines(Buffer.from(await this.readChunk(chunk)));
    if (lines.length < 2) return this.quarantineNow(chunk, "master refused it as too large (413)");
    const half = Math.ceil(lines.length / 2);
    const secondLines = lines.slice(half);
    const second = {
      epoch: this.meta.epoch,
      seq: this.meta.nextSeq,
      records: secondLines.length,
      oldestMs: oldestOf(secondLines, chunk.oldestMs),
    };
    const secondGz = await gzipLines(secondLines);
    const secondFile = chunkFileName(second);
    await writeFileAtomic(this.fs, path.join(this.dirs.sealed, secondFile), secondGz);
    await syncDir(this.fs, this.dirs.sealed);
    const firstFile = chunkFileName({ ...chunk, records: half });
    await this.saveMeta({ nextSeq: second.seq + 1, split: { original: chunk.file, firstHalf: firstFile } });
    const firstBytes = await this.firstHalfOf(chunk.file, half, lines);
    await this.saveMeta({ split: null });
    this.forget(chunk);
    this.chunks.push(
      { ...chunk, records: half, file: firstFile, bytes: firstBytes },
      { ...second, file: secondFile, bytes: secondGz.length },
    );
    this.chunksSorted = false;
    this.events.emit("spool.split", {
      level: "warn",
      chunk: chunkId(chunk),
      records: lines.length,
      into: [chunkId(chunk), chunkId(second)],
    });
    for (const listener of this.listeners) listener();
  }

  /** Writes the first half of `original` under its new name and deletes the original (split, and its recovery). */
  private async firstHalfOf(original: string, half: number, lines?: Buffer[]): Promise<number> {
    const originalPath = path.join(this.dirs.sealed, original);
    const all = lines ?? (await readLines(await this.fs.readFile(originalPath)));
    const parsed = /^(.*)\.r\d+\.(t\d+\.ndjson\.gz)$/.exec(original);
    const firstFile = parsed ? `${parsed[1]}.r${half}.${parsed[2]}` : original;
    const gz = await gzipLines(all.slice(0, half));
    await writeFileAtomic(this.fs, path.join(this.dirs.sealed, firstFile), gz);
    await unlinkIfExists(this.fs, originalPath);
    await syncDir(this.fs, this.dirs.sealed);
    return gz.length;
  }

  private forget(chunk: ChunkInfo): void {
    this.inflight.delete(chunk.file);
    const index = this.chunks.findIndex((c) => c.file === chunk.file);
    if (index !== -1) this.chunks.splice(index, 1);
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
