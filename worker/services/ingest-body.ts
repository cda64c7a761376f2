import { gunzipSync } from "node:zlib";
import { CHUNK_LIMITS } from "../../protocol/wire";
import { AppError } from "../errors";

// Reading a log chunk's body with both limits enforced: ≤ 1 MiB compressed as it arrives,
// ≤ 16 MiB inflated as it is produced (a gzip bomb is cut off there, not inflated).

const tooLarge = (what: string, cap: number) =>
  new AppError("PAYLOAD_TOO_LARGE", `${what} exceeds ${cap} bytes; split the chunk`);

/** The compressed body, cut off past the 1 MiB chunk limit as it arrives (archived as received). */
export async function readCompressedChunk(body: ReadableStream<Uint8Array> | null): Promise<Uint8Array> {
  if (!body) throw new AppError("BAD_REQUEST", "empty body");
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > CHUNK_LIMITS.maxGzipBytes) {
      await reader.cancel();
      throw tooLarge("compressed chunk", CHUNK_LIMITS.maxGzipBytes);
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
