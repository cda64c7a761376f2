import * as nodeFs from "node:fs/promises";
import path from "node:path";
import type { SpoolFigures } from "../../protocol/wire";
import { parseChunkFileName, parseSegmentFileName } from "./chunk-name";
import { scanSegment } from "./frame";
import { readMeta } from "./meta";
import { spoolDirs } from "./recover";
import { oldestOf } from "./seal";
import { fileSize, listDir, type SpoolFs } from "./spool-fs";

/**
 * The spool figures as the disk shows them, without opening (or repairing) the spool: what
 * `fleetgate-agent status` prints, whether the agent runs or not.
 */
export async function readSpoolFigures(dir: string, fs: SpoolFs = nodeFs): Promise<SpoolFigures> {
  const dirs = spoolDirs(dir);
  const meta = await readMeta(fs, dir);
  let pendingChunks = 0;
  let pendingBytes = 0;
  let oldest = Number.POSITIVE_INFINITY;
  for (const name of await listDir(fs, dirs.sealed)) {
    const chunk = parseChunkFileName(name, await fileSize(fs, path.join(dirs.sealed, name)));
    // Uncommitted leftovers of a crash are not pending: the next start removes them.
    if (
      !chunk ||
      (meta !== null && meta !== "corrupt" && chunk.epoch === meta.epoch && chunk.seq >= meta.nextSeq)
    ) {
      continue;
    }
    pendingChunks++;
    pendingBytes += chunk.bytes;
    oldest = Math.min(oldest, chunk.oldestMs);
  }
  const segments = (await listDir(fs, dirs.segments))
    .filter((name) => parseSegmentFileName(name) !== null)
    .sort();
  for (const name of segments) pendingBytes += await fileSize(fs, path.join(dirs.segments, name));
  if (segments[0]) {
    const scan = scanSegment(
      await fs.readFile(path.join(dirs.segments, segments[0])).catch(() => Buffer.alloc(0)),
    );
    if (scan.payloads.length > 0)
      oldest = Math.min(oldest, oldestOf(scan.payloads, Number.POSITIVE_INFINITY));
  }
  const quarantined = (await listDir(fs, dirs.quarantine)).filter(
    (name) => parseChunkFileName(name, 0) !== null,
  );
  return {
    pendingChunks,
    pendingBytes,
    oldestPendingAt: Number.isFinite(oldest) ? new Date(oldest).toISOString() : null,
    droppedRecords: meta !== null && meta !== "corrupt" ? meta.droppedRecords : 0,
    quarantinedChunks: quarantined.length,
  };
}
