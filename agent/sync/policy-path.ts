// The one way a bundle becomes the enforced policy: verify against the trusted keys, order against
// what is applied, compile, persist as last-good, apply to the proxy. Used for the on-disk cache at
// start (already persisted, so no save and no key move) and for every bundle from the master.
// Remembers refusals so the same bad bundle is neither verified, compiled nor NACKed again.
import type { NextKey } from "../../protocol/signing";
import { bundleTag, isBundleTag, type MasterKey, type PolicyBundle } from "../../protocol/wire";
import { monotonicNow } from "../clock";
import {
  type BundleHead,
  compareOrder,
  compileOpened,
  openBundle,
  type Position,
  type PrepareBundle,
  type Prepared,
  prepareInThread,
} from "./prepare";
import type { SyncOptions, SyncSnapshot } from "./types";

export type Outcome = { state: "applied" } | { state: "rejected"; error: string };

/**
 * Why a bundle was refused decides whether asking for it again can help: "final" (it verified but
 * cannot be used: a downgrade, a policy this agent cannot compile) never, "transit" (hash or
 * signature wrong) once, in case it was damaged on the way, "local" (disk or proxy) after a while.
 */
type Refusal = "final" | "transit" | "local";
const MAX_REMEMBERED_REFUSALS = 32;

/** What the loop does after a bundle: poll again now, treat it as a failed download, or back off. */
export type Accepted = { next: "poll" } | { next: "incomplete"; reason: string } | { next: "backoff" };

type PolicyPathOptions = Pick<
  SyncOptions,
  | "store"
  | "driver"
  | "events"
  | "compile"
  | "clock"
  | "masterKey"
  | "nextMasterKey"
  | "refusedRetryMs"
  | "prepare"
  | "onApplied"
> & {
  /** Every ACK/NACK-worthy result, for the status reporter. */
  onOutcome(outcome: Outcome): void;
  /** Changes to the snapshot fields this path owns (enforcing, applied*, lastError, lastRefusal). */
  update(change: Partial<SyncSnapshot>): void;
  lastError(): string | null;
  lastRefusal(): string | null;
};

type Ready = Extract<Prepared, { ok: true }>;

export class PolicyPath {
  private readonly prepare: PrepareBundle;
  private readonly refusedRetryMs: number;
  /** The pinned key and, during a rotation, the next one it announced; both verify. */
  private keys: { pin: MasterKey; next: MasterKey | null };
  private applied: { head: BundleHead; position: Position; save: PolicyBundle | Uint8Array } | null = null;
  /** Hash of the last refused bundle, sent as If-None-Match so the master holds the poll until a new publish. */
  private refused: { hash: string; at: number; permanent: boolean } | null = null;
  /** Whether the master names bundles by tag (generation.version.hash) or, before tags, by hash. */
  private masterTags = true;
  /** Hashes refused for good, and how often each transit-refused hash came. */
  private readonly refusals = new Map<string, { permanent: boolean; count: number }>();

  constructor(private readonly o: PolicyPathOptions) {
    this.prepare = o.prepare ?? prepareInThread(o.compile);
    this.refusedRetryMs = o.refusedRetryMs ?? 5 * 60_000;
    this.keys = { pin: o.masterKey, next: o.nextMasterKey ?? null };
  }

  appliedHead(): BundleHead | null {
    return this.applied?.head ?? null;
  }

