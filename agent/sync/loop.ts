import type { NextKey } from "../../protocol/signing";
import {
  bundleTag,
  isBundleTag,
  type MasterKey,
  type PolicyBundle,
  type SpoolFigures,
  type StatusReport,
} from "../../protocol/wire";
import { backoffDelay } from "./backoff";
import { monotonicNow } from "./clock";
import { type MasterFailure, pollPolicy, postStatus } from "./master-client";
import {
  type BundleHead,
  compareOrder,
  compileOpened,
  openBundle,
  type Position,
  type PrepareBundle,
  prepareInThread,
} from "./prepare";
import type { SyncOptions, SyncSnapshot } from "./types";

type Outcome = { state: "applied" } | { state: "rejected"; error: string };
/**
 * Why a bundle was refused decides whether asking for it again can help: "final" (it verified but
 * cannot be used: a downgrade, a policy this agent cannot compile) never, "transit" (hash or
 * signature wrong) once, in case it was damaged on the way, "local" (disk or proxy) after a while.
 */
type Refusal = "final" | "transit" | "local";
const MAX_REMEMBERED_REFUSALS = 32;

const ZERO_SPOOL: SpoolFigures = {
  pendingChunks: 0,
  pendingBytes: 0,
  oldestPendingAt: null,
  droppedRecords: 0,
};
// A poll may be held for `wait` seconds; give the network this much more before calling it dead.
const POLL_GRACE_MS = 20_000;
const STATUS_TIMEOUT_MS = 15_000;
const QUICK_FAILURE_MS = 5_000;
const QUICK_RETRIES = 2;
const MIN_POLL_INTERVAL_MS = 1_000;
// At most this many unsent ACK/NACKs are kept while the master is away; older ones are superseded.
const MAX_PENDING_REPORTS = 5;

/**
 * Keeps the proxy on the newest policy the master signed: long-poll, verify against the pinned
 * key, refuse downgrades, validate + compile, persist as last-good, apply, ACK/NACK. Runtime-neutral:
 * every effect (network, time, randomness, disk, proxy) comes in through `SyncOptions`.
 */
