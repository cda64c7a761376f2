import { type ChunkInfo, compareChunks } from "./chunk-name";

/**
 * The spool's in-memory view of its chunk files: committed chunks waiting for upload (sorted
 * lazily into upload order), which of them are being uploaded, and the quarantined ones.
 */
export class ChunkIndex {
  private pendingChunks: ChunkInfo[] = [];
  private sorted = true;
  private readonly uploading = new Set<string>();
  quarantined: ChunkInfo[] = [];

  constructor(pending: ChunkInfo[] = [], quarantined: ChunkInfo[] = []) {
    this.addPending(...pending);
    this.quarantined = quarantined;
  }

  /** Pending chunks, oldest first. */
  pending(): readonly ChunkInfo[] {
    if (!this.sorted) {
      this.pendingChunks.sort(compareChunks);
      this.sorted = true;
    }
    return this.pendingChunks;
  }

  pendingCount(): number {
    return this.pendingChunks.length;
  }

  addPending(...chunks: ChunkInfo[]): void {
    if (chunks.length === 0) return;
    this.pendingChunks.push(...chunks);
    this.sorted = false;
  }

  /** The oldest pending chunk not being uploaded, now marked as being uploaded. */
  takeNext(): ChunkInfo | null {
    const next = this.pending().find((chunk) => !this.uploading.has(chunk.file)) ?? null;
    if (next) this.uploading.add(next.file);
    return next;
  }

  release(chunk: ChunkInfo): void {
    this.uploading.delete(chunk.file);
  }

  isUploading(chunk: ChunkInfo): boolean {
    return this.uploading.has(chunk.file);
  }

  /** The chunk is no longer pending (acked, quarantined, split or dropped). */
  forget(chunk: ChunkInfo): void {
    this.uploading.delete(chunk.file);
    const index = this.pendingChunks.findIndex((c) => c.file === chunk.file);
    if (index !== -1) this.pendingChunks.splice(index, 1);
  }

  forgetQuarantined(chunk: ChunkInfo): void {
    this.quarantined = this.quarantined.filter((q) => q.file !== chunk.file);
  }

  /** Bytes on disk of pending and quarantined chunks. */
  chunkBytes(): { pending: number; quarantined: number } {
    let pending = 0;
    let quarantined = 0;
    for (const chunk of this.pendingChunks) pending += chunk.bytes;
    for (const chunk of this.quarantined) quarantined += chunk.bytes;
    return { pending, quarantined };
  }
}
