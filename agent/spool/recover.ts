// Opening a spool after any stop, clean or `kill -9`: finish what meta.json journaled, drop what
// was never committed, cut torn segment tails, and hand back what is left to seal and upload.
import path from "node:path";
import type { EventLogger } from "../ports";
import { type ChunkInfo, newEpoch, parseChunkFileName, parseSegmentFileName } from "./chunk-name";
import { scanSegment } from "./frame";
import { META_FILE, readMeta, type SpoolMeta, writeMeta } from "./meta";
import { oldestOf } from "./seal";
import { fileSize, listDir, type SpoolFs, syncDir, TEMP_PREFIX, unlinkIfExists } from "./spool-fs";

export interface SpoolDirs {
  root: string;
  segments: string;
  sealed: string;
  quarantine: string;
}

export function spoolDirs(root: string): SpoolDirs {
  return {
    root,
    segments: path.join(root, "segments"),
    sealed: path.join(root, "sealed"),
    quarantine: path.join(root, "quarantine"),
  };
}

export interface RecoveredSegment {
  n: number;
  path: string;
  handle: null;
  diskBytes: number;
  dirty: false;
  records: number;
  payloadBytes: number;
  firstMs: number;
  firstMono: null;
  buffer: Buffer[];
  tail: null;
  writing: 0;
  lines: null;
  closed: true;
}

export interface Recovered {
  meta: SpoolMeta;
  chunks: ChunkInfo[];
  quarantined: ChunkInfo[];
  /** Unsealed segments left by the last run, oldest first, all to be sealed now. */
  segments: RecoveredSegment[];
  nextSegment: number;
}

export async function recoverSpool(input: {
  fs: SpoolFs;
  dirs: SpoolDirs;
  now: number;
  random: () => number;
  events: EventLogger;
  resealFirstHalf: (original: string, records: number) => Promise<number>;
}): Promise<Recovered> {
  const { fs, dirs, now, events } = input;
  for (const dir of [dirs.segments, dirs.sealed, dirs.quarantine]) {
    await fs.mkdir(dir, { recursive: true, mode: 0o750 });
  }
  for (const dir of [dirs.root, dirs.segments, dirs.sealed, dirs.quarantine]) {
    for (const name of await listDir(fs, dir)) {
      if (name.startsWith(TEMP_PREFIX)) await unlinkIfExists(fs, path.join(dir, name));
    }
  }

  let meta = await loadOrCreateMeta(input);
  if (meta.split) {
    const records = Number(/\.r(\d+)\./.exec(meta.split.firstHalf)?.[1]);
    if ((await fileSize(fs, path.join(dirs.sealed, meta.split.original))) > 0 && records > 0) {
      await input.resealFirstHalf(meta.split.original, records);
    }
    events.emit("spool.split_finished", { chunk: meta.split.firstHalf });
    meta = { ...meta, split: null };
    await writeMeta(fs, dirs.root, meta);
  }
  if (meta.dropping.length > 0) {
    for (const file of meta.dropping) {
      await unlinkIfExists(fs, path.join(dirs.sealed, file));
      await unlinkIfExists(fs, path.join(dirs.quarantine, file));
    }
    meta = { ...meta, dropping: [] };
    await writeMeta(fs, dirs.root, meta);
  }

  const chunks: ChunkInfo[] = [];
  for (const name of await listDir(fs, dirs.sealed)) {
    const info = parseChunkFileName(name, await fileSize(fs, path.join(dirs.sealed, name)));
    if (!info) continue;
    if (info.epoch === meta.epoch && info.seq >= meta.nextSeq) {
      // Written by a seal or split whose meta.json commit never happened: its records are still in
      // their segment (or the original chunk) and are sealed again below.
      await unlinkIfExists(fs, path.join(dirs.sealed, name));
      continue;
    }
    chunks.push(info);
  }
  const quarantined: ChunkInfo[] = [];
  for (const name of await listDir(fs, dirs.quarantine)) {
    const info = parseChunkFileName(name, await fileSize(fs, path.join(dirs.quarantine, name)));
    if (info) quarantined.push(info);
  }

  const segments: RecoveredSegment[] = [];
  let highest = meta.sealedSegment;
  const numbers = (await listDir(fs, dirs.segments))
    .map((name) => ({ name, n: parseSegmentFileName(name) }))
    .filter((entry): entry is { name: string; n: number } => entry.n !== null)
    .sort((a, b) => a.n - b.n);
  for (const { name, n } of numbers) {
    const file = path.join(dirs.segments, name);
    highest = Math.max(highest, n);
    if (n <= meta.sealedSegment) {
      // Sealed and committed; only its deletion was lost (or failed): never sealed again, whether
      // or not it can be deleted now.
      await unlinkIfExists(fs, file).catch((error: unknown) =>
        events.emit("spool.segment_unlink_failed", { level: "error", segment: name, error: String(error) }),
      );
      continue;
    }
    const scan = scanSegment(await fs.readFile(file));
    if (scan.tornBytes > 0) {
      events.emit("spool.torn_tail", {
        level: "warn",
        segment: name,
        cutBytes: scan.tornBytes,
        keptRecords: scan.payloads.length,
      });
      await fs.truncate(file, scan.validBytes);
    }
    if (scan.payloads.length === 0) {
      await unlinkIfExists(fs, file);
      continue;
    }
    segments.push({
      n,
      path: file,
      handle: null,
      diskBytes: scan.validBytes,
      dirty: false,
      records: scan.payloads.length,
      payloadBytes: scan.payloads.reduce((sum, p) => sum + p.length + 1, 0),
      firstMs: oldestOf(scan.payloads, now),
      firstMono: null,
      buffer: [],
      tail: null,
      writing: 0,
      // Sealed from the file: after a crash only its checked frames count.
      lines: null,
      closed: true,
    });
  }
  await syncDir(fs, dirs.sealed);
  await syncDir(fs, dirs.segments);
  return { meta, chunks, quarantined, segments, nextSegment: highest + 1 };
}

async function loadOrCreateMeta(input: {
  fs: SpoolFs;
  dirs: SpoolDirs;
  now: number;
  random: () => number;
  events: EventLogger;
}): Promise<SpoolMeta> {
  const { fs, dirs, now, events } = input;
  const stored = await readMeta(fs, dirs.root);
  if (stored !== null && stored !== "corrupt") return stored;
  if (stored === "corrupt") {
    // Written atomically, so this takes outside damage; keep the evidence and start a new epoch.
    const aside = `${META_FILE}.corrupt-${now}`;
    await fs.rename(path.join(dirs.root, META_FILE), path.join(dirs.root, aside));
    events.emit("spool.meta_corrupt", {
      level: "error",
      movedTo: aside,
      message: "spool meta.json unreadable: new epoch, earlier drop count lost",
    });
  }
  const meta: SpoolMeta = {
    format: 1,
    epoch: newEpoch(now, input.random),
    createdAt: new Date(now).toISOString(),
    nextSeq: 1,
    sealedSegment: 0,
    droppedRecords: 0,
    split: null,
    dropping: [],
  };
  await writeMeta(fs, dirs.root, meta);
  events.emit("spool.created", { epoch: meta.epoch, dir: dirs.root });
  return meta;
}
