// After a master outage every node comes back within one backoff ceiling, spread over it (no
// stampede in the first second), applies what was published meanwhile and ACKs it: the fleet
// bench's outage phase (docs/scale.md "Reconnect after a master outage") in miniature.
import { describe, expect, it } from "vitest";
import { backoffDelay } from "../../agent/sync/backoff";
import { SYNC_BACKOFF_CAP_MS } from "../../agent/sync/loop";
import { makeBundle } from "./fakes/seeds";
import { runUntil, setup } from "./fakes/sync";

const refused = () => Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });

/** A small deterministic PRNG (mulberry32), so the fleet below is the same on every run. */
function seeded(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("sync loop: reconnect after a master outage", () => {
  it("caps the backoff at 30 s, so a node notices a returning master within 30 s", async () => {
    const t = await setup({ random: () => 0.999 });
    t.master.queue.push(...Array.from({ length: 10 }, refused));
    await runUntil(t, () => t.clock.sleeps.length >= 10);
    expect(SYNC_BACKOFF_CAP_MS).toBe(30_000);
    expect(t.clock.sleeps.map((ms) => Math.round(ms / 1000))).toEqual([1, 2, 4, 8, 16, 30, 30, 30, 30, 30]);
  });

  it("re-arms after the outage: the first answer carries the version published meanwhile, then the ACK, then the long poll again", async () => {
    const t = await setup({ random: () => 0.999 });
    t.master.current = await makeBundle(t.key, 1, { defaultAction: "allow" });
    await runUntil(t, () => t.master.statuses.some((s) => s.appliedVersion === 1));
    // A long outage (far past the ceiling), during which v2 is published.
    t.master.queue.push(...Array.from({ length: 12 }, refused));
    t.master.current = await makeBundle(t.key, 2, { defaultAction: "block" });
    const pollsBefore = t.master.polls.length;
    const sleepsBefore = t.clock.sleeps.length;
    await runUntil(t, () => t.master.statuses.some((s) => s.appliedVersion === 2 && s.state === "applied"));

    const outageSleeps = t.clock.sleeps.slice(sleepsBefore);
    for (const ms of outageSleeps) expect(ms).toBeLessThan(SYNC_BACKOFF_CAP_MS);
    expect(t.driver.applied).toEqual([1, 2]);
    // The first poll that reached the master after the outage was not held (wait=0), named v1,
    // and brought v2 at once; the ACK went out before the next poll.
    const [first] = t.master.polls.slice(pollsBefore);
    expect(first!.url).toContain("wait=0");
    expect(first!.etag).toBe(t.master.polls[pollsBefore - 1]!.etag);
    expect(t.master.polls.length).toBeLessThanOrEqual(pollsBefore + 2);
    expect(t.loop.snapshot()).toMatchObject({ master: "ok", appliedVersion: 2 });

    // And the loop is back to holding long polls.
    await runUntil(t, () => t.master.polls.length > pollsBefore + 1);
    expect(t.master.polls.at(-1)!.url).toContain("wait=25");
  });

  it("spreads a fleet's reconnects over the ceiling: none later than 30 s, a few per cent in the first second", () => {
    // 1,000 nodes that lost the master at random points of their schedule, for 60 s: each keeps
    // drawing the loop's backoff (attempt 0, 1, 2, …) until a sleep ends after the master is back.
    const random = seeded(42);
    const outageMs = 60_000;
    const delays: number[] = [];
    for (let node = 0; node < 1000; node++) {
      let at = random() * 1000; // its first failed attempt, within a second of the stop
      for (let attempt = 0; at < outageMs; attempt++)
        at += backoffDelay(attempt, random, 1_000, SYNC_BACKOFF_CAP_MS) + 5; // + the refused attempt
      delays.push(at - outageMs);
    }
    delays.sort((a, b) => a - b);
    const within = (lo: number, hi: number) => delays.filter((d) => d >= lo && d < hi).length;
    expect(delays.at(-1)!).toBeLessThan(SYNC_BACKOFF_CAP_MS);
    // No stampede: the first second holds a few per cent (48 of 1,000 with this seed), no more
    // than the seconds after it.
    expect(within(0, 1_000)).toBeLessThan(80);
    expect(within(0, 1_000)).toBeLessThanOrEqual(within(1_000, 5_000) / 2);
    expect(within(0, 1_000)).toBeGreaterThan(0);
    // Most nodes are mid-sleep of up to 30 s when the master returns: the density falls off
    // towards the ceiling, but every 5 s band gets some, and none gets a third of the fleet.
    const bands = [0, 5, 10, 15, 20, 25].map((s) => within(s * 1000, (s + 5) * 1000));
    for (const band of bands) {
      expect(band).toBeGreaterThan(20);
      expect(band).toBeLessThan(330);
    }
    expect(delays[500]!).toBeGreaterThan(5_000);
  });
});
