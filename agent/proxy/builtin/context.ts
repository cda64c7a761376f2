// What every connection of one proxy instance shares: the current policy, the sinks, timeouts,
// the upstream pool and the socket factory. The proxy core reaches Bun only through `connect`.

import { clipLogText, LOG_FIELD_MAX, type LogRecord } from "../../../protocol/wire";
import type { ConnectAttempt, TcpConnection } from "../../platform/tcp";
import type { AccessLogSink, EventLogger } from "../../ports";
import type { ActivePolicy } from "../types";
import type { AuthLimiter } from "./auth-limiter";
import type { DestinationGuard } from "./destination-guard";
import type { UpstreamPool } from "./upstream-pool";

export interface ProxyContext {
  /** Read once per request: a swap affects only requests that arrive after it. */
  policy: ActivePolicy | null;
  readonly sink: AccessLogSink;
  readonly events: EventLogger;
  readonly pool: UpstreamPool;
  readonly upstreamTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** From a connection's accept (or a request's first byte) to the end of its head: 408 after. */
  readonly headerTimeoutMs: number;
  /** A request body that makes no progress for this long is cut off (408, or the exchange aborted). */
  readonly bodyTimeoutMs: number;
  /** A CONNECT tunnel with no bytes either way for this long is closed. */
  readonly tunnelIdleTimeoutMs: number;
  /** Judges every address before it is connected to (destination-guard.ts). */
  readonly guard: DestinationGuard;
  /** Password derives per client address (auth-limiter.ts). */
  readonly authLimiter: AuthLimiter;
  /** Open CONNECT (and upgraded) tunnels, for the metrics. */
  readonly activity: { tunnels: number };
  /** Set by stop(): answers say Connection: close and idle connections go. */
  draining: boolean;
  nextRequestId(): string;
  connect(
    host: string,
    port: number,
    onOpen: (connection: TcpConnection) => void,
    onFail: (error: Error) => void,
  ): ConnectAttempt;
}

export function writeRecord(ctx: ProxyContext, record: LogRecord): void {
  try {
    ctx.sink.write(record);
  } catch (error) {
    ctx.events.emit("proxy.log_sink_failed", { error: String(error) });
  }
}

/** The facts a finished request leaves behind; turned into a LogRecord once. */
export interface RequestInfo {
  requestId: string;
  /** Epoch ms and a monotonic stamp taken when the head arrived. */
  startedAt: number;
  startedMono: number;
  client: string;
  user?: string;
  method: string;
  scheme: "http" | "connect";
  host: string;
  port: number;
  path?: string;
  rule?: string;
  /** The address the destination guard allowed; the proxy connects to exactly this, never the name. */
  address?: string;
  /** CONNECT: the ClientHello's server name, and whether it carried encrypted_client_hello. */
  sni?: string;
  ech?: boolean;
}

let isoSecond = -1;
let isoPrefix = "";

/** toISOString() with the date part cached per second: it ran once per request. */
function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const frac = ms - second * 1000;
  return `${isoPrefix}${frac < 10 ? "00" : frac < 100 ? "0" : ""}${frac}Z`;
}

/** Every text field is cut to what the master accepts (LOG_FIELD_MAX), so no record can fail a chunk. */
export function toRecord(
  info: RequestInfo,
  status: number,
  action: LogRecord["action"],
  bytesIn: number,
  bytesOut: number,
): LogRecord {
  const record: LogRecord = {
    ts: isoTime(info.startedAt),
    client: clipLogText(info.client, LOG_FIELD_MAX.client),
    method: clipLogText(info.method, LOG_FIELD_MAX.method),
    scheme: info.scheme,
    host: clipLogText(info.host, LOG_FIELD_MAX.host),
    port: info.port,
    status,
    action,
    bytesIn,
    bytesOut,
    durationMs: Math.max(0, Math.round((performance.now() - info.startedMono) * 1000) / 1000),
    requestId: clipLogText(info.requestId, LOG_FIELD_MAX.requestId),
  };
  if (info.user !== undefined) record.user = clipLogText(info.user, LOG_FIELD_MAX.user);
  if (info.path !== undefined) record.path = clipLogText(info.path, LOG_FIELD_MAX.path);
  if (info.rule !== undefined) record.rule = clipLogText(info.rule, LOG_FIELD_MAX.rule);
  if (info.sni !== undefined) record.sni = clipLogText(info.sni, LOG_FIELD_MAX.sni);
  if (info.ech) record.ech = true;
  return record;
}
