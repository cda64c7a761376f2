// One plain-HTTP request forwarded to its origin and the answer streamed back. Bodies pass through
// chunk by chunk with backpressure both ways (a full socket pauses the other side's reads); chunked
// bodies keep their framing, which ChunkedTracker follows only to find where the message ends.
// One file past 300 lines: the request and response halves share the backpressure and framing
// state of one exchange, and this is the proxy's hot path: it is kept whole on purpose.

import type { ConnectAttempt, TcpConnection } from "../../platform/tcp";
import { ChunkedTracker } from "./chunked";
import { type ProxyContext, type RequestInfo, toRecord, writeRecord } from "./context";
import {
  endToEndFields,
  type Head,
  HeadError,
  MAX_HEAD_BYTES,
  parseResponseHead,
  wantsKeepAlive,
} from "./http-head";
import { simplePage } from "./pages";
import type { ProxyTarget } from "./target";
import { requestedUpgrade } from "./upgrade";
import { Upstream, type UpstreamOwner } from "./upstream-pool";

/** The client side of an exchange, as the exchange sees it. */
export interface ExchangeClient {
  readonly conn: TcpConnection;
  /** Bytes past the end of this request (a pipelined next one): keep them for later. */
  stash(chunk: Buffer): void;
  exchangeDone(keepClient: boolean): void;
  /** The origin answered 101 to a requested Upgrade: the connection becomes a tunnel (upgrade.ts). */
  upgraded(upstream: Upstream, head: Buffer, fromUpstream: Buffer | null, info: RequestInfo): void;
}

enum Phase {
  Connecting = 0,
  AwaitingHead = 1,
  ResponseBody = 2,
  Done = 3,
}

enum Framing {
  None = 0,
  Length = 1,
  Chunked = 2,
  UntilClose = 3,
}

const VIA = "Via: 1.1 fleetgate\r\n";
const HEAD_END = Buffer.from("\r\n\r\n");

export class HttpExchange implements UpstreamOwner {
  private phase = Phase.Connecting;
  private upstream: Upstream | null = null;
  private attempt: ConnectAttempt | null = null;
  private deadline = 0;
  private readonly key: string;
  private readonly requestHead: Buffer;

  private requestFraming: Framing;
  private requestRemaining: number;
  private requestTracker: ChunkedTracker | null = null;
  private requestDone: boolean;
  /** Body bytes that came before the upstream socket was ready. */
  private pendingBody: Buffer[] = [];
  private bodySent = false;
  private retried = false;

  private responseBuffer: Buffer | null = null;
  private responseFraming = Framing.None;
  private responseRemaining = 0;
  private responseTracker: ChunkedTracker | null = null;
  private upstreamReusable = true;
  private status = 0;
  private keepClient = false;
  /** The Upgrade the client asked for and we forward (WebSocket), or "". */
  private readonly upgrade: string;

