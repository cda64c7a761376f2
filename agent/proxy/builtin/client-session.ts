// One client connection: reads request heads, judges each request against the policy current at
// its arrival, and hands it to an HttpExchange or a Tunnel. Requests are served one at a time;
// pipelined bytes wait (reads paused) until the answer before them is done.
// Timeouts are checked by the proxy's sweep (tick), never by a timer per connection: a head must be
// complete headerTimeoutMs after the connection opened or the request's first byte came (slowloris),
// and a connection idle between requests closes after idleTimeoutMs.

import type { CompiledPolicy, VerifiedUser } from "../../../protocol/policy/types";
import type { TcpConnection, TcpHandlers } from "../../platform/tcp";
import { type ProxyContext, type RequestInfo, toRecord, writeRecord } from "./context";
import { type ExchangeClient, HttpExchange } from "./exchange";
import { type Head, HeadError, MAX_HEAD_BYTES, parseRequestHead, wantsKeepAlive } from "./http-head";
import { simplePage } from "./pages";
import {
  answerAtLastHop,
  parseBasic,
  type Refusal,
  refuseBadConnect,
  refuseDecision,
  refuseNoPolicy,
  refuseNotProxyRequest,
} from "./refusals";
import { type ProxyTarget, parseAbsoluteTarget, parseAuthority } from "./target";
import { Tunnel } from "./tunnel";

const HEAD_END = Buffer.from("\r\n\r\n");

export class ClientSession implements TcpHandlers, ExchangeClient {
  private current: HttpExchange | Tunnel | null = null;
  private buffer: Buffer | null = null;
  /** Bytes of an incomplete head in `buffer` already checked for a bare LF (each is checked once). */
  private lfChecked = 0;
  private authorizing = false;
  private peerEnded = false;
  /** We sent (or are sending) FIN: whatever the client still sends is dropped, never parsed. */
  private closing = false;
  /** Bumped per read; the sweep compares it with what it saw last time instead of a clock read per chunk. */
  private reads = 0;
  private readsSeen = 0;
  private lastActive = Date.now();
  /** When the head now awaited started (accept or its first byte); 0 while idle between requests or busy. */
  private headSince = Date.now();
  private readonly clientAddress: string;

  constructor(
    private readonly ctx: ProxyContext,
    readonly conn: TcpConnection,
    private readonly sessions: Set<ClientSession>,
  ) {
    const address = conn.remoteAddress;
    this.clientAddress = address.startsWith("::ffff:") ? address.slice(7) : address;
    sessions.add(this);
  }

  // ---- socket events ----

  data(chunk: Buffer): void {
    this.reads++;
    const current = this.current;
    if (current !== null) {
      current.clientData(chunk);
      return;
    }
    if (this.closing) return;
    if (this.headSince === 0) this.headSince = Date.now();
    if (this.buffer === null) this.lfChecked = 0;
    this.buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
    if (!this.authorizing) this.readRequests();
  }

  drain(): void {
    this.current?.clientDrain();
  }

  end(): void {
    this.peerEnded = true;
    if (this.current !== null) this.current.clientEnd();
    else if (!this.authorizing) this.endConnection();
  }

  close(): void {
    this.sessions.delete(this);
    const current = this.current;
    this.current = null;
    current?.clientGone();
  }

  // ---- ExchangeClient ----

  stash(chunk: Buffer): void {
    if (this.buffer === null) this.lfChecked = 0;
    this.buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
    this.conn.pause();
  }

  exchangeDone(keepClient: boolean): void {
    this.current = null;
    this.lastActive = Date.now();
    this.headSince = this.buffer !== null ? this.lastActive : 0;
    if (!keepClient || this.ctx.draining || this.peerEnded) {
      this.endConnection();
      return;
    }
    this.conn.resume();
    if (this.buffer !== null) this.readRequests();
  }

