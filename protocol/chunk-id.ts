// The chunk id a node sends with every log upload (`X-Fleetgate-Chunk: <epoch>.<seq>`): the
// agent builds it, the master parses it and keys its exactly-once ledger on it. Both sides use
// these two functions, so the contract cannot drift on one side only.

export const CHUNK_ID_HEADER = "X-Fleetgate-Chunk";

export interface ChunkId {
  /** A spool instance's id: 1–40 of `[0-9A-Za-z_-]` (the agent makes base36, see newEpoch). */
  epoch: string;
  /** The chunk's number within its epoch, from 1. */
  seq: number;
}

const CHUNK_ID = /^([0-9A-Za-z_-]{1,40})\.(\d{1,15})$/;

export function formatChunkId(id: ChunkId): string {
  return `${id.epoch}.${id.seq}`;
}

/** The id in `text`, or null when it is not `<epoch>.<seq>`. */
export function parseChunkId(text: string | null | undefined): ChunkId | null {
  const match = CHUNK_ID.exec(text ?? "");
  return match ? { epoch: match[1]!, seq: Number(match[2]) } : null;
}
