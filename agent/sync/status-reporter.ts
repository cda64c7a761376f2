// Status reports to the master: the queued ACK/NACKs (at most a few while the master is away), the
// heartbeat, and early reports when the spool's figures change in a way the master should see soon.
// One report at a time, in order, whoever asks for it.
import type { SpoolFigures, StatusReport } from "../../protocol/wire";
import { monotonicNow } from "../clock";
import type { Outcome } from "./policy-path";
import type { SyncOptions } from "./types";

const STATUS_TIMEOUT_MS = 15_000;
const QUICK_FAILURE_MS = 5_000;
// A connection closed under the pool fails at once; the pool may hold several such (the agent's
// polls, status reports and uploads share it), so each retry first waits a short, jittered pause
// (below 100, 200, 400 ms) for the runtime to notice the closed sockets.
const QUICK_RETRIES = 3;
const QUICK_RETRY_PAUSE_MS = 100;
// After this many failed sends in a row the loop stops shortening its polls for the ACK (a master
// that keeps refusing the report is not asked every few seconds forever).
const SHORT_POLL_FAILURES = 5;
// At most this many unsent ACK/NACKs are kept while the master is away; older ones are superseded.
const MAX_PENDING_REPORTS = 5;
const ZERO_SPOOL: SpoolFigures = {
  pendingChunks: 0,
  pendingBytes: 0,
  oldestPendingAt: null,
  droppedRecords: 0,
};

type ReporterOptions = Pick<
  SyncOptions,
  "master" | "clock" | "random" | "driver" | "events" | "onMasterContact"
> & {
  spoolFigures?: () => SpoolFigures;
  heartbeatMs: number;
  pollWaitSeconds: number;
  spoolReportMinIntervalMs: number;
  /** The applied bundle's version and hash, for every report. */
  applied(): { version: number; hash: string } | null;
  /** False while the master is unreachable or does not know this node: reports would only fail. */
  masterListens(): boolean;
  onFailure?(): void;
};

export class StatusReporter {
  private readonly startedAt: number;
  private readonly spoolFigures: () => SpoolFigures;
  private outcome: Outcome = { state: "applied" };
  private pending: Outcome[] = [];
  private lastStatusAt = Number.NEGATIVE_INFINITY;
  /** The spool figures in the last status report the master accepted. */
  private reportedSpool: SpoolFigures | null = null;
  private lock: Promise<unknown> = Promise.resolve();
  private spoolReport: Promise<void> | null = null;
  /** Sends that failed in a row (reset by the next one that went through). */
  private failedSends = 0;

  constructor(private readonly o: ReporterOptions) {
    this.startedAt = o.clock.now();
    this.spoolFigures = o.spoolFigures ?? (() => ZERO_SPOOL);
  }

  /** The current outcome (kept for the heartbeat) and one more ACK/NACK to send. */
  record(outcome: Outcome): void {
    this.outcome = outcome;
    this.pending.push(outcome);
    if (this.pending.length > MAX_PENDING_REPORTS) this.pending.shift();
  }

  /**
   * An ACK/NACK is waiting after a failed send: the loop then holds its next poll only briefly, so
   * the report goes again within seconds rather than after a whole long poll.
   */
  retryPending(): boolean {
    return this.pending.length > 0 && this.failedSends > 0 && this.failedSends <= SHORT_POLL_FAILURES;
  }

  /** The refusal the master still has to hear about or that still stands, if any. */
  standingRefusal(): string | null {
    return this.outcome.state === "rejected" ? this.outcome.error : null;
  }

  async reportIfDue(signal: AbortSignal): Promise<void> {
    if (!this.o.masterListens()) return;
    const waitMs = this.o.pollWaitSeconds * 1_000;
    // Report early enough that the next long poll cannot push the gap past the heartbeat interval.
    const heartbeatDue = this.o.clock.now() - this.lastStatusAt >= Math.max(0, this.o.heartbeatMs - waitMs);
    if (this.pending.length === 0 && !heartbeatDue) return;
    await this.send(signal);
  }

