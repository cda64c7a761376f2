import { gunzipSync } from "node:zlib";
import { TALLY_LIMITS } from "../../protocol/chunk-tally";
import { CHUNK_LIMITS } from "../../protocol/wire";
import { AppError } from "../errors";

// Reading a log chunk's body with both limits enforced: ≤ 1 MiB compressed as it arrives,
// ≤ 16 MiB inflated as it is produced (a gzip bomb is cut off there, not inflated). A tallied
// upload is `<tally gzip><chunk gzip>`, each part with its own limits.

/** The smallest gzip member (a 10-byte header and an 8-byte trailer). */
export const GZIP_MIN_BYTES = 18;

const tooLarge = (what: string, cap: number) =>
  new AppError("PAYLOAD_TOO_LARGE", `${what} exceeds ${cap} bytes; split the chunk`);

/** The compressed body, cut off past `max` (the 1 MiB chunk limit) as it arrives (archived as received). */
export async function readCompressedChunk(
  body: ReadableStream<Uint8Array> | null,
  max: number = CHUNK_LIMITS.maxGzipBytes,
): Promise<Uint8Array> {
  if (!body) throw new AppError("BAD_REQUEST", "empty body");
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw tooLarge("compressed chunk", max);
    }
    parts.push(value);
  }
  if (parts.length === 1) return parts[0]!;
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.byteLength;
  }
  return bytes;
}

/**
 * `gzip` inflated to UTF-8 text, at most `cap` bytes. One native gunzip call with an output cap
 * (node:zlib stops inflating at `maxOutputLength`); it replaced a DecompressionStream read piece by
 * piece, which cost about a microsecond a record in promise turns alone. `what` names the part in
 * the errors: 413 past the cap, 400 for bad gzip or UTF-8.
 */
function inflateText(gzip: Uint8Array, cap: number, what: string): string {
  let inflated: Uint8Array;
  try {
    inflated = gunzipSync(gzip, { maxOutputLength: cap });
  } catch (error) {
    if ((error as { code?: string })?.code === "ERR_BUFFER_TOO_LARGE" || error instanceof RangeError) {
      throw tooLarge(`inflated ${what}`, cap);
    }
    throw new AppError("BAD_REQUEST", `the ${what} is not valid gzip`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(inflated);
  } catch {
    throw new AppError("BAD_REQUEST", `the ${what} is not valid UTF-8`);
  }
}

/** A plain upload must say what its body is: the chunk's gzip. */
export function requireGzipEncoding(encoding: string | undefined): void {
  if ((encoding ?? "").toLowerCase() !== "gzip") {
    throw new AppError("UNSUPPORTED_MEDIA_TYPE", "log chunks must be sent with Content-Encoding: gzip");
  }
}

/** The chunk's NDJSON text (≤ 16 MiB inflated). */
export const inflateChunk = (gzip: Uint8Array): string =>
  inflateText(gzip, CHUNK_LIMITS.maxInflatedBytes, "chunk");

const isGzip = (bytes: Uint8Array) =>
  bytes.byteLength >= GZIP_MIN_BYTES && bytes[0] === 0x1f && bytes[1] === 0x8b;

/**
 * A tallied upload's two parts: `tallyLength` bytes of tally gzip, then the chunk's gzip (≤ 1 MiB,
 * archived as received; it is inflated only when the master verifies this chunk).
 */
export async function readTalliedChunk(
  body: ReadableStream<Uint8Array> | null,
  tallyLength: number,
): Promise<{ tally: Uint8Array; gzip: Uint8Array }> {
  const bytes = await readCompressedChunk(body, tallyLength + CHUNK_LIMITS.maxGzipBytes);
  const tally = bytes.subarray(0, tallyLength);
  const gzip = bytes.subarray(tallyLength);
  if (!isGzip(tally) || tally.byteLength !== tallyLength) {
    throw new AppError("BAD_REQUEST", `the body does not start with ${tallyLength} bytes of tally gzip`);
  }
  if (!isGzip(gzip)) throw new AppError("BAD_REQUEST", "no chunk gzip follows the tally");
  return { tally, gzip };
}

/** The tally's JSON value, inflated with its own cap (8 MiB). */
export function inflateTally(gzip: Uint8Array): unknown {
  const text = inflateText(gzip, TALLY_LIMITS.maxBytes, "tally");
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError("BAD_REQUEST", "the tally is not JSON");
  }
}
