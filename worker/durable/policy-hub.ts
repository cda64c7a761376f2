import { DurableObject } from "cloudflare:workers";
import { tagNames } from "../../protocol/wire";
import { getDb } from "../db/client";
import { recordStatuses, type StatusRow } from "../services/node-status";
import { touchNodes } from "../services/nodes";
import { latestHead, type PolicyHead } from "../services/policy";
import { activeTargeting } from "../services/rollout-active";
import { type RolloutTargeting, targetHead } from "../services/rollout-target";

export type { PolicyHead };

/** What a parked poll comes back with: the newest head, or that the node was revoked meanwhile. */
export interface HubAnswer {
  head: PolicyHead | null;
  revoked?: true;
}

export interface HubStats {
  waiting: number;
  head: PolicyHead | null;
  pendingSeen: number;
  /** Status group commits since the hub started: how many, their reports, the slowest one. */
  statusBatches: { batches: number; reports: number; maxMs: number; lastMs: number };
}

interface Waiter {
  nodeId: string;
  known: string | null;
  resolve: (answer: HubAnswer) => void;
  timer: ReturnType<typeof setTimeout>;
}

// The hub trusts its own head; it asks D1 again this often, so a notify that failed to arrive
// (or a hub that just woke up) costs each shard one read, never one per poll.
const HEAD_RECHECK_MS = 30_000;
// Last-seen times of the nodes polling here reach D1 in one statement this often.
const SEEN_FLUSH_MS = 5_000;
// Status reports are group-committed: the first one waits this long for company. An ACK/NACK (the
// node's outcome changed) waits STATUS_GATHER_MS; a batch of heartbeats only (nothing changed since
// the node's last report here) waits HEARTBEAT_GATHER_MS, so the steady heartbeat stream costs a
// shard ≤ 1 batch per 2 s instead of ≤ 10 per second (3 statements each: docs/scale.md).
const STATUS_GATHER_MS = 100;
const HEARTBEAT_GATHER_MS = 2_000;
// What the hub remembers of each node's last committed report, to tell heartbeats from news.
const REMEMBERED_REPORTS = 50_000;

interface PendingStatus {
  row: StatusRow;
  done: () => void;
  failed: (error: unknown) => void;
}

/** What makes a report news for the fleet view: outcome, version, error, and the spool's alarms. */
function reportKey(row: StatusRow): string {
  const spool = row.spool;
  return [
    row.state,
    row.appliedVersion,
    row.appliedHash,
    row.lastError,
    row.address,
    row.agentVersion,
    spool.pendingChunks > 0,
    spool.droppedRecords,
    spool.quarantinedChunks ?? 0,
  ].join("|");
}

/**
 * Parks agent long-polls and answers them from memory. One instance per shard of nodes; a publish
 * hands every shard the new head (version + hash), which releases its waiters at once — the
 * route then serves the bundle from its isolate's cache, so a release costs no D1 query. The hub
 * is also where heartbeats are coalesced: every poll marks its node seen, and one UPDATE per
 * shard every few seconds writes them all.
 */
