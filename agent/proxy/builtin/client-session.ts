// One client connection: reads request heads, judges each request against the policy current at
// its arrival, and hands it to an HttpExchange or a Tunnel. Requests are served one at a time;
// pipelined bytes wait (reads paused) until the answer before them is done.
// Timeouts are checked by the proxy's sweep (tick), never by a timer per connection: a head must be
// complete headerTimeoutMs after the connection opened or the request's first byte came (slowloris),
// and a connection idle between requests closes after idleTimeoutMs.
// Backpressure: while the client has answers queued that it has not read (the socket's buffer is
// full), no further request is read or answered; a client that never reads stops being read from.
// Cheap refusals first: the access list before any password hash; per-address derive limits
// (auth-limiter.ts); MAX_REFUSALS_IN_ROW refusals in a row end a keep-alive connection.
// The destination guard (destination-guard.ts) judges every allowed request's resolved address.
// One file past 300 lines: this is the proxy's per-request hot path (head parse → judge → hand-off)
// over one connection's state; it is kept whole on purpose (see docs/proxy.md, the proxy bench).

import { parseIpInto } from "../../../protocol/policy/cidr";
import type { CompiledPolicy, RequestFacts, VerifiedUser } from "../../../protocol/policy/types";
import type { TcpConnection, TcpHandlers } from "../../platform/tcp";
import { type ProxyContext, type RequestInfo, toRecord, writeRecord } from "./context";
import { type GuardVerdict, normalizeHost } from "./destination-guard";
import { type ExchangeClient, HttpExchange } from "./exchange";
import { type Head, HeadError, MAX_HEAD_BYTES, parseRequestHead, wantsKeepAlive } from "./http-head";
import { simplePage } from "./pages";
import {
  answerAtLastHop,
  parseBasic,
  type Refusal,
  refuseAuthLimited,
  refuseBadConnect,
  refuseDecision,
  refuseDestination,
  refuseHostSyntax,
  refuseNoPolicy,
  refuseNotProxyRequest,
} from "./refusals";
import { type ProxyTarget, parseAbsoluteTarget, parseAuthority } from "./target";
import { type SniJudge, Tunnel } from "./tunnel";
import type { Upstream } from "./upstream-pool";

const HEAD_END = Buffer.from("\r\n\r\n");
/** A keep-alive connection that got this many refusals in a row (no request allowed between) is closed. */
export const MAX_REFUSALS_IN_ROW = 100;
const ipScratch = new Uint32Array(4);

