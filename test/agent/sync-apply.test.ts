import { describe, expect, it } from "vitest";
import { MASTER } from "./fakes/master";
import { makeBundle, OTHER_SEED, signingKey } from "./fakes/seeds";
import { type Harness, runUntil, setup } from "./fakes/sync";

const signal = new AbortController().signal;
const reported = (t: Harness, state: "applied" | "rejected") => () =>
  t.master.statuses.some((s) => s.state === state && (state === "rejected" || s.appliedVersion !== null));
const firstReport = (t: Harness, state: "applied" | "rejected") =>
  t.master.statuses.find((s) => s.state === state && (state === "rejected" || s.appliedVersion !== null))!;

describe("sync loop: applying bundles", () => {
  it("verifies, saves as last-good, applies, then ACKs — in that order", async () => {
    const t = await setup();
    t.master.current = await makeBundle(t.key, 3, { defaultAction: "allow" });
    await runUntil(t, reported(t, "applied"));

    // The first status is the start-up heartbeat (nothing applied yet), sent before the first poll.
    expect(t.log).toEqual(["status applied vnull", "save v3", "apply v3", "status applied v3"]);
    expect(t.master.polls[0]?.url).toBe(`${MASTER}/api/agent/v1/policy?wait=0`);
    const ack = firstReport(t, "applied");
    expect(ack).toMatchObject({
      appliedVersion: 3,
      appliedHash: t.master.current.hash,
      state: "applied",
      proxy: { kind: "builtin", listen: "127.0.0.1:3128", version: "builtin-test" },
      spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
      agentVersion: "0.1.0-test",
    });
    expect(ack.error).toBeUndefined();
    expect(t.events.types()).toContain("policy.applied");
    expect(t.loop.snapshot()).toMatchObject({
      enforcing: "policy",
      appliedVersion: 3,
      master: "ok",
      lastError: null,
    });
  });

  it("long-polls with If-None-Match and keeps everything on 304", async () => {
    const t = await setup();
    t.master.current = await makeBundle(t.key, 1, { defaultAction: "allow" });
    await t.loop.pollOnce(signal);
    const delay = await t.loop.pollOnce(signal);

    expect(t.master.polls[1]).toEqual({
      url: `${MASTER}/api/agent/v1/policy?wait=25`,
      etag: t.master.current.hash,
      // Every poll is a heartbeat; the master records the agent version from this header.
      userAgent: expect.stringMatching(/^fleetgate-agent\/\S+$/),
    });
    expect(t.driver.applied).toEqual([1]);
    expect(t.store.saved).toHaveLength(1);
    expect(delay).toBeGreaterThan(0); // an instant 304 does not make the loop spin
  });

  it("NACKs a bundle signed by another key and keeps the applied policy", async () => {
    const t = await setup();
    t.master.current = await makeBundle(t.key, 1, { defaultAction: "allow" });
    await t.loop.pollOnce(signal);
    t.master.current = await makeBundle(await signingKey(OTHER_SEED), 2, { defaultAction: "block" });
    await t.loop.pollOnce(signal);
    await runUntil(t, reported(t, "rejected"));

    expect(t.driver.applied).toEqual([1]);
    expect(t.store.saved.map((b) => b.version)).toEqual([1]);
    const nack = firstReport(t, "rejected");
    expect(nack).toMatchObject({ state: "rejected", appliedVersion: 1 });
    expect(nack.error).toMatch(/v2 refused: signed by key/);
    expect(t.events.types()).toContain("policy.rejected");
    expect(t.loop.snapshot().lastError).toMatch(/refused/);
  });

  it("NACKs a bundle whose policy was altered after signing, then waits on its hash", async () => {
    const t = await setup();
    const bundle = await makeBundle(t.key, 1, { defaultAction: "block" });
    t.master.current = { ...bundle, policy: { defaultAction: "allow" } };
    await t.loop.pollOnce(signal);

    expect(t.driver.applied).toEqual([]);
    expect(t.events.events.find((e) => e.type === "policy.rejected")?.fields.error).toMatch(
      /does not match its hash/,
    );
    await t.loop.pollOnce(signal);
    expect(t.master.polls[1]?.etag).toBe(bundle.hash);
  });

  it("asks for a refused bundle again after a while, in case it was damaged in transit", async () => {
    const t = await setup({ refusedRetryMs: 60_000 });
    const good = await makeBundle(t.key, 1, { defaultAction: "allow" });
    t.master.queue.push(Response.json({ ...good, policy: { defaultAction: "block" } }));
    t.master.current = good;
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([]);
    t.clock.t += 61_000;
    await t.loop.pollOnce(signal);
    expect(t.driver.applied).toEqual([1]);
  });

  it("refuses a version below the applied one", async () => {
    const t = await setup();
    t.master.current = await makeBundle(t.key, 5, { defaultAction: "allow" });
    await t.loop.pollOnce(signal);
    t.master.current = await makeBundle(t.key, 4, { defaultAction: "block" });
    await t.loop.pollOnce(signal);

    expect(t.driver.applied).toEqual([5]);
    expect(t.loop.snapshot().lastError).toMatch(/v4 is older than the applied v5/);
  });

  it("NACKs a policy that does not validate and never saves it", async () => {
    const t = await setup();
    t.master.current = await makeBundle(t.key, 1, { invalid: true });
    await runUntil(t, reported(t, "rejected"));

    expect(t.store.saved).toEqual([]);
    expect(t.driver.applied).toEqual([]);
    expect(firstReport(t, "rejected")).toMatchObject({ state: "rejected", appliedVersion: null });
    expect(firstReport(t, "rejected").error).toMatch(/cannot be applied: rules\.0\.action/);
  });

  it("NACKs a malformed answer and backs off instead of spinning", async () => {
    const t = await setup();
    t.master.queue.push(Response.json({ version: "x" }));
    const delay = await t.loop.pollOnce(signal);
    expect(t.loop.snapshot().lastError).toMatch(/malformed/);
    expect(delay).toBeGreaterThan(0);
  });

  it("does not apply or ACK when last-good cannot be written", async () => {
    const t = await setup();
    t.store.failSave = true;
    t.master.current = await makeBundle(t.key, 1, { defaultAction: "allow" });
    await runUntil(t, reported(t, "rejected"));

    expect(t.driver.applied).toEqual([]);
    expect(firstReport(t, "rejected").error).toMatch(/could not be saved: disk full/);
  });

  it("restores the previous last-good when the driver refuses the new policy", async () => {
    const t = await setup();
    t.master.current = await makeBundle(t.key, 1, { defaultAction: "allow" });
    await t.loop.pollOnce(signal);
    t.driver.failNext = true;
    t.master.current = await makeBundle(t.key, 2, { defaultAction: "block" });
    await t.loop.pollOnce(signal);

    expect((t.store.cached as { version: number }).version).toBe(1);
    expect(t.loop.snapshot()).toMatchObject({ appliedVersion: 1 });
    expect(t.loop.snapshot().lastError).toMatch(/proxy could not apply v2/);
  });

  it("sends a /status heartbeat at least every 60 s while nothing changes", async () => {
    const t = await setup({ heartbeatMs: 60_000, pollWaitSeconds: 25 });
    t.master.current = await makeBundle(t.key, 1, { defaultAction: "allow" });
    t.master.holdMs = 25_000;
    const start = t.clock.now();
    await runUntil(t, () => t.clock.now() - start > 10 * 60_000);

    const times = t.master.statusTimes;
    expect(times.length).toBeGreaterThanOrEqual(10);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual(60_000);
    // ~25 s per poll: one status every other poll, not one per poll.
    expect(times.length).toBeLessThan(t.master.polls.length);
  });
});
