// One client connection: reads request heads, judges each request against the policy current at
// its arrival, and hands it to an HttpExchange or a Tunnel. Requests are served one at a time;
// pipelined bytes wait (reads paused) until the answer before them is done.

import type { CompiledPolicy, VerifiedUser } from "../../../protocol/policy/types";
import type { TcpConnection, TcpHandlers } from "../../platform/tcp";
import { type ProxyContext, type RequestInfo, toRecord, writeRecord } from "./context";
import { type ExchangeClient, HttpExchange } from "./exchange";
import { type Head, HeadError, MAX_HEAD_BYTES, parseRequestHead, wantsKeepAlive } from "./http-head";
import { blockPage, connectRefusal, simplePage } from "./pages";
import { type ProxyTarget, parseAbsoluteTarget, parseAuthority } from "./target";
import { Tunnel } from "./tunnel";

const HEAD_END = Buffer.from("\r\n\r\n");

export class ClientSession implements TcpHandlers, ExchangeClient {
  private current: HttpExchange | Tunnel | null = null;
  private buffer: Buffer | null = null;
  private authorizing = false;
  private peerEnded = false;
  /** We sent (or are sending) FIN: whatever the client still sends is dropped, never parsed. */
  private closing = false;
  private lastActive = Date.now();
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
    this.lastActive = Date.now();
    const current = this.current;
    if (current !== null) {
      current.clientData(chunk);
      return;
    }
    if (this.closing) return;
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
    this.buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
    this.conn.pause();
  }

  exchangeDone(keepClient: boolean): void {
    this.current = null;
    this.lastActive = Date.now();
    if (!keepClient || this.ctx.draining || this.peerEnded) {
      this.endConnection();
      return;
    }
    this.conn.resume();
    if (this.buffer !== null) this.readRequests();
  }

  /** Called by the proxy's sweep timer. */
  tick(now: number): void {
    const current = this.current;
    if (current !== null) current.checkTimeout(now);
    else if (!this.authorizing && now - this.lastActive > this.ctx.idleTimeoutMs) this.conn.destroy();
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
      const end = buf.indexOf(HEAD_END, start);
      if (end < 0 || end - start > MAX_HEAD_BYTES) {
        if (buf.length - start > MAX_HEAD_BYTES) {
          this.buffer = null;
          this.rejectMalformed(431, "The request head is larger than 64 KiB.", buf.length - start);
        } else if (start > 0) {
          this.buffer = buf.subarray(start);
        }
        return;
      }
      this.buffer = end + 4 < buf.length ? buf.subarray(end + 4) : null;
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
      if (hostPort === null || hostPort.port === 0) {
        const bytes = connectRefusal(400, "CONNECT needs host:port.", info.requestId);
        this.answer(info, 400, "error", headLength, bytes, false);
        return;
      }
      info.host = hostPort.host;
      info.port = hostPort.port;
    } else {
      target = parseAbsoluteTarget(head.target);
      if (target === null) {
        const text = head.target.startsWith("/")
          ? "This is a forward proxy: configure it as your HTTP proxy instead of opening it directly."
          : "Only http:// URLs can be requested through this proxy; HTTPS goes through CONNECT.";
        this.answer(
          info,
          400,
          "error",
          headLength,
          this.page(400, "Not a proxy request", text, info, false),
          false,
        );
        return;
      }
      info.host = target.host;
      info.port = target.port;
      info.path = target.path;
    }

    const policy = this.ctx.policy;
    if (policy === null) {
      const text =
        "This proxy node has not received a policy yet, so it forwards nothing. Try again shortly.";
      const keep = this.canKeep(head);
      const bytes = isConnect
        ? connectRefusal(503, text, info.requestId)
        : this.page(503, "No policy yet", text, info, keep);
      this.answer(info, 503, "error", headLength, bytes, keep);
      return;
    }
    const compiled = policy.compiled;
    if (!compiled.includeQuery && info.path !== undefined) {
      const q = info.path.indexOf("?");
      if (q >= 0) info.path = info.path.slice(0, q);
    }
    if (info.path !== undefined && info.path.length > 4096) info.path = info.path.slice(0, 4096);

    if (!compiled.authRequired) {
      this.decide(compiled, head, info, target, headLength, null);
      return;
    }
    const credentials = parseBasic(head.proxyAuthorization);
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

    const isConnect = target === null;
    const keep = this.canKeep(head);
    if (action === "auth") {
      const realm = compiled.realm.replace(/["\\]/g, "\\$&");
      const challenge = `Proxy-Authenticate: Basic realm="${realm}"\r\n`;
      const text = "This proxy needs your user name and password.";
      const bytes = isConnect
        ? connectRefusal(407, text, info.requestId, challenge)
        : this.page(407, "Proxy authentication required", text, info, keep, challenge);
      this.answer(info, 407, "auth", headLength, bytes, keep);
      return;
    }
    if (decision.reason === "access-list") {
      const text = "This proxy does not accept requests from your address.";
      const bytes = isConnect
        ? connectRefusal(403, text, info.requestId)
        : this.page(403, "Access denied", text, info, keep);
      this.answer(info, 403, "block", headLength, bytes, keep);
      return;
    }
    const bytes = isConnect
      ? connectRefusal(
          403,
          `Blocked by policy${decision.rule ? `: ${decision.rule.id}` : ""}.`,
          info.requestId,
        )
      : blockPage(compiled, decision, `http://${target.authority}${info.path ?? "/"}`, info.requestId, keep);
    this.answer(info, 403, "block", headLength, bytes, keep);
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

  private page(
    status: number,
    title: string,
    text: string,
    info: RequestInfo,
    keep: boolean,
    extraHeaders?: string,
  ): Uint8Array {
    return simplePage(status, title, text, info.requestId, keep, extraHeaders);
  }

  private answer(
    info: RequestInfo,
    status: number,
    action: "block" | "auth" | "error",
    headLength: number,
    bytes: Uint8Array,
    keep: boolean,
  ): void {
    this.conn.write(bytes);
    writeRecord(this.ctx, toRecord(info, status, action, headLength, bytes.byteLength));
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

function parseBasic(value: string): { user: string; password: string } | null {
  if (value.length < 7 || value.slice(0, 6).toLowerCase() !== "basic ") return null;
  let decoded: string;
  try {
    decoded = Buffer.from(value.slice(6).trim(), "base64").toString("utf8");
  } catch {
    return null;
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