export class SyncLoop {
  private readonly o: Required<
    Omit<SyncOptions, "onState" | "onMasterContact" | "nextMasterKey" | "prepare">
  > &
    Pick<SyncOptions, "onState" | "onMasterContact">;
  private readonly prepare: PrepareBundle;
  /** The pinned key and, during a rotation, the next one it announced; both verify. */
  private keys: { pin: MasterKey; next: MasterKey | null };
  private readonly startedAt: number;
  private applied: {
    head: BundleHead;
    position: Position;
    save: PolicyBundle | Uint8Array;
    appliedAt: string;
  } | null = null;
  /** Name (tag or hash) of the last refused bundle, sent as If-None-Match so the master holds the poll until a new publish. */
  private refused: { hash: string; at: number; permanent: boolean } | null = null;
  /** Whether the master names bundles by tag (generation.version.hash) or, before tags, by hash. */
  private masterTags = true;
  /** Names refused for good, and how often each transit-refused one came: never fetched, verified or compiled again. */
  private readonly refusals = new Map<string, { permanent: boolean; count: number }>();
  private outcome: Outcome = { state: "applied" };
  private pendingReports: Outcome[] = [];
  private lastStatusAt = Number.NEGATIVE_INFINITY;
  /** The spool figures in the last status report the master accepted. */
  private reportedSpool: SpoolFigures | null = null;
  /** Status reports go out one at a time, in order, whoever sends them. */
  private statusLock: Promise<unknown> = Promise.resolve();
  private running: AbortSignal | null = null;
  private spoolReport: Promise<void> | null = null;
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
    this.o = {
      spoolFigures: () => ZERO_SPOOL,
      backoffBaseMs: 1_000,
      backoffCapMs: 60_000,
      nodeUnknownRetryMs: 5 * 60_000,
      refusedRetryMs: 5 * 60_000,
      heartbeatMs: 60_000,
      spoolReportMinIntervalMs: 2_000,
      onState: undefined,
      onMasterContact: undefined,
      ...options,
    };
    this.startedAt = options.clock.now();
    this.prepare = options.prepare ?? prepareInThread(options.compile);
    this.keys = { pin: options.masterKey, next: options.nextMasterKey ?? null };
  }

  snapshot(): SyncSnapshot {
    return { ...this.snap };
  }

  /** Enforces the cached last-good bundle before the master is contacted; fails closed without one. */
  async restoreFromCache(): Promise<void> {
    const raw = await this.o.store.loadLastGood().catch((error: unknown) => ({ unreadable: String(error) }));
    if (raw === null) {
      await this.o.driver.applyPolicy(null);
      this.o.events.emit("policy.none", {
        level: "warn",
        message: "no cached policy: the proxy refuses all traffic until the master sends one",
      });
      this.update({ enforcing: "fail-closed" });
      return;
    }
    const refusal = await this.checkCached(raw);
    if (refusal) {
      await this.o.driver.applyPolicy(null);
      const error = `cached policy refused: ${refusal}`;
      this.o.events.emit("policy.rejected", { source: "cache", error });
      this.setOutcome({ state: "rejected", error });
      this.update({ enforcing: "fail-closed", lastError: error, lastRefusal: error });
    }
  }

  /** Runs until `signal` aborts; never throws for master or policy trouble. */
  async run(signal: AbortSignal): Promise<void> {
    this.running = signal;
    while (!signal.aborted) {
      let delay: number;
      try {
        await this.reportIfDue(signal);
        delay = await this.pollOnce(signal);
      } catch (error) {
        if (signal.aborted) break;
        // A bug or a driver failure must not end enforcement; log it and retry like a network failure.
        this.o.events.emit("sync.failed", { error: (error as Error).message ?? String(error) });
        this.failures++;
        delay = this.backoff();
      }
      if (delay > 0) await this.o.clock.sleep(delay, signal);
    }
    this.running = null;
    await this.spoolReport;
  }

  /**
   * The spool's figures may have changed. When the master would now see something different enough
   * to matter — the backlog gone, a quarantined chunk or dropped records — a status report goes
   * out without waiting for the heartbeat: at once, or `spoolReportMinIntervalMs` after the last report.
   * Runs beside the long poll; cheap to call often.
   */
  spoolChanged(): void {
    const signal = this.running;
    if (!signal || signal.aborted || this.spoolReport || !this.spoolNews()) return;
    this.spoolReport = this.reportSpool(signal).finally(() => {
      this.spoolReport = null;
    });
  }

  private spoolNews(): boolean {
    const last = this.reportedSpool;
    // Until a first report went out, the start-up heartbeat carries the figures.
    if (!last || !this.masterListens()) return false;
    const now = this.o.spoolFigures();
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
      if (!(await this.sendReports(signal))) return;
    }
  }

  private masterListens(): boolean {
    return this.snap.master !== "unreachable" && this.snap.master !== "node-unknown";
  }

  /** One poll and what follows from it; returns the delay before the next poll. */
  async pollOnce(signal: AbortSignal): Promise<number> {
    const waitSeconds = this.quickPoll ? 0 : this.o.pollWaitSeconds;
    const startedAt = this.o.clock.now();
    const timeout = AbortSignal.timeout(waitSeconds * 1_000 + POLL_GRACE_MS);
    const result = await pollPolicy({
      fetch: this.o.fetch,
      masterUrl: this.o.masterUrl,
      nodeToken: this.o.nodeToken,
      etag: this.currentEtag(),
      waitSeconds,
      signal: AbortSignal.any([signal, timeout]),
      now: () => this.o.clock.now(),
    });
    if (signal.aborted) return 0;
    if (!result.ok) return this.onFailure(result);
    this.quickPoll = false;
    this.onContact();
    if (result.kind === "bundle") return this.accept(result.bytes, result.etag);
    // A master that answers "not modified" without holding the poll must not make us spin.
    return Math.max(0, MIN_POLL_INTERVAL_MS - (this.o.clock.now() - startedAt));
  }

  private currentEtag(): string | null {
    const refused = this.refused;
    if (refused && (refused.permanent || this.mono() - refused.at < this.o.refusedRetryMs))
      return refused.hash;
    this.refused = null;
    return this.applied ? this.nameOf(this.applied.position) : null;
  }

  /** A bundle as this master names it: a new series of unchanged content is a different bundle. */
  private nameOf(position: Position): string {
    return this.masterTags ? bundleTag(position) : position.hash;
  }

  private trusted(): MasterKey[] {
    return this.keys.next ? [this.keys.pin, this.keys.next] : [this.keys.pin];
  }

  /** Verifies, orders, compiles, saves and applies a downloaded bundle; returns the delay before the next poll. */
  private async accept(bytes: Uint8Array, etag: string | null): Promise<number> {
    const current = this.applied;
    // The master names the bundle in its ETag: the applied one, or one refused for good (a master
    // ignoring If-None-Match) is neither parsed, verified nor compiled again, and not NACKed twice.
    if (etag !== null) this.masterTags = isBundleTag(etag);
    if (etag !== null && current && etag === this.nameOf(current.position)) return 0;
    if (etag !== null && this.refusals.get(etag)?.permanent) {
      this.refused = { hash: etag, at: this.mono(), permanent: true };
      return 0;
    }
    const prepared = await this.prepare(bytes, this.trusted(), current?.position ?? null);
    if (!prepared.ok) {
      if (prepared.why === "incomplete") {
        return this.onFailure({
          ok: false,
          status: 0,
          code: "DOWNLOAD_INCOMPLETE",
          message: prepared.reason,
          retryAfterMs: null,
        });
      }
      const hash = etag ?? prepared.hash;
      if (hash !== null && this.refusals.get(hash)?.permanent) {
        this.refused = { hash, at: this.mono(), permanent: true };
        return 0;
      }
      await this.refuse(hash !== null ? { hash } : null, prepared.reason, prepared.why);
      if (hash !== null) return 0;
      // Without a hash to wait on, the master would answer the same bytes at once: slow down.
      this.failures++;
      return this.backoff();
    }
    const { head } = prepared;
    // The same (generation, version) is the applied bundle (openBundle refused it if the hash
    // differed); the same content in a new series is not: it may carry a new key or pin.
    if (current && compareOrder(prepared.position, current.position) === 0) return 0;
    const name = { hash: this.nameOf(prepared.position), version: head.version };
    // Persist before enforcing and before the ACK: what the master sees as applied survives a restart.
    try {
      await this.o.store.saveLastGood(prepared.save);
    } catch (error) {
      await this.refuse(
        name,
        `bundle v${head.version} could not be saved: ${(error as Error).message}`,
        "local",
      );
      return 0;
    }
    try {
      await this.o.driver.applyPolicy({
        version: head.version,
        hash: head.hash,
        compiled: prepared.compiled,
      });
    } catch (error) {
      if (current) await this.o.store.saveLastGood(current.save).catch(() => undefined);
      await this.refuse(name, `proxy could not apply v${head.version}: ${(error as Error).message}`, "local");
      return 0;
    }
    this.markApplied(head, prepared.position, prepared.save, "master");
    await this.moveKeys(prepared.kid, prepared.nextKey);
    return 0;
  }

  /**
   * Key rotation: a bundle signed by the pinned key may announce the next key (trusted from then on
   * beside it); the first bundle signed by the next key makes it the pin and retires the old one.
   */
  private async moveKeys(signedBy: string, announced: NextKey | null): Promise<void> {
    let { pin, next } = this.keys;
    const before = `${pin.kid}/${next?.kid ?? ""}`;
    if (next && signedBy === next.kid) {
      this.o.events.emit("sync.key_rotated", { from: pin.kid, to: next.kid });
      pin = next;
      next = null;
    }
    if (announced && announced.kid !== pin.kid && announced.kid !== next?.kid) {
      next = { kid: announced.kid, alg: "Ed25519", publicKey: announced.publicKey };
      this.o.events.emit("sync.next_key", { pinned: pin.kid, next: next.kid });
    }
    if (`${pin.kid}/${next?.kid ?? ""}` === before) return;
    this.keys = { pin, next };
    try {
      await this.o.store.saveMasterKeys?.({ masterKey: pin, ...(next ? { nextMasterKey: next } : {}) });
    } catch (error) {
      this.o.events.emit("sync.key_save_failed", { level: "error", error: (error as Error).message });
    }
  }

  private async checkCached(raw: unknown): Promise<string | null> {
    const prepared = await compileOpened(await openBundle(raw, this.trusted(), null), this.o.compile);
    if (!prepared.ok) return prepared.reason;
    const { head } = prepared;
    await this.o.driver.applyPolicy({ version: head.version, hash: head.hash, compiled: prepared.compiled });
    this.markApplied(head, prepared.position, prepared.save, "cache");
    return null;
  }

  private markApplied(
    head: BundleHead,
    position: Position,
    save: PolicyBundle | Uint8Array,
    source: "cache" | "master",
  ): void {
    const bundle = head;
    const appliedAt = new Date(this.o.clock.now()).toISOString();
    this.applied = { head, position, save, appliedAt };
    this.refused = null;
    this.o.events.emit("policy.applied", { source, version: bundle.version, hash: bundle.hash });
    // A restart re-applying the cache is not news to the master; an apply from the master is ACKed.
    if (source === "master") this.setOutcome({ state: "applied" });
    this.update({
      enforcing: "policy",
      appliedVersion: bundle.version,
      appliedHash: bundle.hash,
      appliedAt,
      lastError: source === "master" ? null : this.snap.lastError,
      lastRefusal: source === "master" ? null : this.snap.lastRefusal,
    });
  }

  private async refuse(
    bundle: { hash: string; version?: number } | null,
    error: string,
    why: Refusal,
  ): Promise<void> {
    if (bundle?.hash) {
      const seen = this.refusals.get(bundle.hash)?.count ?? 0;
      const permanent = why === "final" || (why === "transit" && seen >= 1);
      if (why !== "local") this.remember(bundle.hash, { permanent, count: seen + 1 });
      this.refused = { hash: bundle.hash, at: this.mono(), permanent };
    }
    this.o.events.emit("policy.rejected", {
      source: "master",
      version: bundle?.version,
      error,
      keeping: this.applied?.head.version ?? null,
    });
    this.setOutcome({ state: "rejected", error });
    this.update({ lastError: error, lastRefusal: error });
  }

  private remember(hash: string, refusal: { permanent: boolean; count: number }): void {
    this.refusals.delete(hash);
    this.refusals.set(hash, refusal);
    if (this.refusals.size > MAX_REMEMBERED_REFUSALS)
      this.refusals.delete(this.refusals.keys().next().value!);
  }

  private mono(): number {
    return monotonicNow(this.o.clock);
  }

  private setOutcome(outcome: Outcome): void {
    this.outcome = outcome;
    this.pendingReports.push(outcome);
    if (this.pendingReports.length > MAX_PENDING_REPORTS) this.pendingReports.shift();
  }

  private async reportIfDue(signal: AbortSignal): Promise<void> {
    if (!this.masterListens()) return;
    const waitMs = this.o.pollWaitSeconds * 1_000;
    // Report early enough that the next long poll cannot push the gap past the heartbeat interval.
    const heartbeatDue = this.o.clock.now() - this.lastStatusAt >= Math.max(0, this.o.heartbeatMs - waitMs);
    if (this.pendingReports.length === 0 && !heartbeatDue) return;
    await this.sendReports(signal);
  }

  /** Sends the queued ACK/NACKs, or the current outcome when none is queued; false on a failure. */
  private sendReports(signal: AbortSignal): Promise<boolean> {
    const send = this.statusLock.then(async () => {
      const queue = this.pendingReports.length > 0 ? [...this.pendingReports] : [this.outcome];
      for (const outcome of queue) {
        const report = this.report(outcome);
        const post = () =>
          postStatus({
            fetch: this.o.fetch,
            masterUrl: this.o.masterUrl,
            nodeToken: this.o.nodeToken,
            report,
            signal: AbortSignal.any([signal, AbortSignal.timeout(STATUS_TIMEOUT_MS)]),
            now: () => this.o.clock.now(),
          });
        // A pooled keep-alive connection the master closed while idle fails fast (ECONNRESET), and
        // the pool may hold several: without these retries the ACK would wait for the next long
        // poll (~wait seconds). A slow failure (a timeout) is not retried.
        let result: Awaited<ReturnType<typeof post>>;
        for (let attempt = 0; ; attempt++) {
          const sentAt = this.mono();
          result = await post();
          const quick = this.mono() - sentAt < QUICK_FAILURE_MS;
          if (result.ok || result.status !== 0 || !quick || attempt >= QUICK_RETRIES || signal.aborted) break;
        }
        if (!result.ok) {
          if (!signal.aborted)
            this.o.events.emit("status.failed", {
              status: result.status,
              code: result.code,
              error: result.message,
            });
          return false;
        }
        if (this.pendingReports[0] === outcome) this.pendingReports.shift();
        this.lastStatusAt = this.o.clock.now();
        this.reportedSpool = report.spool;
        this.o.onMasterContact?.();
      }
      return true;
    });
    this.statusLock = send.catch(() => undefined);
    return send;
  }

  private report(outcome: Outcome): StatusReport {
    const driver = this.o.driver;
    return {
      appliedVersion: this.applied?.head.version ?? null,
      appliedHash: this.applied?.head.hash ?? null,
      state: outcome.state,
      ...(outcome.state === "rejected" ? { error: outcome.error.slice(0, 2000) } : {}),
      proxy: { kind: driver.kind, listen: driver.listenAddress(), version: driver.version() },
      spool: this.o.spoolFigures(),
      agentVersion: this.o.agentVersion,
      uptimeSeconds: Math.max(0, Math.floor((this.o.clock.now() - this.startedAt) / 1_000)),
    };
  }

  private onContact(): void {
    const recovered = this.snap.master !== "ok";
    this.failures = 0;
    const now = new Date(this.o.clock.now()).toISOString();
    // Log the transition, not every poll: a healthy node would otherwise write a line every wait period.
    if (recovered)
      this.o.events.emit("sync.ok", { master: this.o.masterUrl, appliedVersion: this.snap.appliedVersion });
    const stillRefused = this.outcome.state === "rejected" ? this.outcome.error : null;
    this.update({ master: "ok", lastContactAt: now, lastError: stillRefused });
    this.o.onMasterContact?.();
    // Figures that changed while the master was away go out now rather than with the next heartbeat.
    if (recovered) this.spoolChanged();
  }

  private onFailure(failure: MasterFailure): number {
    this.quickPoll = true;
    if (failure.status === 401 && failure.code === "NODE_UNKNOWN") {
      // Revoked or unknown: keep enforcing what we have, stop hammering, check back now and then.
      const delay = Math.floor(this.o.nodeUnknownRetryMs * (0.75 + 0.5 * this.o.random()));
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
    return backoffDelay(
      Math.max(0, this.failures - 1),
      this.o.random,
      this.o.backoffBaseMs,
      this.o.backoffCapMs,
    );
  }

  private update(change: Partial<SyncSnapshot>): void {
    Object.assign(this.snap, change);
    this.o.onState?.({ ...this.snap });
  }
}
