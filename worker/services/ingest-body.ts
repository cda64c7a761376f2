import { gunzipSync } from "node:zlib";
import { TALLY_LIMITS } from "../../protocol/chunk-tally";
import { CHUNK_LIMITS } from "../../protocol/wire";
import { AppError } from "../errors";

// Reading a log chunk's body with both limits enforced: ≤ 1 MiB compressed as it arrives,
// ≤ 16 MiB inflated as it is produced (a gzip bomb is cut off there, not inflated). A tallied
// upload is `<tally gzip><chunk gzip>`, each part with its own limits.

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
 * The chunk's NDJSON text. One native gunzip call with an output cap (node:zlib stops inflating
 * at `maxOutputLength`); it replaced a DecompressionStream read piece by piece, which cost about
 * a microsecond a record in promise turns alone.
 */
export function inflateChunk(gzip: Uint8Array, encoding: string | undefined): string {
  if ((encoding ?? "").toLowerCase() !== "gzip") {
    throw new AppError("UNSUPPORTED_MEDIA_TYPE", "log chunks must be sent with Content-Encoding: gzip");
  }
  let inflated: Uint8Array;
  try {
    inflated = gunzipSync(gzip, { maxOutputLength: CHUNK_LIMITS.maxInflatedBytes });
  } catch (error) {
    if ((error as { code?: string })?.code === "ERR_BUFFER_TOO_LARGE" || error instanceof RangeError) {
      throw tooLarge("inflated chunk", CHUNK_LIMITS.maxInflatedBytes);
    }
    throw new AppError("BAD_REQUEST", "the body is not valid gzip");
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(inflated);
  } catch {
    throw new AppError("BAD_REQUEST", "the chunk is not valid UTF-8");
  }
}

const isGzip = (bytes: Uint8Array) => bytes.byteLength >= 18 && bytes[0] === 0x1f && bytes[1] === 0x8b;

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
  let inflated: Uint8Array;
  try {
    inflated = gunzipSync(gzip, { maxOutputLength: TALLY_LIMITS.maxBytes });
  } catch (error) {
    if ((error as { code?: string })?.code === "ERR_BUFFER_TOO_LARGE" || error instanceof RangeError) {
      throw new AppError(
        "PAYLOAD_TOO_LARGE",
        `inflated tally exceeds ${TALLY_LIMITS.maxBytes} bytes; split the chunk`,
      );
    }
    throw new AppError("BAD_REQUEST", "the tally is not valid gzip");
  }
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(inflated));
  } catch {
    throw new AppError("BAD_REQUEST", "the tally is not UTF-8 JSON");
  }
}
