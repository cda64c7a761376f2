import type { ChunkInfo } from "./chunk-name";

/** What the uploader needs from the spool: committed chunks, oldest first, and their fate. */
export interface ChunkStore {
  /** The oldest committed chunk not already being uploaded, now marked as being uploaded; null when none. */
  takeNext(): ChunkInfo | null;
  /** Gives a chunk back untouched (the upload failed and will be retried). */
  release(chunk: ChunkInfo): void;
  readChunk(chunk: ChunkInfo): Promise<Uint8Array>;
  /** The master has it (accepted or duplicate): delete it. */
  ack(chunk: ChunkInfo): Promise<void>;
  /** The master refused it for good: keep it aside, counted, never retried automatically. */
  quarantine(chunk: ChunkInfo, reason: string): Promise<void>;
  /**
   * The chunk cannot be read (a bad block, a permission, something else where the file was): move it
   * to quarantine if possible, else skip it until the next start, so the chunks behind it still go.
   */
  setAside(chunk: ChunkInfo, reason: string): Promise<void>;
  /** The master found it too large (413): replace it by two halves. */
  split(chunk: ChunkInfo): Promise<void>;
  pendingCount(): number;
  /** Called whenever new chunks become uploadable. */
  onChunks(listener: () => void): void;
}
