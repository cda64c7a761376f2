// The ports every part of the agent is handed instead of reaching for the runtime: the network
// (`FetchLike`), time (`Clock`), the event log and the access-log sink. Production values:
// globalThis.fetch, `systemClock` (clock.ts), `EventLog` (events.ts), the disk spool; tests pass
// the fakes in test/agent/fakes/.
import type { LogRecord } from "../protocol/wire";

/** The part of `fetch` the agent uses; plain functions satisfy it in tests. */
export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

export interface Clock {
  /** Epoch milliseconds: for timestamps, never for timeouts (the wall clock may step). */
  now(): number;
  /**
   * Milliseconds on a clock that never steps (performance.now()), for deadlines and intervals.
   * Fakes may leave it out; their now() is then taken as monotonic.
   */
  monotonic?(): number;
  /** Resolves after `ms` or as soon as `signal` aborts (never rejects). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Structured event log (events.log + stderr): `emit("proxy.listening", { listen })`. */
export interface EventLogger {
  emit(type: string, fields?: Record<string, unknown>): void;
}

/** Where every finished request or tunnel leaves one access-log record (the spool, or memory in tests). */
export interface AccessLogSink {
  write(record: LogRecord): void;
}