  /**
   * The spool's figures may have changed. When the master would now see something different enough
   * to matter — the backlog gone, a quarantined chunk or dropped records — a status report goes
   * out without waiting for the heartbeat: at once, or `spoolReportMinIntervalMs` after the last one.
   */
  spoolChanged(signal: AbortSignal | null): void {
    if (!signal || signal.aborted || this.spoolReport || !this.spoolNews()) return;
    this.spoolReport = this.reportSpool(signal).finally(() => {
      this.spoolReport = null;
    });
  }

  /** Resolves once an early spool report under way is done (at stop). */
  async settled(): Promise<void> {
    await this.spoolReport;
  }

  private spoolNews(): boolean {
    const last = this.reportedSpool;
    // Until a first report went out, the start-up heartbeat carries the figures.
    if (!last || !this.o.masterListens()) return false;
    const now = this.spoolFigures();
    // Drained: no chunk pending where the master saw some, or nothing at all where it saw records.
    const drained =
      now.pendingChunks === 0 &&
      (last.pendingChunks > 0 || (now.pendingBytes === 0 && last.pendingBytes > 0));
    return (
      drained ||
      (now.quarantinedChunks ?? 0) !== (last.quarantinedChunks ?? 0) ||
      now.droppedRecords !== last.droppedRecords
    );
  }

  private async reportSpool(signal: AbortSignal): Promise<void> {
    // A loop, so a change that lands while a report is on the wire is not left to the heartbeat.
    while (this.spoolNews()) {
      const wait = this.lastStatusAt + this.o.spoolReportMinIntervalMs - this.o.clock.now();
      if (wait > 0) await this.o.clock.sleep(wait, signal);
      if (signal.aborted || !this.spoolNews()) return;
      if (!(await this.send(signal))) return;
    }
  }

  /** Sends the queued ACK/NACKs, or the current outcome when none is queued; false on a failure. */
  private send(signal: AbortSignal): Promise<boolean> {
    const sending = this.lock.then(async () => {
      const queue = this.pending.length > 0 ? [...this.pending] : [this.outcome];
      for (const outcome of queue) {
        const report = this.report(outcome);
        const post = () =>
          this.o.master.postStatus({
            report,
            signal: AbortSignal.any([signal, AbortSignal.timeout(STATUS_TIMEOUT_MS)]),
          });
        // A pooled keep-alive connection the master closed while idle fails fast (ECONNRESET), and
        // the pool may hold several: without these retries the ACK would wait for the next long
        // poll (~wait seconds). A slow failure (a timeout) is not retried.
        let result: Awaited<ReturnType<typeof post>>;
        for (let attempt = 0; ; attempt++) {
          const sentAt = monotonicNow(this.o.clock);
          result = await post();
          const quick = monotonicNow(this.o.clock) - sentAt < QUICK_FAILURE_MS;
          if (result.ok || result.status !== 0 || !quick || attempt >= QUICK_RETRIES || signal.aborted) break;
          await this.o.clock.sleep(Math.floor(this.o.random() * QUICK_RETRY_PAUSE_MS * 2 ** attempt), signal);
        }
        if (!result.ok) {
          this.failedSends++;
          if (!signal.aborted) {
            this.o.onFailure?.();
            this.o.events.emit("status.failed", {
              status: result.status,
              code: result.code,
              error: result.message,
            });
          }
          return false;
        }
        this.failedSends = 0;
        if (this.pending[0] === outcome) this.pending.shift();
        this.lastStatusAt = this.o.clock.now();
        this.reportedSpool = report.spool;
        this.o.onMasterContact?.();
      }
      return true;
    });
    this.lock = sending.catch(() => undefined);
    return sending;
  }

  private report(outcome: Outcome): StatusReport {
    const driver = this.o.driver;
    const applied = this.o.applied();
    return {
      appliedVersion: applied?.version ?? null,
      appliedHash: applied?.hash ?? null,
      state: outcome.state,
      ...(outcome.state === "rejected" ? { error: outcome.error.slice(0, 2000) } : {}),
      proxy: { kind: driver.kind, listen: driver.listenAddress(), version: driver.version() },
      spool: this.spoolFigures(),
      agentVersion: this.o.master.agentVersion,
      uptimeSeconds: Math.max(0, Math.floor((this.o.clock.now() - this.startedAt) / 1_000)),
    };
  }
}
