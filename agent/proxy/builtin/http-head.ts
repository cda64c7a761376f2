// HTTP/1.1 message heads (RFC 9112), just enough for a forward proxy.
// Heads are decoded as latin1 so bytes round-trip unchanged; they must be re-encoded as latin1.
// Lenient parsers are how request smuggling happens, so anything ambiguous is rejected: obs-fold,
// bare CR/LF, control bytes, whitespace before the colon, bytes a request target cannot hold,
// Content-Length beside Transfer-Encoding in a request, differing lengths, and any
// Transfer-Encoding but exactly `chunked` (RFC 9112 §6). One byte class, one decision: requests
// get 400, origin answers 502.
// Fields are kept as offsets into the head text and only the few the proxy acts on become strings:
// forwarding copies runs of the original lines, which is most of the per-request parsing cost saved.
// One file past 300 lines: request and response heads share the byte classes and the one-pass
// parser; splitting them would duplicate the smuggling rules this file exists to keep in one place.

export const MAX_HEAD_BYTES = 64 * 1024;

/** What the proxy does with a field; everything else is end-to-end and passes unchanged. */
export enum Field {
  Other = 0,
  ContentLength = 1,
  TransferEncoding = 2,
  Connection = 3,
  Host = 4,
  ProxyAuthorization = 5,
  /** Per RFC 9110 §7.6.1 never forwarded: Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade, Proxy-Authenticate. */
  HopByHop = 6,
  /** Requests only (Other in responses); rewritten for OPTIONS and TRACE (RFC 9110 §7.6.2). */
  MaxForwards = 7,
}

export interface Head {
  /** Request: method. Response: "". */
  method: string;
  /** Request: target. Response: reason phrase. */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  /** Response status; 0 for requests. */
  status: number;
  /** The head as latin1 text, without its final CRLFCRLF. */
  text: string;
  /** Per field line: where it starts in `text`, where its colon is, and its kind. */
  starts: number[];
  colons: number[];
  kinds: Field[];
  /** -1 when absent. */
  contentLength: number;
  /** Transfer-Encoding is exactly `chunked` (any other coding is refused while parsing). */
  chunked: boolean;
  /** A response had Content-Length beside Transfer-Encoding: its Content-Length lines are dropped. */
  lengthDropped: boolean;
  /**
   * OPTIONS and TRACE only: the Max-Forwards value received, -1 when absent (or another method,
   * whose Max-Forwards passes unchanged). The forwarded request carries one less.
   */
  maxForwards: number;
  /** Lower-cased Connection value(s), "" when absent. */
  connection: string;
  /** Transfer-Encoding as sent (all lines joined with ", "), "" when absent. */
  transferEncoding: string;
  proxyAuthorization: string;
}

export class HeadError extends Error {
  constructor(
    readonly status: 400 | 431 | 502,
    message: string,
  ) {
    super(message);
  }
}

const DIGITS = /^\d{1,15}$/;
/**
 * A control byte other than HTAB, CR and LF (CR and LF are checked as line ends; latin1 text holds
 * nothing past 0xff). RFC 9110 §5.5 lets no field value, reason phrase or request line carry one;
 * one native scan of the whole head costs less than a byte loop per field.
 */
const CONTROL = /[^\t\n\r\x20-\x7e\x80-\xff]/;
/** A request target holds visible ASCII only (RFC 9112 §3.2, RFC 3986): no space, control or raw non-ASCII byte. */
const NOT_TARGET = /[^\x21-\x7e]/;
/** 1 for RFC 9110 tchar; checked per character because this runs for every header line. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

const SPECIAL: [string, Field][] = [
  ["content-length", Field.ContentLength],
  ["transfer-encoding", Field.TransferEncoding],
  ["connection", Field.Connection],
  ["host", Field.Host],
  ["proxy-authorization", Field.ProxyAuthorization],
  ["keep-alive", Field.HopByHop],
  ["proxy-authenticate", Field.HopByHop],
  ["proxy-connection", Field.HopByHop],
  ["te", Field.HopByHop],
  ["trailer", Field.HopByHop],
  ["upgrade", Field.HopByHop],
  ["max-forwards", Field.MaxForwards],
];
const SPECIAL_BY_LENGTH: [string, Field][][] = [];
for (const entry of SPECIAL) {
  const list = SPECIAL_BY_LENGTH[entry[0].length] ?? [];
  list.push(entry);
  SPECIAL_BY_LENGTH[entry[0].length] = list;
}

/** Case-insensitive match of text[start, end) against the names above, without making a string. */
function classify(text: string, start: number, end: number): Field {
  const candidates = SPECIAL_BY_LENGTH[end - start];
  if (candidates === undefined) return Field.Other;
  outer: for (const [name, kind] of candidates) {
    for (let i = 0; i < name.length; i++) {
      // | 0x20 lower-cases ASCII letters and leaves "-" alone.
      if ((text.charCodeAt(start + i) | 0x20) !== name.charCodeAt(i)) continue outer;
    }
    return kind;
  }
  return Field.Other;
}

