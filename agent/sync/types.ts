import type { MasterKey, PolicyBundle, SpoolFigures } from "../../protocol/wire";
import type { MasterClient } from "../master/client";
import type { Clock, EventLogger } from "../ports";
import type { ProxyDriver } from "../proxy/types";
import type { CompileResult, PrepareBundle } from "./prepare";

/** What the loop needs from the state dir; the file-backed one is agent/state/state-dir.ts. */
export interface SyncStore {
  /** The cached bundle as stored (unparsed, untrusted), or null when there is none. */
  loadLastGood(): Promise<unknown | null>;
  /** Must be atomic and durable when it resolves. */
  saveLastGood(bundle: PolicyBundle | Uint8Array): Promise<void>;
  /** Persists a moved pin (key rotation); without it the move lasts until the agent restarts. */
  saveMasterKeys?(keys: { masterKey: MasterKey; nextMasterKey?: MasterKey }): Promise<void>;
}

export type { CompileResult };

/** What the running loop knows, handed to `onState` after every change (status, runtime.json). */
export interface SyncSnapshot {
  enforcing: "policy" | "fail-closed";
  appliedVersion: number | null;
  appliedHash: string | null;
  appliedAt: string | null;
  lastContactAt: string | null;
  lastError: string | null;
  /** Why the last bundle (from the master or the cache) was refused; cleared by the next apply from the master. */
  lastRefusal: string | null;
  master: "connecting" | "ok" | "unreachable" | "node-unknown";
}

export interface SyncOptions {
  /** The node's client for the master (URL, token, user agent): the same one the uploader uses. */
  master: MasterClient;
  masterKey: MasterKey;
  /** A next key announced earlier by the pinned one (credentials.json), trusted beside it. */
  nextMasterKey?: MasterKey;
  /** Long-poll wait the master offered at enrollment (0–55 s). */
  pollWaitSeconds: number;
  clock: Clock;
  /** Uniform in [0, 1); jitter source. */
  random: () => number;
  store: SyncStore;
  driver: ProxyDriver;
  events: EventLogger;
  /** Validates and compiles a policy: `compileWithEngine` in production, fakes in tests. */
  compile: (policy: unknown) => CompileResult;
  /**
   * The whole download-to-compiled pipeline (parse, verify, order, compile); default: on this thread
   * with `compile`. `run` passes the worker-backed one so a large policy never stalls the proxy.
   */
  prepare?: PrepareBundle;
  /** Spool figures for status reports; the durable spool plugs in here. */
  spoolFigures?: () => SpoolFigures;
  onState?: (snapshot: SyncSnapshot) => void;
  /** A successful exchange with the master (a 200/304 poll, a 204 status): the spool uploader retries now. */
  onMasterContact?: () => void;
  /** Every policy the proxy took (metrics: version, last apply time and duration). */
  onApplied?: (applied: { version: number; source: "cache" | "master"; durationMs: number }) => void;
  /** A poll or a status report that failed (metrics). */
  onSyncFailure?: (what: "poll" | "status") => void;
  /** Tunables, mostly for tests. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  nodeUnknownRetryMs?: number;
  /** How long a refused bundle's hash is polled with, before the master is asked for it again. */
  refusedRetryMs?: number;
  heartbeatMs?: number;
  /** At least this long between a status report and one sent because the spool figures changed. */
  spoolReportMinIntervalMs?: number;
}
