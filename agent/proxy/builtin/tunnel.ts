// A CONNECT tunnel: after "200 Connection Established" bytes flow both ways untouched (no TLS
// interception). Explicit data handlers with pause/resume carry the bytes — no stream piping —
// and a FIN on one side becomes a FIN on the other, so half-closed protocols still finish.
// A tunnel with no bytes either way for tunnelIdleTimeoutMs is closed (checked by the sweep from
// byte counters, so the data path reads no clock).
// SNI peek: the client's first bytes are held (bounded, tls-sni.ts) until its TLS ClientHello is
// complete; the server name is logged and judged by the policy (a refused name gets a TLS
// access_denied alert and the tunnel closes before one byte reached the origin). A client that
// speaks something other than TLS passes as before; a ClientHello that stalls halfway is closed
// after headerTimeoutMs. A plain-HTTP Upgrade (WebSocket) becomes a tunnel through adopt().
// One file past 300 lines: both directions, half-close, idle sweep and the SNI peek act on one
// socket pair's state, and splitting them would put the per-byte path behind extra calls.

import type { ConnectAttempt } from "../../platform/tcp";
import { type ProxyContext, type RequestInfo, toRecord, writeRecord } from "./context";
import type { ExchangeClient } from "./exchange";
import { connectRefusal } from "./pages";
import { peekClientHello } from "./tls-sni";
import { Upstream, type UpstreamOwner } from "./upstream-pool";

/** Judges a ClientHello's server name: the refusing rule (logged), or null to let it pass. */
export type SniJudge = (sni: string | undefined) => string | null;

/** TLS alert, fatal, access_denied (RFC 8446 §6): what a client sees for a refused server name. */
const ACCESS_DENIED_ALERT = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31]);

const ESTABLISHED = Buffer.from(
  "HTTP/1.1 200 Connection Established\r\nVia: 1.1 fleetgate\r\n\r\n",
  "latin1",
);