function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return false;
  }
  return true;
}

function isOws(c: number): boolean {
  return c === 32 || c === 9;
}

function parseFields(head: Head, start: number, forRequest: boolean): void {
  const failStatus = forRequest ? 400 : 502;
  const text = head.text;
  const end = text.length;
  let sawCoding = 0;
  let pos = start;
  while (pos < end) {
    let lf = text.indexOf("\n", pos);
    let lineEnd: number;
    if (lf < 0) {
      lineEnd = end;
      lf = end;
    } else {
      lineEnd = lf - 1;
      if (text.charCodeAt(lineEnd) !== 13) throw new HeadError(failStatus, "bare LF");
    }
    if (lineEnd <= pos) throw new HeadError(failStatus, "empty header line");
    if (isOws(text.charCodeAt(pos))) throw new HeadError(failStatus, "obsolete header folding");
    let colon = pos;
    while (colon < lineEnd) {
      const c = text.charCodeAt(colon);
      if (c === 58) break;
      if (c > 127 || TCHAR[c] === 0) throw new HeadError(failStatus, "invalid header name");
      colon++;
    }
    if (colon === pos || colon === lineEnd) throw new HeadError(failStatus, "header line without a name");
    const cr = text.indexOf("\r", colon);
    if (cr >= 0 && cr < lineEnd) throw new HeadError(failStatus, "bare CR");
    let kind = classify(text, pos, colon);
    if (kind === Field.MaxForwards && !forRequest) kind = Field.Other;
    head.starts.push(pos);
    head.colons.push(colon);
    head.kinds.push(kind);
    pos = lf + 1;
    if (kind === Field.Other || kind === Field.Host || kind === Field.HopByHop) continue;

    let vs = colon + 1;
    while (vs < lineEnd && isOws(text.charCodeAt(vs))) vs++;
    let ve = lineEnd;
    while (ve > vs && isOws(text.charCodeAt(ve - 1))) ve--;
    const value = text.slice(vs, ve);
    if (kind === Field.ContentLength) {
      if (!DIGITS.test(value)) throw new HeadError(failStatus, "invalid Content-Length");
      const n = Number(value);
      if (head.contentLength >= 0 && head.contentLength !== n) {
        throw new HeadError(failStatus, "conflicting Content-Length");
      }
      head.contentLength = n;
    } else if (kind === Field.TransferEncoding) {
      // Lines are joined even when empty: `Transfer-Encoding:` + `Transfer-Encoding: chunked` is not "chunked".
      sawCoding++;
      head.transferEncoding = sawCoding > 1 ? `${head.transferEncoding}, ${value}` : value;
    } else if (kind === Field.MaxForwards) {
      const n = DIGITS.test(value) ? Number(value) : -2;
      head.maxForwards = head.maxForwards === -1 || head.maxForwards === n ? n : -2;
    } else if (kind === Field.Connection) {
      head.connection = head.connection ? `${head.connection},${value.toLowerCase()}` : value.toLowerCase();
    } else if (kind === Field.ProxyAuthorization) {
      head.proxyAuthorization = value;
    }
  }
  if (sawCoding === 0) return;
  // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
  if (head.minor === 0) throw new HeadError(failStatus, "Transfer-Encoding in an HTTP/1.0 message");
  // The proxy relays only the chunked coding, so anything else (`chunked, chunked`, `identity,
  // chunked`, `gzip, chunked`, an empty value) cannot be framed the same way on both sides.
  if (head.transferEncoding.length !== 7 || head.transferEncoding.toLowerCase() !== "chunked") {
    throw new HeadError(failStatus, "Transfer-Encoding other than chunked");
  }
  head.chunked = true;
  if (head.contentLength >= 0) {
    if (forRequest) throw new HeadError(400, "both Transfer-Encoding and Content-Length");
    // RFC 9112 §6.3: chunked wins, the length is removed before forwarding, the connection closes after.
    head.contentLength = -1;
    head.lengthDropped = true;
  }
}

function emptyHead(text: string): Head {
  return {
    method: "",
    target: "",
    minor: 1,
    status: 0,
    text,
    starts: [],
    colons: [],
    kinds: [],
    contentLength: -1,
    chunked: false,
    lengthDropped: false,
    maxForwards: -1,
    connection: "",
    transferEncoding: "",
    proxyAuthorization: "",
  };
}

