import type * as fsp from "node:fs/promises";
import path from "node:path";

/** The file-system calls the spool makes: `node:fs/promises` in production (Node and Bun). */
export type SpoolFs = Pick<
  typeof fsp,
  "open" | "readFile" | "readdir" | "rename" | "unlink" | "mkdir" | "stat" | "truncate" | "rm"
>;

export const TEMP_PREFIX = ".tmp-";

/**
 * Temp file in the same directory, fsync, rename over the target: a crash leaves the old file or
 * the new one, never a torn one. The caller syncs the directory (once per batch of renames).
 */
export async function writeFileAtomic(fs: SpoolFs, target: string, data: Uint8Array | string): Promise<void> {
  const temp = path.join(path.dirname(target), `${TEMP_PREFIX}${path.basename(target)}`);
  const handle = await fs.open(temp, "w", 0o640);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, target);
}

/** Makes renames and unlinks in `dir` durable; file systems that refuse a directory fsync are fine. */
export async function syncDir(fs: SpoolFs, dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

export async function unlinkIfExists(fs: SpoolFs, file: string): Promise<void> {
  try {
    await fs.unlink(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
}

export async function listDir(fs: SpoolFs, dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

export async function fileSize(fs: SpoolFs, file: string): Promise<number> {
  try {
    return (await fs.stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
}
