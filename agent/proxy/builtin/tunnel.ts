// A CONNECT tunnel: after "200 Connection Established" bytes flow both ways untouched (no TLS
// interception). Explicit data handlers with pause/resume carry the bytes — no stream piping —
// and a FIN on one side becomes a FIN on the other, so half-closed protocols still finish.
// A tunnel with no bytes either way for tunnelIdleTimeoutMs is closed (checked by the sweep from
// byte counters, so the data path reads no clock).

import type { ConnectAttempt } from "../../platform/tcp";
import { type ProxyContext, type RequestInfo, toRecord, writeRecord } from "./context";
import type { ExchangeClient } from "./exchange";
import { connectRefusal } from "./pages";
import { Upstream, type UpstreamOwner } from "./upstream-pool";

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

  constructor(
    private readonly ctx: ProxyContext,
    private readonly client: ExchangeClient,
    private readonly info: RequestInfo,
  ) {}

  start(initial: Buffer | null): void {
    if (initial !== null && initial.length > 0) this.clientData(initial);
    this.deadline = performance.now() + this.ctx.connectTimeoutMs;
    const key = `${this.info.host}:${this.info.port}`;
    this.attempt = this.ctx.connect(
      this.info.host,
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
    this.deadline = 0;
    this.quietSince = performance.now();
    this.client.conn.write(ESTABLISHED);
    if (this.pending.length > 0) {
      const out = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
      this.pending = [];
      upstream.conn.write(out);
    }
    if (this.clientEnded) upstream.conn.end();
    this.client.conn.resume();
  }

  private refuse(text: string): void {
    if (this.done) return;
    this.done = true;
    const answer = connectRefusal(502, text, this.info.requestId);
    this.client.conn.write(answer);
    writeRecord(this.ctx, toRecord(this.info, 502, "error", 0, 0));
    this.client.conn.resume();
    this.client.exchangeDone(!this.clientEnded && this.pending.length === 0);
  }

  checkTimeout(now: number): void {
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
    if (!this.upstream.conn.write(chunk)) this.client.conn.pause();
  }

  clientDrain(): void {
    this.upstream?.conn.resume();
  }

  clientEnd(): void {
    this.clientEnded = true;
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
    this.attempt?.cancel();
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) {
      upstream.owner = null;
      if (this.clientEnded && this.upstreamEnded && !abort) upstream.conn.end();
      else upstream.conn.destroy();
    }
    const status = this.established ? 200 : 0;
    const action = this.established ? "allow" : "error";
    writeRecord(this.ctx, toRecord(this.info, status, action, this.bytesIn, this.bytesOut));
    if (abort) this.client.conn.destroy();
    else this.client.conn.end();
  }
}
