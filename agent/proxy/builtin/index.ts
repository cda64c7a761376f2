// The built-in forward proxy: the agent's default ProxyDriver. docs/proxy.md is the user-facing side.
//
// Why raw TCP (Bun.listen / Bun.connect, agent/platform/tcp.ts) and a small HTTP/1.1 parser instead
// of Bun.serve or node:http: a forward proxy needs absolute-form targets, CONNECT, hop-by-hop control
// and byte-exact streaming with backpressure; Bun.serve exposes none of that, and node:http in Bun
// costs ~40% of the throughput (measured here: Bun.serve ~22k req/s, node:http ~14k).
//
// Where the CPU goes (test/bench/proxy.bench.mjs, 1M-domain policy, access log through the disk
// spool, wrk -t2 -c50, 2 shared cores; CPU time per request, the figure that does not depend on how
// busy the machine is): builtin ~21-22 us vs Squid 5.7 ~45 us (2.1x). A bare Bun byte pipe needs
// ~11 us, nearly all of it kernel: the two loopback send() calls each run the receiver's TCP stack
// and wake-up inline (perf: tcp_sendmsg -> loopback -> sock_def_readable). strace shows the minimum
// syscalls per request (2 recvfrom, 2 sendto, epoll_wait batched ~20 events per call). On top of
// the pipe: ~4-5 us for HTTP parsing, policy and the LogRecord (JS + Bun natives + GC), and ~4 us
// for the spool (write() was ~1 us more before frames were cut from a shared slab; the rest is its
// 200 ms append+fsync and async gzip of each 5,000-record chunk, sealed from the lines it keeps in
// memory — it used to re-read and CRC-check the segment on the main thread). Skipping the
// response head rewrite altogether saved nothing measurable (< 0.5 us, within noise), so heads stay
// parsed and rebuilt as strings. Throughput ratio in the bench: 1.9-2.0x (the CPU ratio, bounded by
// 2 cores shared with wrk and the origin); p99 is still worse than Squid's (3.4-3.7 vs 3.0-3.1 ms):
// the spool's CPU on the one event-loop thread (p99 1.3-1.6 ms with logging off); see docs/proxy.md.
//
// Hot-path rules: no per-request timers and no clock read per chunk (one sweep timer checks every
// timeout from counters: connect, response, keep-alive idle, header, body, tunnel idle), no regex
// compiled per request, heads decoded once as latin1, one socket write per answer where possible.
// Limits against floods and slow clients: a head must be complete headerTimeoutMs after the
// connection opened or the request's first byte (slowloris gets 408), a request body that stalls
// for bodyTimeoutMs is cut off, a CONNECT tunnel idle both ways for tunnelIdleTimeoutMs is closed,
// and client connections past maxConnections are closed at accept.

import type { TcpConnection, TcpHandlers } from "../../platform/tcp";
import { connectTcp, listenTcp, localAddresses, resolveHost, type TcpListener } from "../../platform/tcp";
import type { AccessLogSink, EventLogger } from "../../ports";
import type { ActivePolicy, ProxyDriver } from "../types";
import { AuthLimiter } from "./auth-limiter";
import { ClientSession } from "./client-session";
import type { ProxyContext } from "./context";
import { DestinationGuard, type Resolver, selfAddresses } from "./destination-guard";
import { createRequestIds } from "./request-id";
import { UpstreamPool } from "./upstream-pool";

export interface BuiltinProxyOptions {
  host: string;
  port: number;
  sink: AccessLogSink;
  events: EventLogger;
  /** Time the origin has to start its answer once the request went out (504 after). Default 30 s. */
  upstreamTimeoutMs?: number;
  /** Time to open the TCP connection to the origin (502 after). Default 10 s. */
  connectTimeoutMs?: number;
  /** Idle keep-alive client connections and pooled upstreams close after this. Default 60 s. */
  idleTimeoutMs?: number;
  /** A request head must be complete this long after the connection opened or its first byte came (slowloris). Default 15 s. */
  headerTimeoutMs?: number;
  /** A request body with no progress for this long is cut off. Default 60 s. */
  bodyTimeoutMs?: number;
  /** A CONNECT tunnel with no bytes either way for this long is closed. Default 10 min. */
  tunnelIdleTimeoutMs?: number;
  /** Client connections beyond this are closed as soon as they are accepted. Default 10,000. */
  maxConnections?: number;
  /** Opens origin connections (tests inject one that never leaves loopback). Default: Bun.connect. */
  connect?: ProxyContext["connect"];
  /** Resolves names for the destination guard. Default: Bun.dns.lookup. */
  resolve?: Resolver;
}

export const PROXY_DEFAULTS = {
  upstreamTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
  headerTimeoutMs: 15_000,
  bodyTimeoutMs: 60_000,
  tunnelIdleTimeoutMs: 600_000,
  maxConnections: 10_000,
} as const;

const REFUSED: TcpHandlers = { data() {}, drain() {}, end() {}, close() {} };

const DRIVER_VERSION = "fleetgate-builtin/1.0";