  private clientPaused = false;
  private upstreamPaused = false;
  private bytesIn: number;
  private bytesOut = 0;
  /** Request-body progress as the sweep last saw it (bytes in + upstream drains), and since when. */
  private progressSeen = -1;
  private quietSince: number;
  private upstreamDrains = 0;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly client: ExchangeClient,
    private readonly info: RequestInfo,
    private readonly request: Head,
    target: ProxyTarget,
    headLength: number,
  ) {
    this.key = `${info.address ?? target.host}:${target.port}`;
    this.bytesIn = headLength;
    this.quietSince = info.startedMono;
    if (request.chunked) {
      this.requestFraming = Framing.Chunked;
      this.requestTracker = new ChunkedTracker();
      this.requestRemaining = 0;
    } else if (request.contentLength > 0) {
      this.requestFraming = Framing.Length;
      this.requestRemaining = request.contentLength;
    } else {
      this.requestFraming = Framing.None;
      this.requestRemaining = 0;
    }
    this.requestDone = this.requestFraming === Framing.None;
    // An HTTP/1.0 client cannot read chunked answers, so ask the origin in its own version.
    const path = target.pathless && request.method === "OPTIONS" ? "*" : target.path;
    let head = `${request.method} ${path} HTTP/1.${request.minor}\r\nHost: ${target.authority}\r\n`;
    head += endToEndFields(request, true);
    if (request.chunked) head += "Transfer-Encoding: chunked\r\n";
    // OPTIONS and TRACE (RFC 9110 §7.6.2); at 0 the session answers them itself.
    if (request.maxForwards > 0) head += `Max-Forwards: ${request.maxForwards - 1}\r\n`;
    this.upgrade = this.requestDone ? requestedUpgrade(request) : "";
    if (this.upgrade !== "") head += `Connection: Upgrade\r\nUpgrade: ${this.upgrade}\r\n`;
    head += VIA;
    head += "\r\n";
    this.requestHead = Buffer.from(head, "latin1");
  }

  start(initial: Buffer | null): void {
    if (initial !== null && initial.length > 0) this.clientData(initial);
    // A body refused in its first bytes was answered already: the origin is never contacted.
    if (this.phase !== Phase.Done) this.connectUpstream(true);
  }

  // ---- client side ----

  clientData(chunk: Buffer): void {
    if (this.requestDone || this.phase === Phase.Done) {
      this.client.stash(chunk);
      return;
    }
    let bodyEnd = chunk.length;
    let complete = false;
    if (this.requestFraming === Framing.Length) {
      if (chunk.length >= this.requestRemaining) {
        bodyEnd = this.requestRemaining;
        complete = true;
      }
      this.requestRemaining -= bodyEnd;
    } else {
      let end: number;
      try {
        end = this.requestTracker!.push(chunk);
      } catch (error) {
        // The bad bytes never reach the origin: its connection is dropped unfinished.
        const why = `bad chunked request body: ${(error as Error).message}`;
        this.attempt?.cancel();
        this.attempt = null;
        if (this.status === 0) this.failBeforeHead(400, "Bad request", `${why}.`);
        else this.abortBoth(why);
        return;
      }
      if (end >= 0) {
        bodyEnd = end;
        complete = true;
      }
    }
    const body = bodyEnd === chunk.length ? chunk : chunk.subarray(0, bodyEnd);
    this.bytesIn += body.length;
    if (body.length > 0) this.sendBody(body);
    if (bodyEnd < chunk.length) this.client.stash(chunk.subarray(bodyEnd));
    if (complete) {
      this.requestDone = true;
      if (this.phase === Phase.AwaitingHead) this.deadline = performance.now() + this.ctx.upstreamTimeoutMs;
    }
  }

  clientDrain(): void {
    if (this.upstreamPaused && this.upstream !== null) {
      this.upstreamPaused = false;
      this.upstream.conn.resume();
    }
  }

  clientEnd(): void {
    // A half-closed client may still read the answer; the session closes after it.
  }

  clientGone(): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.attempt?.cancel();
    this.dropUpstream();
    this.log(this.status === 0 ? "error" : "allow", this.status);
  }

  checkTimeout(now: number): void {
    if (!this.requestDone && this.phase !== Phase.Done) {
      const progress = this.bytesIn + this.upstreamDrains;
      if (progress !== this.progressSeen) {
        this.progressSeen = progress;
        this.quietSince = now;
      } else if (now - this.quietSince > this.ctx.bodyTimeoutMs) {
        this.bodyTimedOut();
        return;
      }
    }
    if (this.deadline === 0 || now < this.deadline) return;
    if (this.phase === Phase.Connecting) {
      this.attempt?.cancel();
      this.attempt = null;
      this.failBeforeHead(502, "Origin unreachable", `Connecting to ${this.key} timed out.`);
    } else if (this.phase === Phase.AwaitingHead) {
      this.failBeforeHead(504, "Origin timed out", `${this.key} did not answer in time.`);
    }
  }

  /** The request body stopped moving: the client went quiet (408) or the origin stopped reading it (504). */
  private bodyTimedOut(): void {
    this.attempt?.cancel();
    this.attempt = null;
    if (this.status !== 0) {
      this.abortBoth("request body timed out");
    } else if (this.clientPaused) {
      this.failBeforeHead(504, "Origin timed out", `${this.key} stopped reading the request body.`);
    } else {
      this.failBeforeHead(408, "Request timeout", "The request body stopped arriving.");
    }
  }

  private sendBody(body: Buffer): void {
    if (this.upstream !== null && this.phase !== Phase.Connecting) {
      this.bodySent = true;
      if (!this.upstream.conn.write(body)) this.pauseClient();
    } else {
      this.pendingBody.push(body);
      this.pauseClient();
    }
  }

  private pauseClient(): void {
    if (this.clientPaused) return;
    this.clientPaused = true;
    this.client.conn.pause();
  }

  // ---- upstream side ----

  private connectUpstream(mayReuse: boolean): void {
    const pooled = mayReuse ? this.ctx.pool.acquire(this.key, this) : undefined;
    if (pooled !== undefined) {
      this.attach(pooled);
      return;
    }
    this.phase = Phase.Connecting;
    this.deadline = performance.now() + this.ctx.connectTimeoutMs;
    this.attempt = this.ctx.connect(
      this.info.address ?? this.info.host,
      this.info.port,
      (conn) => {
        this.attempt = null;
        const upstream = new Upstream(this.key, conn, this.ctx.pool);
        if (this.phase === Phase.Done) {
          conn.destroy();
          return;
        }
        upstream.owner = this;
        this.attach(upstream);
      },
      (error) => {
        this.attempt = null;
        if (this.phase !== Phase.Connecting) return;
        this.failBeforeHead(502, "Origin unreachable", `Could not connect to ${this.key}: ${error.message}`);
      },
    );
  }

  private attach(upstream: Upstream): void {
    this.upstream = upstream;
    this.phase = Phase.AwaitingHead;
    this.deadline = this.requestDone ? performance.now() + this.ctx.upstreamTimeoutMs : 0;
    let out: Buffer = this.requestHead;
    if (this.pendingBody.length > 0) {
      out = Buffer.concat([this.requestHead, ...this.pendingBody]);
      this.pendingBody = [];
      this.bodySent = true;
    }
    const flushed = upstream.conn.write(out);
    if (flushed && this.clientPaused) {
      this.clientPaused = false;
      this.client.conn.resume();
    }
  }

  upstreamDrain(): void {
    this.upstreamDrains++;
    if (this.clientPaused) {
      this.clientPaused = false;
      this.client.conn.resume();
    }
  }

  upstreamData(chunk: Buffer): void {
    if (this.phase === Phase.ResponseBody) {
      this.forwardBody(chunk, 0, null);
      return;
    }
    if (this.phase !== Phase.AwaitingHead) return;
    const buf = this.responseBuffer === null ? chunk : Buffer.concat([this.responseBuffer, chunk]);
    const end = buf.indexOf(HEAD_END);
    if (end < 0) {
      if (buf.length > MAX_HEAD_BYTES) {
        this.upstreamReusable = false;
        this.failBeforeHead(502, "Bad answer from origin", "The origin's response head is too large.");
      } else {
        this.responseBuffer = buf;
      }
      return;
    }
    this.responseBuffer = null;
    let response: Head;
    try {
      response = parseResponseHead(buf.toString("latin1", 0, end));
    } catch (error) {
      this.upstreamReusable = false;
      const why = error instanceof HeadError ? error.message : String(error);
      this.failBeforeHead(502, "Bad answer from origin", `The origin sent an invalid response: ${why}.`);
      return;
    }
    if (response.status < 200) {
      this.forwardInterim(response, end + 4 < buf.length ? buf.subarray(end + 4) : null);
      return;
    }
    this.startResponse(response, buf, end + 4);
  }

  private forwardInterim(response: Head, rest: Buffer | null): void {
    if (response.status === 101) {
      this.upstreamReusable = false;
      if (this.upgrade !== "" && this.upstream !== null) {
        this.switchProtocols(response, rest);
        return;
      }
      this.failBeforeHead(502, "Bad answer from origin", "The origin switched protocols unasked.");
      return;
    }
    // HTTP/1.0 clients do not understand 1xx answers.
    if (this.request.minor === 1) {
      const head = `HTTP/1.1 ${response.status} ${response.target}\r\n${endToEndFields(response, false)}\r\n`;
      const bytes = Buffer.from(head, "latin1");
      this.bytesOut += bytes.length;
      // A client that does not read its 1xx answers stops the origin being read from.
      if (!this.client.conn.write(bytes) && this.upstream !== null) {
        this.upstreamPaused = true;
        this.upstream.conn.pause();
      }
    }
    if (rest !== null) this.upstreamData(rest);
  }

  /** 101 to the Upgrade we forwarded: hand the upstream to a tunnel; logged when the tunnel ends. */
  private switchProtocols(response: Head, rest: Buffer | null): void {
    const upstream = this.upstream!;
    this.upstream = null;
    this.phase = Phase.Done;
    upstream.owner = null;
    let head = `HTTP/1.1 101 ${response.target}\r\n${endToEndFields(response, false)}Connection: Upgrade\r\n`;
    const upgrade = requestedUpgrade(response);
    head += `Upgrade: ${upgrade === "" ? this.upgrade : upgrade}\r\n${VIA}\r\n`;
    this.client.upgraded(upstream, Buffer.from(head, "latin1"), rest, this.info);
  }

  /** `buf` holds the head and, from `bodyStart`, the first body bytes. */
  private startResponse(response: Head, buf: Buffer, bodyStart: number): void {
    this.status = response.status;
    this.deadline = 0;
    const status = response.status;
    if (this.request.method === "HEAD" || status === 204 || status === 304) {
      this.responseFraming = Framing.None;
    } else if (response.chunked) {
      this.responseFraming = Framing.Chunked;
      this.responseTracker = new ChunkedTracker();
    } else if (response.contentLength < 0) {
      this.responseFraming = Framing.UntilClose;
      this.upstreamReusable = false;
    } else if (response.contentLength === 0) {
      this.responseFraming = Framing.None;
    } else {
      this.responseFraming = Framing.Length;
      this.responseRemaining = response.contentLength;
    }
    if (response.minor === 0 && !response.connection.includes("keep-alive")) this.upstreamReusable = false;
    else if (response.connection.includes("close")) this.upstreamReusable = false;
    // Content-Length beside Transfer-Encoding: relayed chunked without the length, and neither
    // connection is trusted with another message (RFC 9112 §6.3).
    if (response.lengthDropped) this.upstreamReusable = false;

    this.keepClient =
      wantsKeepAlive(this.request) &&
      !this.ctx.draining &&
      this.responseFraming !== Framing.UntilClose &&
      !response.lengthDropped;
    let head = `HTTP/1.1 ${status} ${response.target}\r\n${endToEndFields(response, false)}`;
    if (this.responseFraming === Framing.Chunked) head += "Transfer-Encoding: chunked\r\n";
    head += VIA;
    if (!this.keepClient) head += "Connection: close\r\n";
    else if (this.request.minor === 0) head += "Connection: keep-alive\r\n";
    head += "\r\n";
    this.phase = Phase.ResponseBody;
    if (this.responseFraming === Framing.None) {
      if (bodyStart < buf.length) this.upstreamReusable = false;
      const headBytes = Buffer.from(head, "latin1");
      this.bytesOut += headBytes.length;
      this.client.conn.write(headBytes);
      this.finish();
      return;
    }
    this.forwardBody(buf, bodyStart, head);
  }

  /** Forwards chunk[start..] up to the end of the body; `head` (latin1) goes first when given. */
  private forwardBody(chunk: Buffer, start: number, head: string | null): void {
    let end = chunk.length;
    let complete = false;
    if (this.responseFraming === Framing.Length) {
      if (end - start >= this.responseRemaining) {
        end = start + this.responseRemaining;
        complete = true;
      }
      this.responseRemaining -= end - start;
    } else if (this.responseFraming === Framing.Chunked) {
      let at: number;
      try {
        at = this.responseTracker!.push(chunk, start);
      } catch (error) {
        const why = `bad chunked response from origin: ${(error as Error).message}`;
        // Nothing of the answer went out yet (the head waits for its first body bytes): say 502.
        if (head !== null) this.failBeforeHead(502, "Bad answer from origin", `${why}.`);
        else this.abortBoth(why);
        return;
      }
      if (at >= 0) {
        end = at;
        complete = true;
      }
    }
    if (end < chunk.length) this.upstreamReusable = false;
    let out: Buffer;
    if (head === null) {
      out = start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end);
    } else {
      // One buffer, one write: the head and the first body bytes usually fit one packet.
      out = Buffer.allocUnsafe(head.length + end - start);
      out.write(head, 0, "latin1");
      chunk.copy(out, head.length, start, end);
    }
    if (out.length > 0) {
      this.bytesOut += out.length;
      if (!this.client.conn.write(out) && !complete && this.upstream !== null) {
        this.upstreamPaused = true;
        this.upstream.conn.pause();
      }
    }
    if (complete) this.finish();
  }

  upstreamEnd(): void {
    this.upstreamGone();
  }

  upstreamClose(): void {
    this.upstreamGone();
  }

  private upstreamGone(): void {
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) {
      upstream.owner = null;
      upstream.conn.destroy();
    }
    if (this.phase === Phase.AwaitingHead) {
      // A pooled socket the origin closed just as we picked it: one fresh try when nothing but the head went out.
      if (upstream?.reused && !this.retried && !this.bodySent && this.responseBuffer === null) {
        this.retried = true;
        this.connectUpstream(false);
        return;
      }
      this.failBeforeHead(
        502,
        "Origin closed the connection",
        `${this.key} closed the connection without answering.`,
      );
    } else if (this.phase === Phase.ResponseBody) {
      if (this.responseFraming === Framing.UntilClose) {
        this.finish();
      } else {
        this.phase = Phase.Done;
        this.log("error", this.status);
        this.client.conn.destroy();
      }
    }
  }

  // ---- endings ----

  private finish(): void {
    this.phase = Phase.Done;
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) {
      if (this.upstreamReusable && this.requestDone) {
        if (this.upstreamPaused) upstream.conn.resume();
        this.ctx.pool.release(upstream, performance.now());
      } else {
        upstream.owner = null;
        upstream.conn.destroy();
      }
    }
    this.log("allow", this.status);
    this.resumeClient();
    this.client.exchangeDone(this.keepClient && this.requestDone);
  }

  private failBeforeHead(status: 400 | 408 | 502 | 504, title: string, text: string): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.upstreamReusable = false;
    this.dropUpstream();
    const keep =
      this.requestDone &&
      wantsKeepAlive(this.request) &&
      !this.ctx.draining &&
      this.request.method !== "HEAD";
    const page = simplePage(status, title, text, this.info.requestId, keep);
    this.bytesOut += page.length;
    this.client.conn.write(page);
    this.status = status;
    this.log("error", status);
    this.resumeClient();
    this.client.exchangeDone(keep);
  }

  private abortBoth(reason: string): void {
    if (this.phase === Phase.Done) return;
    this.phase = Phase.Done;
    this.dropUpstream();
    this.ctx.events.emit("proxy.exchange_aborted", { requestId: this.info.requestId, reason });
    this.log("error", this.status);
    this.client.conn.destroy();
  }

  private dropUpstream(): void {
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) {
      upstream.owner = null;
      upstream.conn.destroy();
    }
  }

  private resumeClient(): void {
    if (this.clientPaused) {
      this.clientPaused = false;
      this.client.conn.resume();
    }
  }

  private log(action: "allow" | "error", status: number): void {
    writeRecord(this.ctx, toRecord(this.info, status, action, this.bytesIn, this.bytesOut));
  }
}
