import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import { ack, createSite, enrollInSite, pollNow } from "./fleet-helpers";
import { call, expectError, json } from "./helpers/api";
import { blockPolicy, publish } from "./helpers/factories";
import { record, uploadChunk } from "./helpers/logs";

interface Rollout {
  id: string;
  state: string;
  toVersion: number | null;
  toHash: string | null;
  rollbackVersion: number | null;
  reason: string | null;
  ringAppliedAt: number | null;
  figures: { verdict: string; during: { requests: number; errorShare: number } } | null;
}

/** Runs the cron trigger the way Cloudflare does (the gates-only cron). */
async function cron() {
  const pending: Promise<unknown>[] = [];
  const ctx = { waitUntil: (p: Promise<unknown>) => pending.push(p), passThroughOnException() {} };
  worker.scheduled(
    { cron: "* * * * *", scheduledTime: Date.now(), noRetry() {} } as never,
    env,
    ctx as never,
  );
  await Promise.all(pending);
}

async function getRollout(id: string) {
  return json<Rollout>(await call(`/api/v1/rollouts/${id}`), 200);
}

/** A fleet of two sites: a ring site with `ring` nodes and a rest site with `rest` nodes, all on v1. */
async function fleet(ring = 1, rest = 2) {
  const ringSite = await createSite();
  const restSite = await createSite();
  const v1 = await publish(blockPolicy(`v1-${ringSite.name}.example`), "v1");
  const ringNodes = [];
  const restNodes = [];
  for (let i = 0; i < ring; i++) ringNodes.push(await enrollInSite(ringSite.name, `ring-${i}.example`));
  for (let i = 0; i < rest; i++) restNodes.push(await enrollInSite(restSite.name, `rest-${i}.example`));
  for (const node of [...ringNodes, ...restNodes]) await ack(node.nodeToken, v1);
  return { ringSite, restSite, v1, ringNodes, restNodes };
}

async function start(ringSite: string, soakSeconds: number, policy: unknown, gates?: Record<string, number>) {
  return json<Rollout>(
    await call("/api/v1/rollouts", {
      body: { policy, message: "staged", ring: { site: ringSite }, soakSeconds, ...(gates ? { gates } : {}) },
    }),
    201,
  );
}