export function createBuiltinProxy(options: BuiltinProxyOptions): ProxyDriver {
  const sessions = new Set<ClientSession>();
  const pool = new UpstreamPool();
  const ctx: ProxyContext = {
    policy: null,
    sink: options.sink,
    events: options.events,
    pool,
    upstreamTimeoutMs: options.upstreamTimeoutMs ?? PROXY_DEFAULTS.upstreamTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? PROXY_DEFAULTS.connectTimeoutMs,
    idleTimeoutMs: options.idleTimeoutMs ?? PROXY_DEFAULTS.idleTimeoutMs,
    headerTimeoutMs: options.headerTimeoutMs ?? PROXY_DEFAULTS.headerTimeoutMs,
    bodyTimeoutMs: options.bodyTimeoutMs ?? PROXY_DEFAULTS.bodyTimeoutMs,
    tunnelIdleTimeoutMs: options.tunnelIdleTimeoutMs ?? PROXY_DEFAULTS.tunnelIdleTimeoutMs,
    guard: new DestinationGuard(options.resolve ?? resolveHost),
    authLimiter: new AuthLimiter(),
    activity: { tunnels: 0 },
    draining: false,
    nextRequestId: createRequestIds(),
    connect: options.connect ?? connectTcp,
  };
  const maxConnections = Math.max(1, options.maxConnections ?? PROXY_DEFAULTS.maxConnections);
  let refused = 0;
  let refusedReportedAt = 0;
  let listener: TcpListener | null = null;
  let sweepTimer: ReturnType<typeof setInterval> | null = null;
  const shortest = Math.min(
    ctx.upstreamTimeoutMs,
    ctx.connectTimeoutMs,
    ctx.idleTimeoutMs,
    ctx.headerTimeoutMs,
    ctx.bodyTimeoutMs,
    ctx.tunnelIdleTimeoutMs,
  );
  // Every timeout is checked by this one sweep: they fire up to a quarter of the shortest late.
  const sweepEveryMs = Math.max(25, Math.min(1000, Math.floor(shortest / 4)));

  /** Over the cap the socket is closed before any parsing: a flood costs an accept and a close, never a file descriptor held. */
  function accept(conn: TcpConnection): TcpHandlers {
    if (sessions.size < maxConnections) return new ClientSession(ctx, conn, sessions);
    conn.destroy();
    refused++;
    const now = Date.now();
    if (now - refusedReportedAt >= 10_000) {
      refusedReportedAt = now;
      options.events.emit("proxy.connection_limit", { level: "warn", maxConnections, refused });
      refused = 0;
    }
    return REFUSED;
  }

  let selfSeenAt = 0;
  /** The node's own addresses (interfaces change: DHCP, VPNs), re-read every 30 s by the sweep. */
  function refreshSelf(now: number): void {
    if (listener === null) return;
    selfSeenAt = now;
    ctx.guard.setSelf(selfAddresses([listener.hostname, ...localAddresses()], listener.port));
  }

  function sweep(): void {
    // Monotonic: a wall-clock step (NTP, a VM resume) must not fire or suspend every timeout at once.
    const now = performance.now();
    if (now - selfSeenAt > 30_000) refreshSelf(now);
    for (const session of sessions) session.tick(now);
    pool.sweep(now, Math.min(ctx.idleTimeoutMs, 30_000));
  }

  function address(): string {
    if (listener === null) return `${options.host}:${options.port}`;
    const host = listener.hostname.includes(":") ? `[${listener.hostname}]` : listener.hostname;
    return `${host}:${listener.port}`;
  }

  return {
    kind: "builtin",

    async start() {
      if (listener !== null) return;
      ctx.draining = false;
      listener = listenTcp(options.host, options.port, accept);
      refreshSelf(performance.now());
      sweepTimer = setInterval(sweep, sweepEveryMs);
      options.events.emit("proxy.listening", { listen: address(), driver: "builtin" });
    },

    async applyPolicy(policy: ActivePolicy | null) {
      ctx.policy = policy;
      options.events.emit("proxy.policy_applied", {
        version: policy?.version ?? null,
        hash: policy?.hash ?? null,
      });
    },

    // deadlineMs: how long in-flight work may still run, in ms from now. An epoch timestamp
    // (anything past the year 2001) is taken as the absolute deadline instead.
    async stop(deadlineMs: number) {
      if (listener === null) return;
      const until = performance.now() + Math.max(0, deadlineMs > 1e12 ? deadlineMs - Date.now() : deadlineMs);
      listener.stop();
      ctx.draining = true;
      for (const session of sessions) session.drainIfIdle();
      while (sessions.size > 0 && performance.now() < until) {
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(50, Math.max(1, until - performance.now()))),
        );
      }
      const left = sessions.size;
      for (const session of sessions) session.conn.destroy();
      sessions.clear();
      pool.closeAll();
      if (sweepTimer !== null) clearInterval(sweepTimer);
      sweepTimer = null;
      listener = null;
      options.events.emit("proxy.stopped", { forcedConnections: left });
    },

    listenAddress: address,

    version: () => DRIVER_VERSION,

    activity: () => ({ connections: sessions.size, tunnels: ctx.activity.tunnels }),
  };
}
