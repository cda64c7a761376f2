// Segment file format: a 4-byte magic, then frames of [u32 LE length][u32 LE crc32][payload].
// The CRC covers the length bytes and the payload, so a torn or corrupted tail is caught at the
// first frame that does not check out, and everything before it is trusted.
import zlib from "node:zlib";

export const SEGMENT_MAGIC = Buffer.from([0x46, 0x47, 0x53, 0x01]); // "FGS" v1
export const FRAME_HEADER_BYTES = 8;
/** A single record larger than this is refused at write time and treated as corruption when read. */
export const MAX_RECORD_BYTES = 256 * 1024;

const TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32Js(data: Uint8Array, initial = 0): number {
  let crc = ~initial >>> 0;
  for (let i = 0; i < data.length; i++) crc = TABLE[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

// zlib.crc32 is native in Node ≥ 20.15 and recent Bun; the table version keeps older runtimes working.
const nativeCrc = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
export const crc32: (data: Uint8Array, initial?: number) => number = nativeCrc
  ? (data, initial = 0) => nativeCrc(data, initial)
  : crc32Js;

/** One frame for one NDJSON line (without its newline). */
export function encodeFrame(payload: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  payload.copy(frame, FRAME_HEADER_BYTES);
  const crc = crc32(frame.subarray(FRAME_HEADER_BYTES), crc32(frame.subarray(0, 4)));
  frame.writeUInt32LE(crc, 4);
  return frame;
}

export interface ScanResult {
  /** Payloads of every frame that checked out, in order. */
  payloads: Buffer[];
  /** Bytes of the file that are trusted (magic + good frames); anything past it is a torn tail. */
  validBytes: number;
  /** Bytes past `validBytes`: a write cut short by a crash, or corruption. */
  tornBytes: number;
}

export function scanSegment(data: Buffer): ScanResult {
  const payloads: Buffer[] = [];
  if (data.length < SEGMENT_MAGIC.length || !data.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC)) {
    return { payloads, validBytes: 0, tornBytes: data.length };
  }
  let offset = SEGMENT_MAGIC.length;
  while (offset + FRAME_HEADER_BYTES <= data.length) {
    const length = data.readUInt32LE(offset);
    const end = offset + FRAME_HEADER_BYTES + length;
    if (length === 0 || length > MAX_RECORD_BYTES || end > data.length) break;
    const payload = data.subarray(offset + FRAME_HEADER_BYTES, end);
    const crc = crc32(payload, crc32(data.subarray(offset, offset + 4)));
    if (crc !== data.readUInt32LE(offset + 4)) break;
    payloads.push(payload);
    offset = end;
  }
  return { payloads, validBytes: offset, tornBytes: data.length - offset };
}