describe("staged rollout", () => {
  it("gives the ring the new version, holds the rest, and promotes itself after the soak", async () => {
    const f = await fleet();
    const v2policy = blockPolicy("v2-promote.example");
    const rollout = await start(f.ringSite.name, 0, v2policy);
    expect(rollout.state).toBe("soaking");
    // Ring node: the new version; a held node: v1 still (304 on its hash, no new bundle).
    const ringPoll = await pollNow(f.ringNodes[0]!.nodeToken, f.v1.hash);
    expect(ringPoll.status).toBe(200);
    expect(ringPoll.bundle?.version).toBe(rollout.toVersion);
    const heldPoll = await pollNow(f.restNodes[0]!.nodeToken, f.v1.hash);
    expect(heldPoll.status).toBe(304);
    expect(heldPoll.etag).toContain(f.v1.hash);
    const nodes = await json<{ nodes: { id: string; sync: string }[] }>(
      await call(`/api/v1/nodes?site=${f.restSite.name}`),
      200,
    );
    expect(nodes.nodes.every((n) => n.sync === "held")).toBe(true);
    // A plain publish would reach everyone: refused while the rollout is active.
    await expectError(
      await call("/api/v1/policy/versions", { body: { policy: blockPolicy("x.example"), message: "x" } }),
      409,
      "CONFLICT",
    );

    await ack(f.ringNodes[0]!.nodeToken, { version: rollout.toVersion!, hash: rollout.toHash! });
    await cron(); // ring applied: soak starts (0 s)
    await cron(); // soak over, gates held: promoted
    const after = await getRollout(rollout.id);
    expect(after.state).toBe("promoted");
    expect(after.ringAppliedAt).not.toBeNull();
    const released = await pollNow(f.restNodes[0]!.nodeToken, f.v1.hash);
    expect(released.bundle?.version).toBe(rollout.toVersion);
    for (const node of f.restNodes)
      await ack(node.nodeToken, { version: rollout.toVersion!, hash: rollout.toHash! });
    const all = await json<{ nodes: { id: string; appliedVersion: number; sync: string }[] }>(
      await call("/api/v1/nodes"),
      200,
    );
    const mine = all.nodes.filter((n) => [...f.ringNodes, ...f.restNodes].some((x) => x.nodeId === n.id));
    expect(mine.map((n) => n.appliedVersion)).toEqual(mine.map(() => rollout.toVersion));
    const audit = JSON.stringify(await json(await call("/api/v1/audit?limit=50"), 200));
    for (const step of ["rollout.start", "rollout.ring-applied", "rollout.promote"])
      expect(audit).toContain(step);
  });

  it("halts on a NACK from the ring: the ring goes back to the previous content, the rest keep it", async () => {
    const f = await fleet();
    const rollout = await start(f.ringSite.name, 3600, blockPolicy("v2-nack.example"));
    await ack(f.ringNodes[0]!.nodeToken, f.v1, { state: "rejected", error: "proxy could not apply v2" });
    // The NACK itself triggers the check: no cron needed.
    const halted = await getRollout(rollout.id);
    expect(halted.state).toBe("halted");
    expect(halted.reason).toMatch(/rejected v\d+: proxy could not apply/);
    expect(halted.rollbackVersion).toBeGreaterThan(rollout.toVersion!);
    // The rollback version carries v1's content: ring gets it, held nodes already have that hash.
    const head = await json<{ versions: { version: number; hash: string; rollbackOf: number | null }[] }>(
      await call("/api/v1/policy/versions?limit=1"),
      200,
    );
    expect(head.versions[0]).toMatchObject({
      version: halted.rollbackVersion,
      hash: f.v1.hash,
      rollbackOf: f.v1.version,
    });
    const ring = await pollNow(f.ringNodes[0]!.nodeToken, rollout.toHash!);
    expect(ring.bundle).toMatchObject({ version: halted.rollbackVersion, hash: f.v1.hash });
    expect((await pollNow(f.restNodes[0]!.nodeToken, f.v1.hash)).status).toBe(304);
    // Publishing works again.
    await publish(blockPolicy("after-halt.example"), "after");
    const audit = JSON.stringify(await json(await call("/api/v1/audit?limit=50"), 200));
    expect(audit).toContain("rollout.halt");
    // The halt is an alert too (Settings → Alerts), opened once for this rollout.
    const opened = await env.DB.prepare("select kind, summary from alerts where subject = ?")
      .bind(rollout.id)
      .all();
    expect(opened.results).toEqual([
      { kind: "rollout.halted", summary: expect.stringMatching(/halted: node .* rejected/) },
    ]);
  });

  it("halts when the ring's error share rises over the gate", async () => {
    const f = await fleet();
    const rollout = await start(f.ringSite.name, 3600, blockPolicy("v2-errors.example"), {
      maxErrorShareIncrease: 0.1,
      minRequests: 10,
    });
    await ack(f.ringNodes[0]!.nodeToken, { version: rollout.toVersion!, hash: rollout.toHash! });
    await cron(); // ring applied
    const now = new Date().toISOString();
    const records = [
      ...Array.from({ length: 15 }, () => record({ ts: now, action: "error", status: 502 })),
      ...Array.from({ length: 5 }, () => record({ ts: now })),
    ];
    const res = await uploadChunk(f.ringNodes[0]!.nodeToken, "e1.1", records);
    expect(res.status).toBe(200);
    await cron();
    const halted = await getRollout(rollout.id);
    expect(halted.state).toBe("halted");
    expect(halted.reason).toMatch(/error share in the ring rose from 0\.0% to 75\.0%/);
    expect(halted.figures?.during.requests).toBe(20);
  });

  it("admin promotes, halts and rolls back by hand; viewers cannot", async () => {
    const f = await fleet(1, 1);
    const a = await start(f.ringSite.name, 3600, blockPolicy("v2-hand.example"));
    const viewer = await json<{ token: string }>(
      await call("/api/v1/tokens", { body: { name: "v", role: "viewer" } }),
      201,
    );
    await expectError(
      await call(`/api/v1/rollouts/${a.id}/promote`, { method: "POST", token: viewer.token }),
      403,
      "FORBIDDEN",
    );
    await json(await call(`/api/v1/rollouts/${a.id}`, { token: viewer.token }), 200);
    const promoted = await json<Rollout>(
      await call(`/api/v1/rollouts/${a.id}/promote`, { method: "POST" }),
      200,
    );
    expect(promoted.state).toBe("promoted");
    await expectError(
      await call(`/api/v1/rollouts/${a.id}/halt`, { method: "POST", body: {} }),
      409,
      "CONFLICT",
    );
    const back = await json<Rollout>(
      await call(`/api/v1/rollouts/${a.id}/rollback`, { method: "POST" }),
      200,
    );
    expect(back.state).toBe("rolled-back");
    const latest = await json<{ versions: { hash: string }[] }>(
      await call("/api/v1/policy/versions?limit=1"),
      200,
    );
    expect(latest.versions[0]!.hash).toBe(f.v1.hash);
    await expectError(
      await call("/api/v1/rollouts", {
        body: {
          policy: blockPolicy("z.example"),
          message: "m",
          ring: { site: "no-nodes-here" },
          soakSeconds: 1,
        },
      }),
      400,
      "VALIDATION_FAILED",
    );
    await expectError(
      await call("/api/v1/rollouts", {
        body: { policy: blockPolicy("z.example"), message: "m", ring: { percent: 500 }, soakSeconds: 1 },
      }),
      400,
      "VALIDATION_FAILED",
    );
    void env;
  });
});
