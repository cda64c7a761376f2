import { monotonicNow } from "../clock";
import type { MasterClient } from "../master/client";
import type { Clock, EventLogger } from "../ports";
import { backoffDelay } from "../sync/backoff";
import { type ChunkInfo, chunkId } from "./chunk-name";
import type { ChunkStore } from "./chunk-store";
import { resolveSpoolSettings, type SpoolSettings } from "./settings";
import { tallyChunk } from "./tally";
import { type UploadOutcome, uploadOutcome } from "./upload-outcome";

export interface UploaderOptions {
  store: ChunkStore;
  master: MasterClient;
  clock: Clock;
  /** Uniform in [0, 1); jitter source. */
  random: () => number;
  events?: EventLogger;
  settings?: Partial<SpoolSettings>;
}

// Read errors that say nothing about the chunk itself: retried later like a failed upload.
const TRANSIENT_FS_ERRORS = new Set(["EMFILE", "ENFILE", "ENOMEM", "EAGAIN", "EBUSY", "EINTR"]);

// Woken by new chunks and finished uploads; this is only the safety net.
const IDLE_CHECK_MS = 30_000;

/**
 * Sends sealed chunks to the master, oldest first, at most `uploadConcurrency` at a time and
 * `maxUploadsPerSecond` starts per second, so a backlog after an outage drains at a bounded rate.
 * One shared gate holds every upload back after a failure (backoff with full jitter, Retry-After,
 * or the slow NODE_UNKNOWN retry). Runtime-neutral: network, time and randomness come in as options.
 */
export class ChunkUploader {
  private readonly o: UploaderOptions;
  private readonly s: SpoolSettings;
  private readonly inflight = new Set<Promise<void>>();
  private blockedUntil = 0;
  private nextSlotAt = 0;
  private failures = 0;
  private wakeCtl: AbortController | null = null;
  private woken = false;
  private gate: string | null = null;
  /** The gate is closed because the master seemed away (or refused this node): a nudge may open it. */
  private nudgeable = false;
  /**
   * The master said it reads tallies (X-Fleetgate-Tally on its last answer): uploads carry one.
   * Learned per run, so an agent never sends a tally to a master that cannot read it.
   */
  private tallies = false;

  constructor(options: UploaderOptions) {
    this.o = options;
    this.s = resolveSpoolSettings(options.settings);
    options.store.onChunks(() => this.wake());
  }

  /** Runs until `signal` aborts; in-flight uploads are aborted with it and their chunks kept. */
  async run(signal: AbortSignal): Promise<void> {
    const onAbort = () => this.wake();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const now = this.mono();
        if (now < this.blockedUntil) await this.pause(this.blockedUntil - now, signal);
        else if (this.inflight.size >= this.s.uploadConcurrency) await this.pause(IDLE_CHECK_MS, signal);
        else if (now < this.nextSlotAt) await this.pause(this.nextSlotAt - now, signal);
        else {
          const chunk = this.o.store.takeNext();
          if (!chunk) {
            await this.pause(IDLE_CHECK_MS, signal);
            continue;
          }
          this.nextSlotAt = Math.max(now, this.nextSlotAt) + 1_000 / this.s.maxUploadsPerSecond;
          const job: Promise<void> = this.upload(chunk, signal).finally(() => {
            this.inflight.delete(job);
            this.wake();
          });
          this.inflight.add(job);
        }
      }
      await Promise.allSettled([...this.inflight]);
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  wake(): void {
    this.woken = true;
    this.wakeCtl?.abort();
  }

  /**
   * The master just answered the sync loop (a poll or a status report): if uploads wait out a backoff
   * because the master seemed away or refused this node, retry now with a fresh backoff. The drain
   * rate and the concurrency limit still apply, and an explicit Retry-After is still honoured.
   */
  nudge(): void {
    const now = this.mono();
    if (!this.nudgeable || now >= this.blockedUntil) return;
    this.nudgeable = false;
    this.blockedUntil = now;
    this.failures = 0;
    this.o.events?.emit("spool.upload_nudged", { pending: this.o.store.pendingCount() });
    this.wake();
  }

  /**
   * Waits until nothing is pending or in flight, or `ms` passed, or the master is known to be
   * unavailable for longer than that; true when everything was delivered.
   */
  async drain(ms: number): Promise<boolean> {
    const deadline = this.mono() + ms;
    this.wake();
    while (this.o.store.pendingCount() > 0 || this.inflight.size > 0) {
      const now = this.mono();
      if (now >= deadline || (this.inflight.size === 0 && this.blockedUntil >= deadline)) return false;
      await this.o.clock.sleep(Math.min(50, deadline - now));
    }
    return true;
  }

