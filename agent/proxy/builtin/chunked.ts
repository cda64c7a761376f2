// Chunked transfer coding (RFC 9112 §7.1), followed byte by byte while the bytes pass through
// unchanged: the proxy only needs to know where a chunked message ends. Parsed strictly, since the
// bytes go on to a parser that may be lenient: a size line is hex digits, then optionally BWS and
// `;` extensions, then CRLF (`5 `, `2 junk`, a bare LF are refused); a trailer line is a field line
// (token, colon, value of visible bytes, SP and HTAB) ending in CRLF.

enum ChunkState {
  Size = 0,
  /** Whitespace after the size: only `;` (an extension) may follow. */
  SizeSpace = 1,
  Ext = 2,
  SizeLf = 3,
  Data = 4,
  DataCr = 5,
  DataLf = 6,
  TrailerLineStart = 7,
  TrailerName = 8,
  TrailerValue = 9,
  TrailerLf = 10,
  FinalLf = 11,
  Done = 12,
}

const MAX_CHUNK_LINE = 4096;
/** The whole trailer section, like a head. */
const MAX_TRAILER_BYTES = 64 * 1024;

/** 1 for RFC 9110 tchar. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}
/** 1 for what a field value or chunk extension may hold: HTAB, SP, VCHAR, obs-text. */
const VALUE_BYTE = new Uint8Array(256).fill(1);
for (let c = 0; c < 32; c++) if (c !== 9) VALUE_BYTE[c] = 0;
VALUE_BYTE[127] = 0;

/**
 * Follows chunked framing while the bytes pass through unchanged. push() answers how many bytes of
 * the chunk belong to this message (the rest is the next message) or -1 when it needs more.
 */
export class ChunkedTracker {
  private state = ChunkState.Size;
  private remaining = 0;
  private lineBytes = 0;
  private trailerBytes = 0;
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
          } else if (c === 59) {
            this.state = ChunkState.Ext;
          } else if (c === 32 || c === 9) {
            this.state = ChunkState.SizeSpace;
          } else {
            throw new Error("bad chunk size");
          }
          this.countLine();
          i++;
          break;
        }
        case ChunkState.SizeSpace: {
          const c = buf[i]!;
          if (c === 59) this.state = ChunkState.Ext;
          else if (c !== 32 && c !== 9) throw new Error("junk after chunk size");
          this.countLine();
          i++;
          break;
        }
        case ChunkState.Ext: {
          const c = buf[i]!;
          if (c === 13) this.state = ChunkState.SizeLf;
          else if (VALUE_BYTE[c] === 0) throw new Error("bad byte in chunk extension");
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
          const c = buf[i]!;
          if (c === 13) {
            this.state = ChunkState.FinalLf;
          } else if (TCHAR[c] === 1) {
            this.state = ChunkState.TrailerName;
            this.countTrailer();
          } else {
            throw new Error("trailer line is not a field line");
          }
          i++;
          break;
        }
        case ChunkState.TrailerName: {
          const c = buf[i]!;
          if (c === 58) this.state = ChunkState.TrailerValue;
          else if (TCHAR[c] === 0) throw new Error("bad trailer field name");
          this.countTrailer();
          i++;
          break;
        }
        case ChunkState.TrailerValue: {
          const c = buf[i]!;
          if (c === 13) this.state = ChunkState.TrailerLf;
          else if (VALUE_BYTE[c] === 0) throw new Error("bad byte in trailer field");
          this.countTrailer();
          i++;
          break;
        }
        case ChunkState.TrailerLf: {
          if (buf[i] !== 10) throw new Error("bare CR in trailer");
          this.lineBytes = 0;
          this.state = ChunkState.TrailerLineStart;
          i++;
          break;
        }
        case ChunkState.FinalLf: {
          if (buf[i] !== 10) throw new Error("bare CR after the last chunk");
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

  private countTrailer(): void {
    if (++this.trailerBytes > MAX_TRAILER_BYTES) throw new Error("trailer section too large");
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
