import type { MasterFailure } from "../master/client";
import { backoffDelay } from "./backoff";
import { PolicyPath } from "./policy-path";
import { StatusReporter } from "./status-reporter";
import type { SyncOptions, SyncSnapshot } from "./types";

// A poll may be held for `wait` seconds; give the network this much more before calling it dead.
const POLL_GRACE_MS = 20_000;
const MIN_POLL_INTERVAL_MS = 1_000;
// While an ACK/NACK waits after a failed send, polls are held at most this long (StatusReporter.retryPending).
const ACK_RETRY_WAIT_SECONDS = 5;
// The backoff's ceiling bounds how long a node takes to notice a master that came back: after an
// outage longer than ~30 s every node sleeps somewhere in [0, 30 s) when the master returns, so
// the fleet is back within 30 s, ~1/30 of it per second (no stampede). With 60 s a node whose
// first attempt after the restart failed again (a master still warming up) could take two minutes
// (docs/scale.md "Reconnect after a master outage").
export const SYNC_BACKOFF_CAP_MS = 30_000;

/**
 * Keeps the proxy on the newest policy the master signed. This file only schedules: long-poll,
 * back off, notice the master coming and going. What a bundle goes through is `PolicyPath`
 * (policy-path.ts); what the master hears is `StatusReporter` (status-reporter.ts).
 * Runtime-neutral: every effect (network, time, randomness, disk, proxy) comes in through `SyncOptions`.
 */
export class SyncLoop {
  private readonly o: SyncOptions;
  private readonly policy: PolicyPath;
  private readonly reporter: StatusReporter;
  private readonly backoffBaseMs: number;
  private readonly backoffCapMs: number;
  private readonly nodeUnknownRetryMs: number;
  private running: AbortSignal | null = null;
  private failures = 0;
  /** Ask without holding: at start, and after a failure so a returning master is noticed at once. */
  private quickPoll = true;
  private readonly snap: SyncSnapshot = {
    enforcing: "fail-closed",
    appliedVersion: null,
    appliedHash: null,
    appliedAt: null,
    lastContactAt: null,
    lastError: null,
    lastRefusal: null,
    master: "connecting",
  };

  constructor(options: SyncOptions) {
    this.o = options;
    this.backoffBaseMs = options.backoffBaseMs ?? 1_000;
    this.backoffCapMs = options.backoffCapMs ?? SYNC_BACKOFF_CAP_MS;
    this.nodeUnknownRetryMs = options.nodeUnknownRetryMs ?? 5 * 60_000;
    this.reporter = new StatusReporter({
      ...options,
      heartbeatMs: options.heartbeatMs ?? 60_000,
      spoolReportMinIntervalMs: options.spoolReportMinIntervalMs ?? 2_000,
      applied: () => this.policy.appliedHead(),
      masterListens: () => this.snap.master !== "unreachable" && this.snap.master !== "node-unknown",
      onFailure: () => options.onSyncFailure?.("status"),
    });
    this.policy = new PolicyPath({
      ...options,
      onOutcome: (outcome) => this.reporter.record(outcome),
      update: (change) => this.update(change),
      lastError: () => this.snap.lastError,
      lastRefusal: () => this.snap.lastRefusal,
    });
  }

  snapshot(): SyncSnapshot {
    return { ...this.snap };
  }

  /** Enforces the cached last-good bundle before the master is contacted; fails closed without one. */
  restoreFromCache(): Promise<void> {
    return this.policy.restoreFromCache();
  }

  /** Runs until `signal` aborts; never throws for master or policy trouble. */
  async run(signal: AbortSignal): Promise<void> {
    this.running = signal;
    while (!signal.aborted) {
      let delay: number;
      try {
        await this.reporter.reportIfDue(signal);
        delay = await this.pollOnce(signal);
      } catch (error) {
        if (signal.aborted) break;
        // A bug or a driver failure must not end enforcement; log it and retry like a network failure.
        this.o.events.emit("sync.failed", { error: (error as Error).message ?? String(error) });
        this.o.onSyncFailure?.("poll");
        this.failures++;
        delay = this.backoff();
      }
      if (delay > 0) await this.o.clock.sleep(delay, signal);
    }
    this.running = null;
    await this.reporter.settled();
  }