  /** Called by the proxy's sweep timer. */
  tick(now: number): void {
    if (this.reads !== this.readsSeen) {
      this.readsSeen = this.reads;
      this.lastActive = now;
    }
    const current = this.current;
    if (current !== null) {
      current.checkTimeout(now);
    } else if (this.authorizing || this.closing) {
      // A credential check is in flight, or we already said goodbye and wait for the close.
      if (this.closing && now - this.lastActive > this.ctx.idleTimeoutMs) this.conn.destroy();
    } else if (this.headSince !== 0) {
      if (now - this.headSince > this.ctx.headerTimeoutMs) this.headerTimedOut();
    } else if (now - this.lastActive > this.ctx.idleTimeoutMs) {
      this.conn.destroy();
    }
  }

  /** Slowloris, or a client that connected and never spoke: 408 when it sent part of a head, silence otherwise. */
  private headerTimedOut(): void {
    const partial = this.buffer;
    if (partial === null || partial.length === 0) {
      this.conn.destroy();
      return;
    }
    this.buffer = null;
    const info = this.newInfo("-", "http");
    const text = "The request head did not arrive in time.";
    const bytes = simplePage(408, "Request timeout", text, info.requestId, false);
    this.conn.write(bytes);
    writeRecord(this.ctx, toRecord(info, 408, "error", partial.length, bytes.byteLength));
    this.endConnection();
  }

  /** stop(): idle connections go now, busy ones after their answer (exchangeDone sees draining). */
  drainIfIdle(): void {
    if (this.current === null && !this.authorizing) this.endConnection();
  }

  private endConnection(): void {
    this.closing = true;
    this.buffer = null;
    this.conn.end();
  }

  isTunnel(): boolean {
    return this.current instanceof Tunnel;
  }

  // ---- requests ----

  private readRequests(): void {
    while (this.buffer !== null && this.current === null && !this.authorizing && !this.closing) {
      const buf = this.buffer;
      let start = 0;
      // RFC 9112 §2.2: ignore empty lines before a request line.
      while (start < buf.length && (buf[start] === 13 || buf[start] === 10)) start++;
      if (start === buf.length) {
        this.buffer = null;
        return;
      }
      if (this.headSince === 0) this.headSince = Date.now();
      const end = buf.indexOf(HEAD_END, start);
      if (end < 0 || end - start > MAX_HEAD_BYTES) {
        if (buf.length - start > MAX_HEAD_BYTES) {
          this.buffer = null;
          this.rejectMalformed(431, "The request head is larger than 64 KiB.", buf.length - start);
          return;
        }
        // A head ending its lines in a bare LF never gets its CRLFCRLF: refuse it now, not at the timeout.
        if (hasBareLf(buf, start + this.lfChecked)) {
          this.buffer = null;
          this.rejectMalformed(400, "Malformed request: bare LF.", buf.length - start);
          return;
        }
        if (start > 0) this.buffer = buf.subarray(start);
        this.lfChecked = buf.length - start;
        return;
      }
      this.lfChecked = 0;
      this.buffer = end + 4 < buf.length ? buf.subarray(end + 4) : null;
      this.headSince = this.buffer !== null ? Date.now() : 0;
      const headLength = end + 4 - start;
      let head: Head;
      try {
        head = parseRequestHead(buf.toString("latin1", start, end));
      } catch (error) {
        const status = error instanceof HeadError && error.status === 431 ? 431 : 400;
        this.rejectMalformed(status, `Malformed request: ${(error as Error).message}.`, headLength);
        return;
      }
      this.handleRequest(head, headLength);
    }
  }

  private newInfo(method: string, scheme: "http" | "connect"): RequestInfo {
    return {
      requestId: this.ctx.nextRequestId(),
      startedAt: Date.now(),
      startedMono: performance.now(),
      client: this.clientAddress,
      method,
      scheme,
      host: "",
      port: 0,
    };
  }