/** `text` is the head without its final CRLFCRLF. */
export function parseRequestHead(text: string): Head {
  const head = emptyHead(text);
  if (CONTROL.test(text)) throw new HeadError(400, "control character in request head");
  let lineEnd = text.indexOf("\n");
  if (lineEnd < 0) lineEnd = text.length;
  else if (text.charCodeAt(--lineEnd) !== 13) throw new HeadError(400, "bare LF");
  const sp1 = text.indexOf(" ");
  const sp2 = sp1 < 0 ? -1 : text.indexOf(" ", sp1 + 1);
  if (sp1 <= 0 || sp2 < 0 || sp2 >= lineEnd) throw new HeadError(400, "malformed request line");
  head.method = text.slice(0, sp1);
  head.target = text.slice(sp1 + 1, sp2);
  const version = text.slice(sp2 + 1, lineEnd);
  if (version === "HTTP/1.1") head.minor = 1;
  else if (version === "HTTP/1.0") head.minor = 0;
  else throw new HeadError(400, "unsupported HTTP version");
  if (!isToken(head.method) || head.target.length === 0) throw new HeadError(400, "malformed request line");
  if (NOT_TARGET.test(head.target)) throw new HeadError(400, "invalid byte in request target");
  parseFields(head, lineEnd + 2, true);
  if (head.maxForwards !== -1) {
    const method = head.method;
    if (method !== "OPTIONS" && method !== "TRACE") head.maxForwards = -1;
    else if (head.maxForwards === -2) throw new HeadError(400, "invalid Max-Forwards");
  }
  return head;
}

export function parseResponseHead(text: string): Head {
  const head = emptyHead(text);
  if (CONTROL.test(text)) throw new HeadError(502, "control character in response head");
  let lineEnd = text.indexOf("\n");
  if (lineEnd < 0) lineEnd = text.length;
  else if (text.charCodeAt(--lineEnd) !== 13) throw new HeadError(502, "bare LF");
  // "HTTP/1.1 200 OK": version, 3-digit status, optional reason
  const minor = text.charCodeAt(7) - 48;
  if (
    lineEnd < 12 ||
    !text.startsWith("HTTP/1.") ||
    (minor !== 0 && minor !== 1) ||
    text.charCodeAt(8) !== 32
  ) {
    throw new HeadError(502, "malformed status line");
  }
  head.minor = minor;
  const status = Number(text.slice(9, 12));
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new HeadError(502, "bad status code");
  head.status = status;
  head.target = lineEnd > 13 ? text.slice(13, lineEnd) : "";
  parseFields(head, lineEnd + 2, false);
  return head;
}

/** Field names listed in Connection other than close/keep-alive (lower-cased), or null. */
function nominatedFields(head: Head): string[] | null {
  if (head.connection === "") return null;
  const out: string[] = [];
  for (const raw of head.connection.split(",")) {
    const token = raw.trim();
    if (token !== "" && token !== "close" && token !== "keep-alive") out.push(token);
  }
  return out.length > 0 ? out : null;
}

/**
 * The end-to-end field lines of `head`, CRLF-terminated, copied as runs of the original text.
 * Drops hop-by-hop fields, those named in Connection, Transfer-Encoding (the writer re-adds it),
 * a Content-Length that Transfer-Encoding overrides, Max-Forwards when the writer re-adds it
 * decremented and, for requests, Host (the writer sets it from the absolute URL, RFC 9112 §3.2.2).
 */
export function endToEndFields(head: Head, dropHost: boolean): string {
  const { text, starts, colons, kinds } = head;
  const nominated = nominatedFields(head);
  let out = "";
  let run = -1;
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[i]!;
    let drop =
      kind === Field.HopByHop ||
      kind === Field.Connection ||
      kind === Field.TransferEncoding ||
      kind === Field.ProxyAuthorization ||
      (dropHost && kind === Field.Host) ||
      (kind === Field.ContentLength && head.lengthDropped) ||
      (kind === Field.MaxForwards && head.maxForwards >= 0);
    if (!drop && nominated !== null) {
      drop = nominated.includes(text.slice(starts[i]!, colons[i]!).toLowerCase());
    }
    if (drop) {
      if (run >= 0) out += text.slice(run, starts[i]!);
      run = -1;
    } else if (run < 0) {
      run = starts[i]!;
    }
  }
  if (run >= 0) out += `${text.slice(run)}\r\n`;
  return out;
}

/** Whether the client wants the connection kept after this exchange. */
export function wantsKeepAlive(head: Head): boolean {
  const c = head.connection;
  if (head.minor === 0) return c.includes("keep-alive");
  return !c.includes("close");
}