  /** The name to poll with (tag or hash): a refused bundle's while it is remembered, else the applied one's. */
  currentEtag(): string | null {
    const refused = this.refused;
    if (refused && (refused.permanent || this.mono() - refused.at < this.refusedRetryMs)) return refused.hash;
    this.refused = null;
    return this.applied ? this.nameOf(this.applied.position) : null;
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
      this.o.update({ enforcing: "fail-closed" });
      return;
    }
    const prepared = await compileOpened(await openBundle(raw, this.trusted(), null), this.o.compile);
    if (prepared.ok) {
      await this.install(prepared, "cache");
      return;
    }
    await this.o.driver.applyPolicy(null);
    const error = `cached policy refused: ${prepared.reason}`;
    this.o.events.emit("policy.rejected", { source: "cache", error });
    this.o.onOutcome({ state: "rejected", error });
    this.o.update({ enforcing: "fail-closed", lastError: error, lastRefusal: error });
  }

  /**
   * A bundle as this master names it: its tag `<generation>.<version>.<hash>` (a new series of
   * unchanged content is a new bundle), or the bare hash for a master from before tags.
   */
  private nameOf(position: Position): string {
    return this.masterTags ? bundleTag(position) : position.hash;
  }

  /** A downloaded bundle: verified, ordered, compiled, saved and applied, or refused and remembered. */
  async accept(bytes: Uint8Array, etag: string | null): Promise<Accepted> {
    const current = this.applied;
    // The master names the bundle in its ETag: the applied one, or one refused for good (a master
    // ignoring If-None-Match) is neither parsed, verified nor compiled again, and not NACKed twice.
    if (etag !== null) this.masterTags = isBundleTag(etag);
    if (etag !== null && current && etag === this.nameOf(current.position)) return { next: "poll" };
    if (etag !== null && this.refusedForGood(etag)) return { next: "poll" };
    const prepared = await this.prepare(bytes, this.trusted(), current?.position ?? null);
    if (!prepared.ok) {
      if (prepared.why === "incomplete") return { next: "incomplete", reason: prepared.reason };
      // Refusals are remembered under the master's name for the bundle (its tag, or its hash).
      const hash = etag ?? prepared.hash;
      if (hash !== null && this.refusedForGood(hash)) return { next: "poll" };
      await this.refuse(hash !== null ? { hash } : null, prepared.reason, prepared.why);
      // Without a hash to wait on, the master would answer the same bytes at once: slow down.
      return hash !== null ? { next: "poll" } : { next: "backoff" };
    }
    // The same (generation, version) is the applied bundle (openBundle refused it if the hash
    // differed); the same content in a new series is not: it may carry a new key or pin.
    if (current && compareOrder(prepared.position, current.position) === 0) return { next: "poll" };
    await this.install(prepared, "master");
    return { next: "poll" };
  }

  /**
   * Persist (bundles from the master only: the cache is on disk already), apply, record. Persisting
   * comes before enforcing and before the ACK: what the master sees as applied survives a restart.
   */
  private async install(prepared: Ready, source: "cache" | "master"): Promise<void> {
    const { head } = prepared;
    const previous = this.applied;
    const name = { hash: this.nameOf(prepared.position), version: head.version };
    if (source === "master") {
      try {
        await this.o.store.saveLastGood(prepared.save);
      } catch (error) {
        await this.refuse(
          name,
          `bundle v${head.version} could not be saved: ${(error as Error).message}`,
          "local",
        );
        return;
      }
    }
    const started = this.mono();
    try {
      await this.o.driver.applyPolicy({
        version: head.version,
        hash: head.hash,
        compiled: prepared.compiled,
      });
    } catch (error) {
      // A cache that cannot be applied at start is the proxy failing: let `run` say so.
      if (source === "cache") throw error;
      if (previous) await this.o.store.saveLastGood(previous.save).catch(() => undefined);
      await this.refuse(name, `proxy could not apply v${head.version}: ${(error as Error).message}`, "local");
      return;
    }
    this.o.onApplied?.({
      version: head.version,
      source,
      durationMs: Math.max(0, this.o.clock.now() - started),
    });
    this.applied = { head, position: prepared.position, save: prepared.save };
    this.refused = null;
    this.o.events.emit("policy.applied", { source, version: head.version, hash: head.hash });
    // A restart re-applying the cache is not news to the master; an apply from the master is ACKed.
    if (source === "master") this.o.onOutcome({ state: "applied" });
    this.o.update({
      enforcing: "policy",
      appliedVersion: head.version,
      appliedHash: head.hash,
      appliedAt: new Date(this.o.clock.now()).toISOString(),
      lastError: source === "master" ? null : this.o.lastError(),
      lastRefusal: source === "master" ? null : this.o.lastRefusal(),
    });
    if (source === "master") await this.moveKeys(prepared.kid, prepared.nextKey);
  }

  private trusted(): MasterKey[] {
    return this.keys.next ? [this.keys.pin, this.keys.next] : [this.keys.pin];
  }

  private refusedForGood(hash: string): boolean {
    if (!this.refusals.get(hash)?.permanent) return false;
    this.refused = { hash, at: this.mono(), permanent: true };
    return true;
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

  private async refuse(bundle: { hash: string; version?: number } | null, error: string, why: Refusal) {
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
    this.o.onOutcome({ state: "rejected", error });
    this.o.update({ lastError: error, lastRefusal: error });
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
}