  private handleRequest(head: Head, headLength: number): void {
    const isConnect = head.method === "CONNECT";
    const info = this.newInfo(head.method, isConnect ? "connect" : "http");
    let target: ProxyTarget | null = null;
    if (isConnect) {
      const hostPort = parseAuthority(head.target, 0);
      if (hostPort === null) {
        this.answer(info, headLength, refuseBadConnect(info.requestId), false);
        return;
      }
      info.host = hostPort.host;
      info.port = hostPort.port;
    } else {
      target = parseAbsoluteTarget(head.target);
      if (target === null) {
        this.answer(info, headLength, refuseNotProxyRequest(head.target, info.requestId), false);
        return;
      }
      info.host = target.host;
      info.port = target.port;
      info.path = target.path;
    }

    const policy = this.ctx.policy;
    if (policy === null) {
      const keep = this.canKeep(head);
      this.answer(info, headLength, refuseNoPolicy(isConnect, info.requestId, keep), keep);
      return;
    }
    const compiled = policy.compiled;
    if (!compiled.includeQuery && info.path !== undefined) {
      const q = info.path.indexOf("?");
      if (q >= 0) info.path = info.path.slice(0, q);
    }
    if (info.path !== undefined && info.path.length > 4096) info.path = info.path.slice(0, 4096);

    const credentials = compiled.authRequired ? parseBasic(head.proxyAuthorization) : null;
    if (credentials === null) {
      this.decide(compiled, head, info, target, headLength, null);
      return;
    }
    this.authorizing = true;
    this.conn.pause();
    compiled
      .verifyCredentials(credentials.user, credentials.password)
      .catch(() => null)
      .then((user) => {
        this.authorizing = false;
        if (this.conn.closed) return;
        this.conn.resume();
        this.decide(compiled, head, info, target, headLength, user);
        if (this.current === null) this.readRequests();
      });
  }

  private decide(
    compiled: CompiledPolicy,
    head: Head,
    info: RequestInfo,
    target: ProxyTarget | null,
    headLength: number,
    user: VerifiedUser | null,
  ): void {
    if (user !== null) info.user = user.name;
    const decision = compiled.evaluate({
      client: this.clientAddress,
      user: user?.name,
      groups: user?.groups,
      method: head.method,
      scheme: info.scheme,
      host: info.host,
      port: info.port,
      path: target?.path,
      now: info.startedAt,
    });
    if (decision.rule !== undefined) info.rule = decision.rule.id;
    let action = decision.action;
    // Never forward for an anonymous client when the policy demands a login.
    if (action === "allow" && compiled.authRequired && user === null) action = "auth";

    if (action === "allow" && head.maxForwards === 0) {
      const keep = this.canKeep(head);
      this.answer(info, headLength, answerAtLastHop(head, info.requestId, keep), keep);
      return;
    }
    if (action === "allow") {
      const initial = this.buffer;
      this.buffer = null;
      if (target === null) {
        const tunnel = new Tunnel(this.ctx, this, info);
        this.current = tunnel;
        tunnel.start(initial);
      } else {
        const exchange = new HttpExchange(this.ctx, this, info, head, target, headLength);
        this.current = exchange;
        exchange.start(initial);
      }
      return;
    }
    const keep = this.canKeep(head);
    const url = target === null ? "" : `http://${target.authority}${info.path ?? "/"}`;
    const refusal = refuseDecision(compiled, decision, action, target === null, url, info.requestId, keep);
    this.answer(info, headLength, refusal, keep);
  }

  /** A refused request with a body we will not read, or a HEAD request (the page has a body), ends the connection. */
  private canKeep(head: Head): boolean {
    return (
      !this.ctx.draining &&
      wantsKeepAlive(head) &&
      head.contentLength <= 0 &&
      !head.chunked &&
      head.method !== "HEAD"
    );
  }

  private answer(info: RequestInfo, headLength: number, refusal: Refusal, keep: boolean): void {
    this.conn.write(refusal.bytes);
    const record = toRecord(info, refusal.status, refusal.action, headLength, refusal.bytes.byteLength);
    writeRecord(this.ctx, record);
    if (!keep) this.endConnection();
  }

  private rejectMalformed(status: 400 | 431, text: string, bytesIn: number): void {
    const info = this.newInfo("-", "http");
    const bytes = simplePage(
      status,
      status === 431 ? "Request head too large" : "Bad request",
      text,
      info.requestId,
      false,
    );
    this.conn.write(bytes);
    writeRecord(this.ctx, toRecord(info, status, "error", bytesIn, bytes.byteLength));
    this.endConnection();
  }
}

/** True when buf[from..] holds a LF not preceded by CR (buf[from - 1] counts). */
function hasBareLf(buf: Buffer, from: number): boolean {
  for (let i = buf.indexOf(10, from); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (i === 0 || buf[i - 1] !== 13) return true;
  }
  return false;
}
