import path from "node:path";
import { z } from "zod";
import { type SpoolFs, syncDir, writeFileAtomic } from "./spool-fs";

/**
 * `meta.json`, the spool's single commit point. A seal is committed by the write that advances
 * `nextSeq` and `sealedSegment` together; a split and a quota drop journal what they are about to
 * delete, so a crash half-way through is finished on the next start instead of guessed at.
 */
export const SpoolMeta = z.object({
  format: z.literal(1),
  epoch: z.string().regex(/^[0-9a-z]{1,30}$/),
  createdAt: z.string(),
  /** The seq the next sealed chunk of this epoch gets; chunk files of this epoch at or above it are uncommitted. */
  nextSeq: z.number().int().min(1),
  /** Every segment numbered at or below this has been sealed into committed chunks. */
  sealedSegment: z.number().int().min(0),
  droppedRecords: z.number().int().min(0),
  /** A 413 split in progress: the original file is replaced by its first half, `second` already committed. */
  split: z.object({ original: z.string(), firstHalf: z.string() }).nullable().default(null),
  /** Chunk files a quota drop has already counted in `droppedRecords` but may not have deleted yet. */
  dropping: z.array(z.string()).default([]),
});
export type SpoolMeta = z.infer<typeof SpoolMeta>;

export const META_FILE = "meta.json";

/** The stored meta, null when there is none, "corrupt" when it cannot be read. */
export async function readMeta(fs: SpoolFs, dir: string): Promise<SpoolMeta | null | "corrupt"> {
  let text: string;
  try {
    text = await fs.readFile(path.join(dir, META_FILE), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
  try {
    const parsed = SpoolMeta.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : "corrupt";
  } catch {
    return "corrupt";
  }
}

export async function writeMeta(fs: SpoolFs, dir: string, meta: SpoolMeta): Promise<void> {
  await writeFileAtomic(fs, path.join(dir, META_FILE), `${JSON.stringify(meta)}\n`);
  await syncDir(fs, dir);
}

/**
 * What the chunk operations outside `DiskSpool` (split, quarantine, quota drops) need from it:
 * the current meta and the one way to change it. `DiskSpool` runs them inside its disk queue.
 */
export interface SpoolJournal {
  meta(): SpoolMeta;
  /** Commits `change` atomically, adding `addDropped` (and drops counted in memory) to `droppedRecords`. */
  saveMeta(change: Partial<SpoolMeta>, addDropped?: number): Promise<void>;
  /**
   * The journaled drops are deleted: forget the list in memory. The next commit clears it on disk;
   * until then a restart deletes the same files again, which is harmless.
   */
  dropsDeleted(): void;
}