export class Tunnel implements UpstreamOwner {
  private upstream: Upstream | null = null;
  private attempt: ConnectAttempt | null = null;
  private deadline = 0;
  private pending: Buffer[] = [];
  private established = false;
  private done = false;
  private clientEnded = false;
  private upstreamEnded = false;
  /** Client → origin payload bytes. */
  private bytesIn = 0;
  /** Origin → client payload bytes. */
  private bytesOut = 0;
  private movedSeen = 0;
  private quietSince = 0;
  /** 200 for CONNECT, 101 for an upgraded plain-HTTP request. */
  private status = 200;
  /** While the ClientHello is awaited: the client's bytes so far (not yet sent on). */
  private peeked: Buffer | null = null;
  private peekSince = 0;
  /** Counted in ctx.activity.tunnels from established until done. */
  private counted = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly client: ExchangeClient,
    private readonly info: RequestInfo,
    private readonly judgeSni: SniJudge | null = null,
  ) {}

  start(initial: Buffer | null): void {
    if (initial !== null && initial.length > 0) this.clientData(initial);
    this.deadline = performance.now() + this.ctx.connectTimeoutMs;
    const key = `${this.info.host}:${this.info.port}`;
    this.attempt = this.ctx.connect(
      this.info.address ?? this.info.host,
      this.info.port,
      (conn) => {
        this.attempt = null;
        const upstream = new Upstream(key, conn, this.ctx.pool);
        if (this.done) {
          conn.destroy();
          return;
        }
        upstream.owner = this;
        this.open(upstream);
      },
      (error) => {
        this.attempt = null;
        this.refuse(`Could not connect to ${key}: ${error.message}`);
      },
    );
  }

  private open(upstream: Upstream): void {
    this.upstream = upstream;
    this.established = true;
    this.count(1);
    this.deadline = 0;
    this.quietSince = performance.now();
    this.client.conn.write(ESTABLISHED);
    const early = this.pending.length === 0 ? null : Buffer.concat(this.pending);
    this.pending = [];
    if (this.judgeSni !== null) {
      this.peeked = Buffer.alloc(0);
      this.peekSince = this.quietSince;
      // Stays paused when the peek refused the tunnel or the upstream did not take the bytes.
      if (early !== null && !this.peek(early)) return;
    } else if (early !== null && !upstream.conn.write(early)) {
      return; // stays paused until the upstream drains
    }
    if (this.clientEnded && this.peeked === null) upstream.conn.end();
    this.client.conn.resume();
  }

  /**
   * Becomes the tunnel of a plain-HTTP request the origin upgraded (101): `head` goes to the client
   * first, then what the origin sent after it; `fromClient` is what the client sent after its head.
   */
  adopt(upstream: Upstream, head: Buffer, fromUpstream: Buffer | null, fromClient: Buffer | null): void {
    upstream.owner = this;
    this.upstream = upstream;
    this.established = true;
    this.count(1);
    this.status = 101;
    this.quietSince = performance.now();
    this.bytesOut += fromUpstream?.length ?? 0;
    this.client.conn.write(fromUpstream === null ? head : Buffer.concat([head, fromUpstream]));
    if (fromClient !== null && fromClient.length > 0) {
      this.bytesIn += fromClient.length;
      upstream.conn.write(fromClient);
    }
    this.client.conn.resume();
    upstream.conn.resume();
  }

  /** Adds client bytes to the held ClientHello and acts once it is judged; false when the client must stay paused. */
  private peek(chunk: Buffer): boolean {
    const held = this.peeked!.length === 0 ? chunk : Buffer.concat([this.peeked!, chunk]);
    const result = peekClientHello(held);
    if (result.kind === "more") {
      this.peeked = held;
      return true;
    }
    this.peeked = null;
    let refusedBy: string | null = null;
    if (result.kind === "hello") {
      if (result.sni !== undefined) this.info.sni = result.sni;
      if (result.ech) this.info.ech = true;
      refusedBy = this.judgeSni!(result.sni);
    } else if (result.kind === "bad") {
      this.ctx.events.emit("proxy.tls_refused", { requestId: this.info.requestId, reason: result.why });
      refusedBy = "tls:malformed";
    }
    if (refusedBy !== null) {
      this.refuseAfterPeek(refusedBy);
      return false;
    }
    const upstream = this.upstream!;
    const flushed = upstream.conn.write(held);
    if (!flushed) this.client.conn.pause();
    if (this.clientEnded) upstream.conn.end();
    return flushed;
  }

  /** The server name (or a malformed start) is refused: nothing reached the origin. */
  private refuseAfterPeek(rule: string): void {
    this.info.rule = rule;
    this.done = true;
    this.count(-1);
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) {
      upstream.owner = null;
      upstream.conn.destroy();
    }
    this.client.conn.write(ACCESS_DENIED_ALERT);
    writeRecord(this.ctx, toRecord(this.info, 403, "block", this.bytesIn, 0));
    // The session sends FIN after the alert and closes the connection if the client lingers.
    this.client.exchangeDone(false);
  }

  private refuse(text: string): void {
    if (this.done) return;
    this.done = true;
    this.count(-1);
    const answer = connectRefusal(502, text, this.info.requestId);
    this.client.conn.write(answer);
    writeRecord(this.ctx, toRecord(this.info, 502, "error", 0, 0));
    this.client.conn.resume();
    this.client.exchangeDone(!this.clientEnded && this.pending.length === 0);
  }

  checkTimeout(now: number): void {
    if (
      this.peeked !== null &&
      this.peeked.length > 0 &&
      !this.done &&
      now - this.peekSince > this.ctx.headerTimeoutMs
    ) {
      this.ctx.events.emit("proxy.tls_refused", {
        requestId: this.info.requestId,
        reason: "ClientHello timed out",
      });
      this.refuseAfterPeek("tls:timeout");
      return;
    }
    if (this.established) {
      const moved = this.bytesIn + this.bytesOut;
      if (moved !== this.movedSeen) {
        this.movedSeen = moved;
        this.quietSince = now;
      } else if (now - this.quietSince > this.ctx.tunnelIdleTimeoutMs && !this.done) {
        this.ctx.events.emit("proxy.tunnel_idle_closed", {
          requestId: this.info.requestId,
          target: `${this.info.host}:${this.info.port}`,
        });
        this.finish(true);
      }
      return;
    }
    if (this.deadline === 0 || now < this.deadline) return;
    this.attempt?.cancel();
    this.attempt = null;
    this.refuse(`Connecting to ${this.info.host}:${this.info.port} timed out.`);
  }

  clientData(chunk: Buffer): void {
    if (this.done) return;
    this.bytesIn += chunk.length;
    if (this.upstream === null) {
      this.pending.push(chunk);
      this.client.conn.pause();
      return;
    }
    if (this.peeked !== null) {
      this.peek(chunk);
      return;
    }
    if (!this.upstream.conn.write(chunk)) this.client.conn.pause();
  }

  clientDrain(): void {
    this.upstream?.conn.resume();
  }

  clientEnd(): void {
    this.clientEnded = true;
    if (this.peeked !== null && !this.done) {
      // FIN before the ClientHello was complete: nothing to judge when nothing came, else refused.
      if (this.peeked.length > 0) {
        this.refuseAfterPeek("tls:malformed");
        return;
      }
      this.peeked = null;
    }
    if (this.upstream !== null) this.upstream.conn.end();
    if (this.upstreamEnded) this.finish();
  }

  clientGone(): void {
    this.finish();
  }

  upstreamData(chunk: Buffer): void {
    this.bytesOut += chunk.length;
    if (!this.client.conn.write(chunk)) this.upstream?.conn.pause();
  }

  upstreamDrain(): void {
    this.client.conn.resume();
  }

  upstreamEnd(): void {
    this.upstreamEnded = true;
    this.client.conn.end();
    if (this.clientEnded) this.finish();
  }

  upstreamClose(): void {
    this.upstream = null;
    // Let what is queued for the client go out, then FIN; the session closes on the client's close.
    this.client.conn.end();
    this.finish();
  }

  /** `abort`: close both sides now (idle timeout) instead of letting queued bytes go out first. */
  private finish(abort = false): void {
    if (this.done) return;
    this.done = true;
    this.count(-1);
    this.attempt?.cancel();
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) {
      upstream.owner = null;
      if (this.clientEnded && this.upstreamEnded && !abort) upstream.conn.end();
      else upstream.conn.destroy();
    }
    const status = this.established ? this.status : 0;
    const action = this.established ? "allow" : "error";
    writeRecord(this.ctx, toRecord(this.info, status, action, this.bytesIn, this.bytesOut));
    if (abort) this.client.conn.destroy();
    else this.client.conn.end();
  }

  private count(delta: 1 | -1): void {
    if (this.counted === (delta === 1)) return;
    this.counted = delta === 1;
    this.ctx.activity.tunnels += delta;
  }
}
