import { describe, expect, it } from "vitest";
import { backoffDelay, parseRetryAfter } from "../../agent/sync/backoff";
import { errorReply } from "./fakes/master";
import { makeBundle } from "./fakes/seeds";
import { runUntil, setup } from "./fakes/sync";

const refused = () => Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });

describe("sync loop: master trouble", () => {
  it("backs off exponentially with full jitter, capped at 30 s", async () => {
    const t = await setup({ random: () => 0.999 });
    t.master.queue.push(...Array.from({ length: 12 }, refused));
    await runUntil(t, () => t.clock.sleeps.length >= 12);

    expect(t.clock.sleeps.map((ms) => Math.round(ms / 1000))).toEqual([
      1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30, 30,
    ]);
    expect(t.events.types()).toContain("sync.backoff");
    expect(t.loop.snapshot()).toMatchObject({ master: "unreachable" });
    expect(t.loop.snapshot().lastError).toMatch(/ECONNREFUSED/);
  });

  it("draws each delay uniformly below the ceiling (full jitter)", () => {
    expect(backoffDelay(3, () => 0)).toBe(0);
    expect(backoffDelay(3, () => 0.25)).toBe(2_000);
    expect(backoffDelay(40, () => 0.5)).toBe(30_000);
    const seen = new Set(Array.from({ length: 50 }, () => backoffDelay(5, Math.random)));
    expect(seen.size).toBeGreaterThan(40);
    for (const delay of seen) expect(delay).toBeLessThan(32_000);
  });

  it("resets the backoff after a successful poll", async () => {
    const t = await setup({ random: () => 0.999 });
    t.master.queue.push(refused(), refused(), refused());
    await runUntil(t, () => t.clock.sleeps.length >= 4);
    t.master.queue.push(refused());
    await runUntil(t, () => t.clock.sleeps.length >= 6);
    // 1, 2, 4 s, then the 1 s poll spacing after the 304, then 1 s again after the next failure.
    expect(t.clock.sleeps.slice(0, 3).map((ms) => Math.round(ms / 1000))).toEqual([1, 2, 4]);
    expect(t.clock.sleeps.at(-1)).toBeLessThanOrEqual(1_000);
  });

  it("honours Retry-After on 429 and 503", async () => {
    const t = await setup();
    t.master.queue.push(errorReply(503, "UNAVAILABLE", { "retry-after": "7" }));
    t.master.queue.push(errorReply(429, "RATE_LIMITED", { "retry-after": "120" }));
    await runUntil(t, () => t.clock.sleeps.length >= 2);
    expect(t.clock.sleeps).toEqual([7_000, 120_000]);
    expect(parseRetryAfter(new Date(1_000_000 + 30_000).toUTCString(), 1_000_000)).toBe(30_000);
    expect(parseRetryAfter("soon", 0)).toBeNull();
    expect(parseRetryAfter("999999", 0)).toBe(600_000);
  });

  it("on NODE_UNKNOWN slows to minutes and keeps enforcing the applied policy", async () => {
    const t = await setup();
    t.master.current = await makeBundle(t.key, 2, { defaultAction: "block" });
    await t.loop.pollOnce(new AbortController().signal);
    t.master.queue.push(...Array.from({ length: 3 }, () => errorReply(401, "NODE_UNKNOWN")));
    const statusesBefore = t.master.statuses.length;
    await runUntil(t, () => t.clock.sleeps.length >= 3);

    for (const ms of t.clock.sleeps) expect(ms).toBeGreaterThanOrEqual(3 * 60_000);
    expect(t.driver.applied).toEqual([2]); // never failed closed
    expect(t.loop.snapshot()).toMatchObject({
      master: "node-unknown",
      enforcing: "policy",
      appliedVersion: 2,
    });
    expect(t.loop.snapshot().lastError).toMatch(/re-enroll/);
    expect(t.events.types().filter((e) => e === "sync.node_unknown")).toHaveLength(1);
    // At most the start-up heartbeat before the first 401; no status spam at a master that refuses us.
    expect(t.master.statuses.length).toBeLessThanOrEqual(statusesBefore + 1);
  });

  it("names the allow list when the master answers IP_NOT_ALLOWED", async () => {
    const t = await setup();
    t.master.queue.push(errorReply(403, "IP_NOT_ALLOWED"));
    await t.loop.pollOnce(new AbortController().signal);
    expect(t.loop.snapshot().lastError).toMatch(/agent allow list/);
  });
});

describe("sync loop: start-up from the cached policy", () => {
  it("enforces a verified cached bundle before contacting the master, and keeps it while the master is down", async () => {
    const key = (await setup()).key;
    const cached = await makeBundle(key, 4, { defaultAction: "block" });
    const t = await setup({}, cached);
    await t.loop.restoreFromCache();
    expect(t.driver.applied).toEqual([4]);
    expect(t.master.polls).toHaveLength(0);

    t.master.queue.push(...Array.from({ length: 5 }, refused));
    await runUntil(t, () => t.clock.sleeps.length >= 5);
    expect(t.driver.applied).toEqual([4]);
    expect(t.loop.snapshot()).toMatchObject({
      enforcing: "policy",
      appliedVersion: 4,
      master: "unreachable",
    });
    expect(t.events.events.find((e) => e.type === "policy.applied")?.fields).toMatchObject({
      source: "cache",
    });
  });

  it("refuses a tampered cached bundle, fails closed, reports it, then fetches a fresh one", async () => {
    const key = (await setup()).key;
    const good = await makeBundle(key, 4, { defaultAction: "block" });
    const t = await setup({}, { ...good, policy: { defaultAction: "allow" } });
    await t.loop.restoreFromCache();

    expect(t.driver.applied).toEqual([null]);
    expect(t.loop.snapshot()).toMatchObject({ enforcing: "fail-closed" });
    expect(t.loop.snapshot().lastRefusal).toMatch(/cached policy refused/);
    expect(t.events.events.find((e) => e.type === "policy.rejected")?.fields).toMatchObject({
      source: "cache",
    });

    t.master.current = good;
    await runUntil(t, () => t.master.statuses.some((s) => s.state === "applied" && s.appliedVersion === 4));
    expect(t.master.statuses[0]).toMatchObject({ state: "rejected", appliedVersion: null });
    expect(t.master.statuses[0]?.error).toMatch(/cached policy refused: .*policy does not match its hash/);
    expect(t.master.polls[0]?.etag).toBeNull();
    expect(t.driver.applied).toEqual([null, 4]);
    expect(t.loop.snapshot()).toMatchObject({ enforcing: "policy", lastRefusal: null, lastError: null });
  });

  it("fails closed with no cached policy and says so", async () => {
    const t = await setup();
    await t.loop.restoreFromCache();
    expect(t.driver.applied).toEqual([null]);
    expect(t.loop.snapshot()).toMatchObject({ enforcing: "fail-closed", appliedVersion: null });
    expect(t.events.types()).toEqual(["policy.none"]);
  });

  it("keeps the cached version as the floor: an older bundle from the master is refused", async () => {
    const key = (await setup()).key;
    const t = await setup({}, await makeBundle(key, 9, { defaultAction: "allow" }));
    await t.loop.restoreFromCache();
    t.master.current = await makeBundle(key, 8, { defaultAction: "block" });
    await t.loop.pollOnce(new AbortController().signal);
    expect(t.driver.applied).toEqual([9]);
    expect(t.loop.snapshot().lastError).toMatch(/older than the applied v9/);
  });
});
