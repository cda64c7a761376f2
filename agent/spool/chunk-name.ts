import { formatChunkId } from "../../protocol/chunk-id";

// Sealed chunk files carry their id and what the spool needs to know about them without
// inflating them (record count, oldest record time) in the file name, so a restart with a
// large backlog only lists a directory: `<epoch>.<seq>.r<records>.t<oldestMs>.ndjson.gz`.

export interface ChunkInfo {
  epoch: string;
  seq: number;
  records: number;
  /** Epoch ms of the chunk's first record (its `ts`, or the spool clock when unreadable). */
  oldestMs: number;
  /** Size of the gzip file on disk. */
  bytes: number;
  file: string;
}

const CHUNK_FILE = /^([0-9a-z]{1,30})\.(\d{1,15})\.r(\d{1,9})\.t(\d{1,15})\.ndjson\.gz$/;
const SEGMENT_FILE = /^(\d{1,15})\.seg$/;

/** The id the master sees in `X-Fleetgate-Chunk`: `<epoch>.<seq>` (protocol/chunk-id.ts). */
export function chunkId(chunk: Pick<ChunkInfo, "epoch" | "seq">): string {
  return formatChunkId(chunk);
}

export function chunkFileName(chunk: Omit<ChunkInfo, "file" | "bytes">): string {
  return `${chunk.epoch}.${chunk.seq}.r${chunk.records}.t${Math.max(0, Math.floor(chunk.oldestMs))}.ndjson.gz`;
}

export function parseChunkFileName(file: string, bytes: number): ChunkInfo | null {
  const match = CHUNK_FILE.exec(file);
  if (!match) return null;
  return {
    epoch: match[1]!,
    seq: Number(match[2]),
    records: Number(match[3]),
    oldestMs: Number(match[4]),
    bytes,
    file,
  };
}

export function segmentFileName(n: number): string {
  return `${String(n).padStart(12, "0")}.seg`;
}

export function parseSegmentFileName(file: string): number | null {
  const match = SEGMENT_FILE.exec(file);
  return match ? Number(match[1]) : null;
}

/**
 * A new spool instance's epoch: base36 creation time (8 chars until 2059, so epochs sort by age)
 * plus 4 random base36 chars, well inside the master's `[0-9A-Za-z_-]{1,40}`.
 */
export function newEpoch(nowMs: number, random: () => number): string {
  let suffix = "";
  for (let i = 0; i < 4; i++) suffix += Math.floor(random() * 36).toString(36);
  return `${Math.floor(nowMs).toString(36)}${suffix}`;
}

/** Upload order: older epochs first (they sort by creation time), then by seq. */
export function compareChunks(a: ChunkInfo, b: ChunkInfo): number {
  if (a.epoch !== b.epoch) {
    if (a.epoch.length !== b.epoch.length) return a.epoch.length - b.epoch.length;
    return a.epoch < b.epoch ? -1 : 1;
  }
  return a.seq - b.seq;
}