export class ClientSession implements TcpHandlers, ExchangeClient {
  private current: HttpExchange | Tunnel | null = null;
  private buffer: Buffer | null = null;
  /** Bytes of an incomplete head in `buffer` already checked for a bare LF (each is checked once). */
  private lfChecked = 0;
  /** A credential check or a name resolution is in flight: reads wait. */
  private authorizing = false;
  /** Answers are queued that the client has not read: nothing more is read until drain(). */
  private writeBlocked = false;
  private refusalsInRow = 0;
  private peerEnded = false;
  /** We sent (or are sending) FIN: whatever the client still sends is dropped, never parsed. */
  private closing = false;
  /** Bumped per read; the sweep compares it with what it saw last time instead of a clock read per chunk. */
  private reads = 0;
  private readsSeen = 0;
  private lastActive = performance.now();
  /** When the head now awaited started (accept or its first byte); 0 while idle between requests or busy. */
  private headSince = performance.now();
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
    if (this.headSince === 0) this.headSince = performance.now();
    if (this.buffer === null) this.lfChecked = 0;
    this.buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
    if (!this.authorizing && !this.writeBlocked) this.readRequests();
  }

  drain(): void {
    if (this.current !== null) {
      this.current.clientDrain();
    } else if (this.writeBlocked) {
      this.writeBlocked = false;
      if (this.closing || this.authorizing) return;
      this.conn.resume();
      this.readRequests();
    }
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
    this.lastActive = performance.now();
    this.headSince = this.buffer !== null ? this.lastActive : 0;
    if (!keepClient || this.ctx.draining || this.peerEnded) {
      this.endConnection();
      return;
    }
    if (this.conn.backlogged) {
      // The answer is not read yet: the next request waits for drain().
      this.blockReads();
      return;
    }
    this.conn.resume();
    if (this.buffer !== null) this.readRequests();
  }

  upgraded(upstream: Upstream, head: Buffer, fromUpstream: Buffer | null, info: RequestInfo): void {
    const tunnel = new Tunnel(this.ctx, this, info);
    this.current = tunnel;
    const fromClient = this.buffer;
    this.buffer = null;
    tunnel.adopt(upstream, head, fromUpstream, fromClient);
  }

  private blockReads(): void {
    this.writeBlocked = true;
    this.conn.pause();
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
    // A client that does not read its last answer is not read from either (the sweep closes it).
    if (this.conn.backlogged) this.conn.pause();
  }

  isTunnel(): boolean {
    return this.current instanceof Tunnel;
  }

  // ---- requests ----

  private readRequests(): void {
    while (
      this.buffer !== null &&
      this.current === null &&
      !this.authorizing &&
      !this.closing &&
      !this.writeBlocked
    ) {
      const buf = this.buffer;
      let start = 0;
      // RFC 9112 §2.2: ignore empty lines before a request line.
      while (start < buf.length && (buf[start] === 13 || buf[start] === 10)) start++;
      if (start === buf.length) {
        this.buffer = null;
        return;
      }
      if (this.headSince === 0) this.headSince = performance.now();
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
      this.headSince = this.buffer !== null ? performance.now() : 0;
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
    // IP literals in any spelling (2130706433, 0x7f.1, [::ffff:127.0.0.1]) are judged and logged as one address.
    const host = normalizeHost(info.host);
    if (host === null) {
      this.answer(info, headLength, refuseHostSyntax(info.host, isConnect, info.requestId), false);
      return;
    }
    info.host = host;

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

    // A client outside the access list is refused by decide() without its password being hashed.
    const credentials =
      compiled.authRequired && compiled.clientAllowed(this.clientAddress)
        ? parseBasic(head.proxyAuthorization)
        : null;
    if (credentials === null) {
      this.decide(compiled, head, info, target, headLength, null);
      return;
    }
    this.authorizing = true;
    this.conn.pause();
    const gate = this.ctx.authLimiter.gate(this.clientAddress);
    compiled
      .verifyCredentials(credentials.user, credentials.password, gate)
      .catch(() => null)
      .then((user) => {
        this.authorizing = false;
        if (this.conn.closed) return;
        this.conn.resume();
        if (user === null && gate.limited) {
          info.rule = "guard:auth-limit";
          const keep = this.canKeep(head);
          const retryAfter = this.ctx.authLimiter.retryAfterSeconds(this.clientAddress);
          this.answer(info, headLength, refuseAuthLimited(isConnect, info.requestId, retryAfter, keep), keep);
        } else {
          this.decide(compiled, head, info, target, headLength, user);
        }
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
    const facts: RequestFacts = {
      client: this.clientAddress,
      user: user?.name,
      groups: user?.groups,
      method: head.method,
      scheme: info.scheme,
      host: info.host,
      port: info.port,
      path: target?.path,
      now: info.startedAt,
    };
    const decision = compiled.evaluate(facts);
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
      this.refusalsInRow = 0;
      const verdict = this.ctx.guard.judge(compiled.destinations, target === null, info.host, info.port);
      if (!(verdict instanceof Promise)) {
        this.forward(compiled, facts, head, info, target, headLength, verdict);
        return;
      }
      // A name: one resolution, then the same judgement on the address it gave.
      this.authorizing = true;
      this.conn.pause();
      void verdict.then((resolved) => {
        this.authorizing = false;
        if (this.conn.closed) return;
        this.conn.resume();
        this.forward(compiled, facts, head, info, target, headLength, resolved);
        if (this.current === null) this.readRequests();
      });
      return;
    }
    const keep = this.canKeep(head);
    const url = target === null ? "" : `http://${target.authority}${info.path ?? "/"}`;
    const refusal = refuseDecision(compiled, decision, action, target === null, url, info.requestId, keep);
    this.answer(info, headLength, refusal, keep);
  }

  /** Connects to the address the guard allowed (an exchange or a tunnel), or answers its refusal. */
  private forward(
    compiled: CompiledPolicy,
    facts: RequestFacts,
    head: Head,
    info: RequestInfo,
    target: ProxyTarget | null,
    headLength: number,
    verdict: GuardVerdict,
  ): void {
    if (!verdict.ok) {
      info.rule = verdict.rule;
      const keep = this.canKeep(head);
      this.answer(info, headLength, refuseDestination(verdict, target === null, info.requestId, keep), keep);
      return;
    }
    info.address = verdict.address;
    const initial = this.buffer;
    this.buffer = null;
    if (target === null) {
      const tunnel = new Tunnel(this.ctx, this, info, sniJudge(compiled, facts));
      this.current = tunnel;
      tunnel.start(initial);
    } else {
      const exchange = new HttpExchange(this.ctx, this, info, head, target, headLength);
      this.current = exchange;
      exchange.start(initial);
    }
  }

  /** A refused request with a body we will not read, or a HEAD request (the page has a body), ends the connection. */
  private canKeep(head: Head): boolean {
    return (
      !this.ctx.draining &&
      this.refusalsInRow + 1 < MAX_REFUSALS_IN_ROW &&
      wantsKeepAlive(head) &&
      head.contentLength <= 0 &&
      !head.chunked &&
      head.method !== "HEAD"
    );
  }

  private answer(info: RequestInfo, headLength: number, refusal: Refusal, keep: boolean): void {
    const flushed = this.conn.write(refusal.bytes);
    this.refusalsInRow++;
    const record = toRecord(info, refusal.status, refusal.action, headLength, refusal.bytes.byteLength);
    writeRecord(this.ctx, record);
    if (!keep) this.endConnection();
    else if (!flushed) this.blockReads();
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

/**
 * The policy's say on a tunnel's TLS server name: a name other than the CONNECT host is judged
 * like a request to it (so an IP-literal CONNECT or an allowed host cannot carry a blocked name),
 * and a mismatch is refused when `tls.sniMismatch` is "block". Returns the refusing rule or null.
 */
function sniJudge(compiled: CompiledPolicy, facts: RequestFacts): SniJudge {
  return (sni) => {
    if (sni === undefined || sni === facts.host) return null;
    const decision = compiled.evaluate({ ...facts, host: sni });
    if (decision.action !== "allow") return decision.rule?.id ?? `sni:${decision.reason}`;
    const literal = parseIpInto(facts.host, ipScratch) !== 0;
    if (!literal && compiled.destinations.sniMismatch === "block") return "tls:sni-mismatch";
    return null;
  };
}

/** True when buf[from..] holds a LF not preceded by CR (buf[from - 1] counts). */
function hasBareLf(buf: Buffer, from: number): boolean {
  for (let i = buf.indexOf(10, from); i >= 0; i = buf.indexOf(10, i + 1)) {
    if (i === 0 || buf[i - 1] !== 13) return true;
  }
  return false;
}