  /** The spool's figures may have changed; cheap to call often (see StatusReporter.spoolChanged). */
  spoolChanged(): void {
    this.reporter.spoolChanged(this.running);
  }

  /** One poll and what follows from it; returns the delay before the next poll. */
  async pollOnce(signal: AbortSignal): Promise<number> {
    const waitSeconds = this.quickPoll
      ? 0
      : this.reporter.retryPending()
        ? Math.min(ACK_RETRY_WAIT_SECONDS, this.o.pollWaitSeconds)
        : this.o.pollWaitSeconds;
    const startedAt = this.o.clock.now();
    const timeout = AbortSignal.timeout(waitSeconds * 1_000 + POLL_GRACE_MS);
    const result = await this.o.master.pollPolicy({
      etag: this.policy.currentEtag(),
      waitSeconds,
      signal: AbortSignal.any([signal, timeout]),
    });
    if (signal.aborted) return 0;
    if (!result.ok) return this.onFailure(result);
    this.quickPoll = false;
    this.onContact();
    if (result.kind === "bundle") {
      const accepted = await this.policy.accept(result.bytes, result.etag);
      if (accepted.next === "incomplete") {
        return this.onFailure({
          ok: false,
          status: 0,
          code: "DOWNLOAD_INCOMPLETE",
          message: accepted.reason,
          retryAfterMs: null,
        });
      }
      if (accepted.next === "backoff") {
        this.failures++;
        return this.backoff();
      }
      return 0;
    }
    // A master that answers "not modified" without holding the poll must not make us spin.
    return Math.max(0, MIN_POLL_INTERVAL_MS - (this.o.clock.now() - startedAt));
  }

  private onContact(): void {
    const recovered = this.snap.master !== "ok";
    this.failures = 0;
    const now = new Date(this.o.clock.now()).toISOString();
    // Log the transition, not every poll: a healthy node would otherwise write a line every wait period.
    if (recovered)
      this.o.events.emit("sync.ok", {
        master: this.o.master.masterUrl,
        appliedVersion: this.snap.appliedVersion,
      });
    this.update({ master: "ok", lastContactAt: now, lastError: this.reporter.standingRefusal() });
    this.o.onMasterContact?.();
    // Figures that changed while the master was away go out now rather than with the next heartbeat.
    if (recovered) this.spoolChanged();
  }

  private onFailure(failure: MasterFailure): number {
    this.quickPoll = true;
    this.o.onSyncFailure?.("poll");
    if (failure.status === 401 && failure.code === "NODE_UNKNOWN") {
      // Revoked or unknown: keep enforcing what we have, stop hammering, check back now and then.
      const delay = Math.floor(this.nodeUnknownRetryMs * (0.75 + 0.5 * this.o.random()));
      const error = "master does not know this node (revoked or unknown): re-enroll with a new key";
      if (this.snap.master !== "node-unknown") {
        this.o.events.emit("sync.node_unknown", {
          error,
          retryInMs: delay,
          enforcing: this.snap.appliedVersion,
        });
      }
      this.update({ master: "node-unknown", lastError: error });
      return delay;
    }
    this.failures++;
    const hint =
      failure.status === 403 && failure.code === "IP_NOT_ALLOWED"
        ? " (add this node's address to the master's agent allow list)"
        : "";
    const error = `${failure.code}: ${failure.message}${hint}`;
    this.o.events.emit("sync.failed", {
      status: failure.status,
      code: failure.code,
      error: `${failure.message}${hint}`,
      attempt: this.failures,
    });
    this.update({ master: "unreachable", lastError: error });
    const throttled = failure.status === 429 || failure.status === 503;
    const delay = throttled && failure.retryAfterMs !== null ? failure.retryAfterMs : this.backoff();
    this.o.events.emit("sync.backoff", {
      delayMs: delay,
      attempt: this.failures,
      retryAfter: throttled && failure.retryAfterMs !== null,
    });
    return delay;
  }

  private backoff(): number {
    return backoffDelay(Math.max(0, this.failures - 1), this.o.random, this.backoffBaseMs, this.backoffCapMs);
  }

  private update(change: Partial<SyncSnapshot>): void {
    Object.assign(this.snap, change);
    this.o.onState?.({ ...this.snap });
  }
}
