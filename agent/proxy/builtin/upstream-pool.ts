// Idle keep-alive connections to origins, per "host:port". LIFO, so the warmest socket is reused
// and the cold ones age out in the sweep.

import type { TcpConnection, TcpHandlers } from "../../platform/tcp";

/** Whoever currently uses an upstream connection (an HTTP exchange or a tunnel). */
export interface UpstreamOwner {
  upstreamData(chunk: Buffer): void;
  upstreamDrain(): void;
  upstreamEnd(): void;
  upstreamClose(error?: Error): void;
}

const MAX_IDLE_PER_KEY = 256;

export class Upstream implements TcpHandlers {
  owner: UpstreamOwner | null = null;
  idleSince = 0;
  /** Set once it has carried a request: a failure before any answer may then be a stale socket. */
  reused = false;

  constructor(
    readonly key: string,
    readonly conn: TcpConnection,
    private readonly pool: UpstreamPool,
  ) {
    conn.handlers = this;
  }

  data(chunk: Buffer): void {
    if (this.owner !== null) this.owner.upstreamData(chunk);
    // Bytes on an idle connection break framing: never hand that socket out again.
    else this.conn.destroy();
  }

  drain(): void {
    this.owner?.upstreamDrain();
  }

  end(): void {
    if (this.owner !== null) this.owner.upstreamEnd();
    else this.conn.destroy();
  }

  close(error?: Error): void {
    this.pool.forget(this);
    const owner = this.owner;
    this.owner = null;
    owner?.upstreamClose(error);
  }
}

export class UpstreamPool {
  private readonly idle = new Map<string, Upstream[]>();

  /** An idle connection for this key, or undefined. The caller becomes its owner. */
  acquire(key: string, owner: UpstreamOwner): Upstream | undefined {
    const list = this.idle.get(key);
    if (list === undefined) return undefined;
    while (list.length > 0) {
      const upstream = list.pop()!;
      if (upstream.conn.closed) continue;
      upstream.owner = owner;
      upstream.reused = true;
      upstream.conn.resume();
      return upstream;
    }
    return undefined;
  }

  release(upstream: Upstream, now: number): void {
    upstream.owner = null;
    if (upstream.conn.closed) return;
    let list = this.idle.get(upstream.key);
    if (list === undefined) {
      list = [];
      this.idle.set(upstream.key, list);
    }
    if (list.length >= MAX_IDLE_PER_KEY) {
      upstream.conn.destroy();
      return;
    }
    upstream.idleSince = now;
    list.push(upstream);
  }

  forget(upstream: Upstream): void {
    const list = this.idle.get(upstream.key);
    if (list === undefined) return;
    const i = list.indexOf(upstream);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.idle.delete(upstream.key);
  }

  sweep(now: number, maxIdleMs: number): void {
    for (const [key, list] of this.idle) {
      // Oldest first: stop at the first one still fresh.
      let expired = 0;
      while (expired < list.length && now - list[expired]!.idleSince > maxIdleMs) expired++;
      if (expired === 0) continue;
      const gone = list.splice(0, expired);
      if (list.length === 0) this.idle.delete(key);
      for (const upstream of gone) upstream.conn.destroy();
    }
  }

  closeAll(): void {
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    for (const upstream of all) upstream.conn.destroy();
  }
}
