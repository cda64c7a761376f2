// Chunked transfer coding (RFC 9112 §7.1), followed byte by byte while the bytes pass through
// unchanged: the proxy only needs to know where a chunked message ends.

enum ChunkState {
  Size = 0,
  Ext = 1,
  SizeLf = 2,
  Data = 3,
  DataCr = 4,
  DataLf = 5,
  TrailerLineStart = 6,
  TrailerLine = 7,
  TrailerLf = 8,
  FinalLf = 9,
  Done = 10,
}

const MAX_CHUNK_LINE = 4096;

/**
 * Follows chunked framing while the bytes pass through unchanged. push() answers how many bytes of
 * the chunk belong to this message (the rest is the next message) or -1 when it needs more.
 */
export class ChunkedTracker {
  private state = ChunkState.Size;
  private remaining = 0;
  private lineBytes = 0;
  private sawDigit = false;

  get done(): boolean {
    return this.state === ChunkState.Done;
  }

  /** Throws on malformed framing. */
  push(buf: Uint8Array, from = 0): number {
    let i = from;
    const n = buf.length;
    while (i < n) {
      switch (this.state) {
        case ChunkState.Data: {
          const take = Math.min(this.remaining, n - i);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = ChunkState.DataCr;
          break;
        }
        case ChunkState.Size: {
          const c = buf[i]!;
          const digit = hexValue(c);
          if (digit >= 0) {
            if (this.remaining > 0x1fffffffffff) throw new Error("chunk size too large");
            this.remaining = this.remaining * 16 + digit;
            this.sawDigit = true;
          } else if (!this.sawDigit) {
            throw new Error("chunk size missing");
          } else if (c === 13) {
            this.state = ChunkState.SizeLf;
          } else if (c === 59 || c === 32 || c === 9) {
            this.state = ChunkState.Ext;
          } else {
            throw new Error("bad chunk size");
          }
          this.countLine();
          i++;
          break;
        }
        case ChunkState.Ext: {
          if (buf[i] === 13) this.state = ChunkState.SizeLf;
          else if (buf[i] === 10) throw new Error("bare LF in chunk extension");
          this.countLine();
          i++;
          break;
        }
        case ChunkState.SizeLf: {
          if (buf[i] !== 10) throw new Error("expected LF after chunk size");
          i++;
          this.lineBytes = 0;
          this.sawDigit = false;
          if (this.remaining === 0) {
            this.state = ChunkState.TrailerLineStart;
          } else {
            this.state = ChunkState.Data;
          }
          break;
        }
        case ChunkState.DataCr: {
          if (buf[i] !== 13) throw new Error("expected CR after chunk data");
          this.state = ChunkState.DataLf;
          i++;
          break;
        }
        case ChunkState.DataLf: {
          if (buf[i] !== 10) throw new Error("expected LF after chunk data");
          this.state = ChunkState.Size;
          i++;
          break;
        }
        case ChunkState.TrailerLineStart: {
          if (buf[i] === 13) {
            this.state = ChunkState.FinalLf;
          } else {
            this.state = ChunkState.TrailerLine;
            this.countLine();
          }
          i++;
          break;
        }
        case ChunkState.TrailerLine: {
          if (buf[i] === 13) this.state = ChunkState.TrailerLf;
          this.countLine();
          i++;
          break;
        }
        case ChunkState.TrailerLf: {
          if (buf[i] !== 10) throw new Error("expected LF in trailer");
          this.lineBytes = 0;
          this.state = ChunkState.TrailerLineStart;
          i++;
          break;
        }
        case ChunkState.FinalLf: {
          if (buf[i] !== 10) throw new Error("expected final LF");
          this.state = ChunkState.Done;
          return i + 1;
        }
        case ChunkState.Done:
          return i;
      }
    }
    return -1;
  }

  private countLine(): void {
    if (++this.lineBytes > MAX_CHUNK_LINE) throw new Error("chunk line too long");
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