  private async pause(ms: number, signal: AbortSignal): Promise<void> {
    if (this.woken) {
      this.woken = false;
      return;
    }
    const ctl = new AbortController();
    this.wakeCtl = ctl;
    const onAbort = () => ctl.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      await this.o.clock.sleep(Math.max(1, ms), ctl.signal);
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.wakeCtl = null;
      this.woken = false;
    }
  }

  private async upload(chunk: ChunkInfo, signal: AbortSignal): Promise<void> {
    const id = chunkId(chunk);
    try {
      let body: Uint8Array;
      try {
        body = await this.o.store.readChunk(chunk);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? "";
        if (TRANSIENT_FS_ERRORS.has(code)) throw error;
        // This chunk, not the disk or the master: set it aside and go on with the ones behind it.
        await this.o.store.setAside(chunk, `unreadable: ${code || (error as Error).message}`);
        return;
      }
      const tally = this.tallies ? tallyChunk(body) : null;
      const outcome = await this.send(id, body, tally, signal);
      if (signal.aborted && outcome.kind === "failed") {
        this.o.store.release(chunk);
        return;
      }
      if (tally && outcome.kind === "refused" && (outcome.status === 400 || outcome.status === 415)) {
        // A master that no longer reads tallies (a rollback), or a framing it refuses: the chunk is
        // not at fault, so send it again without one instead of quarantining it.
        this.tallies = false;
        this.o.events?.emit("spool.tally_dropped", {
          level: "warn",
          chunk: id,
          error: `${outcome.status} ${outcome.code}: ${outcome.message}`,
        });
        this.o.store.release(chunk);
        return;
      }
      await this.settle(chunk, id, outcome);
    } catch (error) {
      // A local disk problem: keep the chunk, retry later like a failed upload.
      this.o.store.release(chunk);
      this.failures++;
      this.block(this.backoff(), false, {
        reason: "spool error",
        chunk: id,
        error: (error as Error).message,
      });
    }
  }

  private async send(
    id: string,
    body: Uint8Array,
    tally: Uint8Array | null,
    signal: AbortSignal,
  ): Promise<UploadOutcome> {
    const ctl = new AbortController();
    const done = new AbortController();
    const onAbort = () => ctl.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    void this.o.clock.sleep(this.s.uploadTimeoutMs, done.signal).then(() => {
      if (!done.signal.aborted) ctl.abort(new Error(`upload timed out after ${this.s.uploadTimeoutMs} ms`));
    });
    try {
      return uploadOutcome(await this.o.master.uploadChunk({ chunkId: id, body, tally, signal: ctl.signal }));
    } finally {
      done.abort();
      signal.removeEventListener("abort", onAbort);
    }
  }

  private async settle(chunk: ChunkInfo, id: string, outcome: UploadOutcome): Promise<void> {
    const events = this.o.events;
    switch (outcome.kind) {
      case "acked":
        this.onContact();
        this.tallies = outcome.takesTally;
        if (outcome.tallyRefused) {
          events?.emit("spool.tally_refused", { level: "warn", chunk: id, error: outcome.tallyRefused });
        }
        await this.o.store.ack(chunk);
        events?.emit("spool.uploaded", {
          level: "debug",
          chunk: id,
          records: chunk.records,
          accepted: outcome.accepted,
          duplicate: outcome.duplicate,
        });
        return;
      case "too-large":
        this.onContact();
        await this.o.store.split(chunk);
        return;
      case "refused":
        this.onContact();
        await this.o.store.quarantine(chunk, `${outcome.status} ${outcome.code}: ${outcome.message}`);
        return;
      case "throttled":
        this.o.store.release(chunk);
        this.failures++;
        // Retry-After and any 429 are the master's explicit wish; a bare 503 is an outage like any other.
        this.block(
          outcome.retryAfterMs ?? this.backoff(),
          outcome.status === 503 && outcome.retryAfterMs === null,
          {
            reason: `HTTP ${outcome.status}`,
            retryAfter: outcome.retryAfterMs !== null,
          },
        );
        return;
      case "unauthorized":
        this.o.store.release(chunk);
        this.block(Math.floor(this.s.nodeUnknownRetryMs * (0.75 + 0.5 * this.o.random())), true, {
          reason: outcome.code,
          error: outcome.message,
          level: "error",
        });
        return;
      case "failed":
        this.o.store.release(chunk);
        this.failures++;
        // No answer, or a gateway's: the master is away. A 500 is the master failing on this chunk.
        this.block(this.backoff(), outcome.status === 0 || outcome.status >= 502, {
          reason: "upload failed",
          status: outcome.status,
          error: outcome.message,
        });
        return;
    }
  }

  /** Gates, slots and deadlines run on the monotonic clock: a wall-clock step back must not pause uploads. */
  private mono(): number {
    return monotonicNow(this.o.clock);
  }

  private onContact(): void {
    this.failures = 0;
    if (this.gate !== null) {
      this.gate = null;
      this.o.events?.emit("spool.upload_resumed", { pending: this.o.store.pendingCount() });
    }
  }

  private block(delayMs: number, nudgeable: boolean, fields: Record<string, unknown>): void {
    const until = this.mono() + delayMs;
    // The latest reason for the longest wait decides whether a nudge may cut it short.
    if (until >= this.blockedUntil) this.nudgeable = nudgeable;
    this.blockedUntil = Math.max(this.blockedUntil, until);
    this.gate = String(fields.reason);
    this.o.events?.emit("spool.upload_backoff", {
      level: "warn",
      delayMs,
      attempt: this.failures,
      pending: this.o.store.pendingCount(),
      ...fields,
    });
  }

  private backoff(): number {
    return backoffDelay(
      Math.max(0, this.failures - 1),
      this.o.random,
      this.s.backoffBaseMs,
      this.s.backoffCapMs,
    );
  }
}
