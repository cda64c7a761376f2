import { DurableObject } from "cloudflare:workers";

interface Waiter {
  known: number;
  resolve: (version: number | null) => void;
  timer: ReturnType<typeof setTimeout>;
}

/**
 * Parks agent long-polls until a publish announces a newer version. One instance per shard of
 * nodes; a publish notifies every shard. The latest announced version is kept in storage so a
 * poll that arrives just after a notify (but read D1 just before the publish) returns at once.
 */
export class PolicyHub extends DurableObject<Env> {
  private latest = 0;
  private readonly waiters = new Set<Waiter>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.latest = (await ctx.storage.get<number>("latest")) ?? 0;
    });
  }

  /** Resolves with the newest version once it is above `known`, or null after `timeoutMs`. */
  waitForVersion(known: number, timeoutMs: number): Promise<number | null> {
    if (this.latest > known) return Promise.resolve(this.latest);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        known,
        resolve,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          resolve(null);
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  async notify(version: number): Promise<number> {
    if (version > this.latest) {
      this.latest = version;
      await this.ctx.storage.put("latest", version);
    }
    let released = 0;
    for (const waiter of this.waiters) {
      if (this.latest > waiter.known) {
        clearTimeout(waiter.timer);
        this.waiters.delete(waiter);
        waiter.resolve(this.latest);
        released++;
      }
    }
    return released;
  }

  waiting(): number {
    return this.waiters.size;
  }
}
