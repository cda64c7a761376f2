// HTTP/1.1 message heads and body framing, just enough for a forward proxy (RFC 9112).
// Heads are decoded as latin1 so bytes round-trip unchanged; they must be re-encoded as latin1.
// Lenient parsers are how request smuggling happens, so anything ambiguous is rejected: obs-fold,
// bare CR/LF, whitespace before the colon, Content-Length beside Transfer-Encoding, differing lengths.

export const MAX_HEAD_BYTES = 64 * 1024;

/** One parsed head; `names` keep the sender's case, `lower` is for lookups. */
export interface Head {
  /** Request: method. Response: "" */
  method: string;
  /** Request: target. Response: reason phrase. */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  /** Response status; 0 for requests. */
  status: number;
  names: string[];
  lower: string[];
  values: string[];
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  /** Transfer-Encoding present but not ending in chunked. */
  otherCoding: boolean;
  /** Lower-cased Connection header value, "" when absent. */
  connection: string;
  /** Transfer-Encoding as sent, "" when absent; re-added when the body passes through as is. */
  transferEncoding: string;
}

export class HeadError extends Error {
  constructor(
    readonly status: 400 | 431 | 502,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const DIGITS = /^\d{1,15}$/;

function parseFields(head: Head, text: string, start: number, forRequest: boolean): void {
  const failStatus = forRequest ? 400 : 502;
  let pos = start;
  const end = text.length;
  while (pos < end) {
    let eol = text.indexOf("\r\n", pos);
    if (eol < 0) eol = end;
    const line = text.slice(pos, eol);
    pos = eol + 2;
    if (line.length === 0) continue;
    const first = line.charCodeAt(0);
    if (first === 32 || first === 9) throw new HeadError(failStatus, "obsolete header folding");
    if (line.indexOf("\n") >= 0 || line.indexOf("\r") >= 0) throw new HeadError(failStatus, "bare CR or LF");
    const colon = line.indexOf(":");
    if (colon <= 0) throw new HeadError(failStatus, "header line without a name");
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new HeadError(failStatus, "invalid header name");
    const value = line.slice(colon + 1).trim();
    const lname = name.toLowerCase();
    head.names.push(name);
    head.lower.push(lname);
    head.values.push(value);
    if (lname === "content-length") {
      if (!DIGITS.test(value)) throw new HeadError(failStatus, "invalid Content-Length");
      const n = Number(value);
      if (head.contentLength >= 0 && head.contentLength !== n) {
        throw new HeadError(failStatus, "conflicting Content-Length");
      }
      head.contentLength = n;
    } else if (lname === "transfer-encoding") {
      head.transferEncoding = head.transferEncoding ? `${head.transferEncoding}, ${value}` : value;
      const codings = head.transferEncoding.toLowerCase();
      const last = codings.slice(codings.lastIndexOf(",") + 1).trim();
      if (last === "chunked") {
        head.chunked = true;
        head.otherCoding = false;
      } else {
        head.chunked = false;
        head.otherCoding = true;
      }
    } else if (lname === "connection") {
      head.connection = head.connection ? `${head.connection},${value.toLowerCase()}` : value.toLowerCase();
    }
  }
  if ((head.chunked || head.otherCoding) && head.contentLength >= 0) {
    if (forRequest) throw new HeadError(400, "both Transfer-Encoding and Content-Length");
    head.contentLength = -1;
  }
}

function emptyHead(): Head {
  return {
    method: "",
    target: "",
    minor: 1,
    status: 0,
    names: [],
    lower: [],
    values: [],
    contentLength: -1,
    chunked: false,
    otherCoding: false,
    connection: "",
    transferEncoding: "",
  };
}

/** `text` is the head without its final CRLFCRLF. */
export function parseRequestHead(text: string): Head {
  const head = emptyHead();
  let lineEnd = text.indexOf("\r\n");
  if (lineEnd < 0) lineEnd = text.length;
  const sp1 = text.indexOf(" ");
  const sp2 = sp1 < 0 ? -1 : text.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 >= lineEnd) throw new HeadError(400, "malformed request line");
  head.method = text.slice(0, sp1);
  head.target = text.slice(sp1 + 1, sp2);
  const version = text.slice(sp2 + 1, lineEnd);
  if (version === "HTTP/1.1") head.minor = 1;
  else if (version === "HTTP/1.0") head.minor = 0;
  else throw new HeadError(400, "unsupported HTTP version");
  if (!TOKEN.test(head.method) || head.target.length === 0) {
    throw new HeadError(400, "malformed request line");
  }
  if (head.target.indexOf(" ") >= 0 || head.target.indexOf("\n") >= 0 || head.target.indexOf("\r") >= 0) {
    throw new HeadError(400, "malformed request target");
  }
  parseFields(head, text, lineEnd + 2, true);
  if (head.otherCoding) throw new HeadError(400, "request Transfer-Encoding must end in chunked");
  return head;
}

export function parseResponseHead(text: string): Head {
  const head = emptyHead();
  let lineEnd = text.indexOf("\r\n");
  if (lineEnd < 0) lineEnd = text.length;
  // "HTTP/1.1 200 OK": version, 3-digit status, optional reason
  const minorCode = text.charCodeAt(7) - 48;
  if (
    lineEnd < 12 ||
    !text.startsWith("HTTP/1.") ||
    (minorCode !== 0 && minorCode !== 1) ||
    text.charCodeAt(8) !== 32
  ) {
    throw new HeadError(502, "malformed status line");
  }
  head.minor = minorCode;
  const status = Number(text.slice(9, 12));
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new HeadError(502, "bad status code");
  head.status = status;
  head.target = lineEnd > 13 ? text.slice(13, lineEnd) : "";
  parseFields(head, text, lineEnd + 2, false);
  return head;
}

export function headerValue(head: Head, lname: string): string | undefined {
  const i = head.lower.indexOf(lname);
  return i < 0 ? undefined : head.values[i];
}

/** Per RFC 9110 §7.6.1: these never cross a proxy; framing headers are re-added by the writer. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authorization",
  "proxy-authenticate",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/** Writes the end-to-end fields of `head` as "Name: value\r\n" lines, skipping `skip` too. */
export function endToEndFields(head: Head, skip?: string): string {
  const nominated = head.connection ? head.connection.split(",").map((t) => t.trim()) : null;
  let out = "";
  const { names, lower, values } = head;
  for (let i = 0; i < names.length; i++) {
    const l = lower[i]!;
    if (HOP_BY_HOP.has(l) || l === skip) continue;
    if (nominated?.includes(l)) continue;
    out += `${names[i]}: ${values[i]}\r\n`;
  }
  return out;
}

/** Whether the client wants the connection kept after this exchange. */
export function wantsKeepAlive(head: Head): boolean {
  const c = head.connection;
  if (head.minor === 0) return c.includes("keep-alive");
  return !c.includes("close");
}

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

export interface ProxyTarget {
  host: string;
  port: number;
  /** Path with query, always starting with "/". */
  path: string;
  /** The Host header to send upstream. */
  authority: string;
}

/** Parses an absolute-form "http://host[:port]/path" target; null when it is not one. */
export function parseAbsoluteTarget(target: string): ProxyTarget | null {
  if (target.length < 8 || target.slice(0, 7).toLowerCase() !== "http://") return null;
  let end = target.length;
  for (let i = 7; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35) {
      end = i;
      break;
    }
  }
  let authority = target.slice(7, end);
  const at = authority.lastIndexOf("@");
  if (at >= 0) authority = authority.slice(at + 1);
  const hostPort = parseAuthority(authority, 80);
  if (hostPort === null) return null;
  let path = end < target.length ? target.slice(end) : "/";
  const hash = path.indexOf("#");
  if (hash >= 0) path = path.slice(0, hash);
  if (path.charCodeAt(0) === 63) path = `/${path}`;
  return { host: hostPort.host, port: hostPort.port, path, authority };
}

/** "host:port", "[v6]:port" or, with a default port, a bare host. Host comes back lower-cased. */
export function parseAuthority(
  authority: string,
  defaultPort: number,
): { host: string; port: number } | null {
  let host: string;
  let portText = "";
  if (authority.charCodeAt(0) === 91) {
    const close = authority.indexOf("]");
    if (close < 0) return null;
    host = authority.slice(1, close);
    const rest = authority.slice(close + 1);
    if (rest.length > 0) {
      if (rest.charCodeAt(0) !== 58) return null;
      portText = rest.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon >= 0) {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    } else {
      host = authority;
    }
  }
  let port = defaultPort;
  if (portText.length > 0) {
    if (!/^\d{1,5}$/.test(portText)) return null;
    port = Number(portText);
  }
  if (host.length === 0 || host.length > 255 || port <= 0 || port > 65535) return null;
  if (/[\s/\\?#@]/.test(host)) return null;
  return { host: host.toLowerCase(), port };
}
