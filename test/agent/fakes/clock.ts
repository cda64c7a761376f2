// One fake clock, three ways to sleep:
// - "manual": sleep returns at once and moves time forward (a loop runs as fast as it can);
// - "timer": sleep parks until the test moves time past its deadline with `advance`, so a long
//   poll and a report sent beside it interleave as they would on a real clock;
// - "real": `now` is the test's, sleeps are real (short) timers (the spool's uploader and disk queue).
import { systemClock } from "../../../agent/clock";
import type { Clock } from "../../../agent/ports";

export type ClockMode = "manual" | "timer" | "real";

export const T0 = 1_700_000_000_000;

export class FakeClock implements Clock {
  /** Every sleep asked for, in order (manual mode). */
  readonly sleeps: number[] = [];
  private timers: { at: number; seq: number; fire: () => void }[] = [];
  private seq = 0;

  constructor(
    readonly mode: ClockMode = "manual",
    public t = T0,
    private readonly onSleep?: (ms: number) => void,
  ) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (this.mode === "real") return systemClock.sleep(ms, signal);
    if (this.mode === "manual") {
      if (signal?.aborted) return Promise.resolve();
      this.sleeps.push(ms);
      this.t += ms;
      this.onSleep?.(ms);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = {
        at: this.t + Math.max(0, ms),
        seq: this.seq++,
        fire: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.timers = this.timers.filter((t) => t !== timer);
        resolve();
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.timers.push(timer);
    });
  }

  /** Timer mode: moves time forward by `ms`, firing due timers in order and letting their work run in between. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await settle();
    for (;;) {
      const next = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.t = Math.max(this.t, next.at);
      next.fire();
      await settle();
    }
    this.t = end;
    await settle();
  }
}

/** Lets pending promise chains (fetch bodies, timers' continuations) run to their next wait. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}