export class PolicyHub extends DurableObject<Env> {
  private head: PolicyHead | null = null;
  /** The soaking rollout, if any: nodes outside its ring are answered its `from` head (targetHead). */
  private rollout: { from: PolicyHead | null; ring: ReadonlySet<string>; id: string } | null = null;
  private headCheckedAt = 0;
  private headLoad: Promise<PolicyHead | null> | null = null;
  private readonly waiters = new Set<Waiter>();
  private readonly seen = new Set<string>();
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private statuses: PendingStatus[] = [];
  private statusTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the scheduled status batch goes (epoch ms); an ACK may bring a heartbeat batch forward. */
  private statusDueAt = 0;
  private readonly lastReported = new Map<string, string>();
  private statusWrite: Promise<void> | null = null;
  private readonly statusBatches = { batches: 0, reports: 0, maxMs: 0, lastMs: 0 };

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.head = (await ctx.storage.get<PolicyHead>("head")) ?? null;
      this.useRollout((await ctx.storage.get<RolloutTargeting>("rollout")) ?? null);
    });
  }

  /**
   * Answers at once when `known` (the node's If-None-Match: a bundle tag, or a bare hash from
   * agents before tags) does not name the newest head, or `timeoutMs` is 0; otherwise parks until
   * a newer head arrives, the node is revoked, or `timeoutMs` passes.
   */
  async poll(nodeId: string, known: string | null, timeoutMs: number): Promise<HubAnswer> {
    this.markSeen(nodeId);
    const head = targetHead(nodeId, await this.currentHead(), this.rollout);
    if (!head || !tagNames(known, head) || timeoutMs <= 0) return { head };
    return new Promise((resolve) => {
      const waiter: Waiter = {
        nodeId,
        known,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          resolve({ head: targetHead(nodeId, this.head, this.rollout) });
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  /**
   * A publish or rollback: adopts the head if newer and releases every waiter it concerns, at once
   * or `releaseAfterMs` later (polls that arrive meanwhile are answered the new head at once).
   * Returns the waiters released, or, for a deferred release, those waiting now.
   */
  async notify(head: PolicyHead, releaseAfterMs = 0): Promise<number> {
    if (this.adopt(head)) await this.ctx.storage.put("head", this.head);
    this.headCheckedAt = Date.now();
    if (releaseAfterMs <= 0) return this.release();
    setTimeout(() => this.release(), releaseAfterMs);
    return this.waiters.size;
  }

  /**
   * A rollout started, promoted, halted or ended (null): every waiter re-checks its target, and
   * those whose target moved are released (services/rollout.ts).
   */
  async setRollout(rollout: RolloutTargeting | null): Promise<number> {
    this.useRollout(rollout);
    await this.ctx.storage.put("rollout", rollout);
    return this.release();
  }

  private useRollout(rollout: RolloutTargeting | null) {
    this.rollout = rollout ? { id: rollout.id, from: rollout.from, ring: new Set(rollout.ring) } : null;
  }

  /** Ends the parked polls of a revoked node, so it is refused without waiting for a timeout. */
  revoke(nodeId: string): number {
    let ended = 0;
    for (const waiter of this.waiters) {
      if (waiter.nodeId !== nodeId) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve({ head: this.head, revoked: true });
      ended++;
    }
    return ended;
  }

  /**
   * Records a status report (ACK/NACK or heartbeat) together with the others that arrive within
   * STATUS_GATHER_MS (HEARTBEAT_GATHER_MS when the batch holds only heartbeats): one D1 batch for
   * all of them. News resolves once the batch holding it committed, so the agent's 204 to an ACK
   * still means "stored"; a heartbeat resolves at once.
   */
  report(row: StatusRow): Promise<void> {
    return new Promise((done, failed) => {
      const news = this.lastReported.get(row.id) !== reportKey(row);
      // A heartbeat repeats what D1 already holds for the node (as this hub committed it) but for
      // times and counters: it is answered at once, so the agent's next poll is not held back, and
      // written with the next batch (a lost one only makes "last status" a few seconds older).
      if (news) this.statuses.push({ row, done, failed });
      else {
        this.statuses.push({ row, done: () => undefined, failed: () => undefined });
        done();
      }
      const dueAt = Date.now() + (news ? STATUS_GATHER_MS : HEARTBEAT_GATHER_MS);
      if (this.statusTimer && dueAt >= this.statusDueAt) return;
      if (this.statusTimer) clearTimeout(this.statusTimer);
      this.statusDueAt = dueAt;
      this.statusTimer = setTimeout(
        () => {
          this.statusTimer = null;
          void this.writeStatuses();
        },
        Math.max(0, dueAt - Date.now()),
      );
    });
  }

  stats(): HubStats {
    return {
      waiting: this.waiters.size,
      head: this.head,
      pendingSeen: this.seen.size,
      statusBatches: { ...this.statusBatches },
    };
  }

  private async writeStatuses(): Promise<void> {
    // One batch at a time; reports that arrive meanwhile form the next one.
    if (this.statusWrite) await this.statusWrite;
    const batch = this.statuses;
    this.statuses = [];
    if (batch.length === 0) return;
    const startedAt = Date.now();
    this.statusWrite = recordStatuses(
      getDb(this.env.DB),
      batch.map((p) => p.row),
    )
      .then(
        () => {
          const ms = Date.now() - startedAt;
          const figures = this.statusBatches;
          figures.batches++;
          figures.reports += batch.length;
          figures.lastMs = ms;
          figures.maxMs = Math.max(figures.maxMs, ms);
          for (const p of batch) {
            this.lastReported.delete(p.row.id);
            this.lastReported.set(p.row.id, reportKey(p.row));
          }
          while (this.lastReported.size > REMEMBERED_REPORTS)
            this.lastReported.delete(this.lastReported.keys().next().value!);
          for (const p of batch) p.done();
        },
        (error: unknown) => {
          console.error("policy-hub status batch failed", String(error));
          for (const p of batch) p.failed(error);
        },
      )
      .finally(() => {
        this.statusWrite = null;
      });
    await this.statusWrite;
  }

  /** Test hook: writes the pending last-seen times now instead of at the next flush. */
  async flushSeen(): Promise<number> {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    return this.flush();
  }

  private adopt(head: PolicyHead | null): boolean {
    // Heads order by (generation, version): a new signed series after a database restore starts
    // at a lower version number but a higher generation, and must replace the lost versions' head.
    if (!head || (this.head && headOrder(this.head, head) >= 0)) return false;
    this.head = head;
    return true;
  }

  /** Resolving is synchronous: the caller (a publish) never waits for the answers to be sent. */
  private release(): number {
    if (!this.head) return 0;
    let released = 0;
    for (const waiter of this.waiters) {
      const head = targetHead(waiter.nodeId, this.head, this.rollout);
      if (!head || tagNames(waiter.known, head)) continue;
      clearTimeout(waiter.timer);
      this.waiters.delete(waiter);
      waiter.resolve({ head });
      released++;
    }
    return released;
  }

  private async currentHead(): Promise<PolicyHead | null> {
    if (this.head && Date.now() - this.headCheckedAt < HEAD_RECHECK_MS) return this.head;
    const db = getDb(this.env.DB);
    // The rollout is read with the head, so a hub that missed a notify never serves a held node the new head.
    this.headLoad ??= Promise.all([latestHead(db), activeTargeting(db)])
      .then(async ([fromDb, rollout]) => {
        this.headCheckedAt = Date.now();
        const moved = this.rollout?.id !== rollout?.id;
        if (moved) {
          this.useRollout(rollout);
          await this.ctx.storage.put("rollout", rollout);
        }
        if (this.adopt(fromDb)) await this.ctx.storage.put("head", this.head);
        if (moved || this.head === fromDb) this.release();
        return this.head;
      })
      .finally(() => {
        this.headLoad = null;
      });
    return this.headLoad;
  }

  private markSeen(nodeId: string) {
    this.seen.add(nodeId);
    this.scheduleFlush();
  }

  private scheduleFlush() {
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = null;
      void this.flush();
    }, SEEN_FLUSH_MS);
  }

  private async flush(): Promise<number> {
    // A parked node was marked when its poll arrived, at most `wait` seconds ago, which the online
    // window (wait + 30 s) already allows for: it is not written again while it waits.
    const ids = new Set(this.seen);
    this.seen.clear();
    if (ids.size === 0) return 0;
    try {
      await touchNodes(getDb(this.env.DB), [...ids], Date.now());
    } catch (error) {
      // Kept for the next flush; a lost flush only makes "last seen" a few seconds older.
      for (const id of ids) this.seen.add(id);
      console.error("policy-hub last-seen flush failed", String(error));
    }
    if (this.seen.size > 0) this.scheduleFlush();
    return ids.size;
  }
}

/** Negative when `a` is older than `b`; heads stored before generations existed count as 0. */
function headOrder(a: PolicyHead, b: PolicyHead): number {
  return (a.generation ?? 0) - (b.generation ?? 0) || a.version - b.version;
}
