import { env } from "cloudflare:test";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { bundleTag, type PolicyBundle } from "../../protocol/wire";
import { getDb, observeStatements } from "../../worker/db/client";
import { nodes as nodesTable } from "../../worker/db/schema";
import type { PolicyHub } from "../../worker/durable/policy-hub";
import { recordStatuses, type StatusRow, statusRounds } from "../../worker/services/node-status";
import { flushHubs, hubStats, shardCount } from "../../worker/services/policy-hub";
import { statusReport } from "../helpers/status-report";
import { call, expectError, json } from "./helpers/api";
import { blockPolicy, createEnrollmentKey, enrollNode, publish } from "./helpers/factories";

/** Every D1 statement prepared (route, services and the PolicyHub) while `run` runs. */
async function statementsDuring<T>(run: () => Promise<T>): Promise<{ result: T; sql: string[] }> {
  const sql: string[] = [];
  const stop = observeStatements((s) => sql.push(s));
  try {
    return { result: await run(), sql };
  } finally {
    stop();
  }
}

// Each simulated node enrolls and polls from its own address (enrollment is rate-limited per address).
let addressSeq = Math.floor(Math.random() * 60_000);
async function enrollFleetNode(overrides: Record<string, unknown> = {}, address?: string) {
  const from = address ?? `198.18.${(addressSeq >> 8) & 255}.${addressSeq++ & 255}`;
  return { ...(await enrollNode(overrides, from)), address: from };
}

const poll = (node: { nodeToken: string; address: string }, hash: string | null, wait: number) =>
  call(`/api/agent/v1/policy?wait=${wait}`, {
    token: node.nodeToken,
    address: node.address,
    headers: hash ? { "If-None-Match": `"${hash}"` } : {},
  });

async function waitingTotal() {
  return (await hubStats(env)).reduce((sum, shard) => sum + shard.waiting, 0);
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not reached in time");
    await new Promise((r) => setTimeout(r, 25));
  }
}

const reads = (sql: string[], table: string) =>
  sql.filter((s) => /^\s*select/i.test(s) && s.includes(`"${table}"`));

/** Parks `count` polls on the current hash, publishes, and counts the statements of the release. */
async function releaseWaiters(count: number, round: string) {
  const nodes = await Promise.all(Array.from({ length: count }, () => enrollFleetNode()));
  const current = await publish(blockPolicy(`${round}-before.example`), `${round} before`);
  // One answered poll each: the node identity is now cached in this isolate.
  for (const node of nodes) expect((await poll(node, null, 0)).status).toBe(200);
  const baseline = await waitingTotal();
  const parked = nodes.map((node) => poll(node, current.hash, 30));
  await until(async () => (await waitingTotal()) === baseline + count);
  const { result, sql } = await statementsDuring(async () => {
    const next = await publish(blockPolicy(`${round}-after.example`), `${round} after`);
    const answers = await Promise.all(parked);
    return { next, answers };
  });
  for (const answer of result.answers) {
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as PolicyBundle).version).toBe(result.next.version);
  }
  return sql;
}

/** An "applied" status report of `version`, as an agent sends it. */
const appliedReport = (version: number, hash: string, uptimeSeconds: number) =>
  statusReport({ appliedVersion: version, appliedHash: hash, uptimeSeconds });

describe("fleet scale: the long-poll path", () => {
  it("releases N parked polls with O(1) D1 queries: the same statements for 3 and for 30 waiters", async () => {
    const few = await releaseWaiters(3, "few");
    const many = await releaseWaiters(30, "many");
    // The publish itself (head, audit, one batch) plus at most a revocation sweep and a
    // last-seen flush; nothing per released waiter: no node lookup, no head, no bundle read.
    expect(many.length).toBeLessThanOrEqual(few.length + 2);
    expect(many.length).toBeLessThan(15);
    // The publish's audit entry reads the previous (small) version once; no waiter reads a bundle.
    expect(reads(many, "policy_chunks").length).toBeLessThanOrEqual(1);
    expect(many.filter((s) => s.includes('"token_hash" = ?'))).toEqual([]);
  });

  it("a deferred release: the shard takes the head at once, answers new polls with it, and releases parked polls after the head start", async () => {
    await publish(blockPolicy("deferred-release.example"), "deferred release");
    // A shard of its own, so the made-up head below reaches no other test.
    const ns = env.POLICY_HUB as unknown as DurableObjectNamespace<PolicyHub>;
    const hub = ns.get(ns.idFromName("test-deferred-release"));
    const first = await hub.poll("n-parked", null, 0);
    const current = first.head!;
    let settled = false;
    const parked = hub.poll("n-parked", bundleTag(current), 10_000).then((answer) => {
      settled = true;
      return answer;
    });
    await until(async () => (await hub.stats()).waiting === 1);
    const next = { ...current, version: current.version + 1000, hash: "deferred" };
    const startedAt = Date.now();
    await hub.notify(next, 300);
    // Taken at once: a poll arriving now is answered the new head without waiting.
    expect((await hub.poll("n-new", bundleTag(current), 10_000)).head?.version).toBe(next.version);
    await new Promise((r) => setTimeout(r, 100));
    expect(settled).toBe(false);
    expect((await parked).head?.version).toBe(next.version);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(250);
  });

  it("answers a stale hash with the new bundle from the warm cache, without a D1 bundle read", async () => {
    const node = await enrollFleetNode();
    const old = await publish(blockPolicy("warm-old.example"), "old");
    expect((await poll(node, null, 0)).status).toBe(200);
    const fresh = await publish(blockPolicy("warm-new.example"), "new");
    const { result, sql } = await statementsDuring(async () => {
      const res = await poll(node, old.hash, 30);
      return {
        status: res.status,
        etag: res.headers.get("ETag"),
        bundle: (await res.json()) as PolicyBundle,
      };
    });
    expect(result.status).toBe(200);
    expect(result.etag).toBe(`"${bundleTag(result.bundle)}"`);
    expect(result.bundle).toMatchObject({ version: fresh.version, hash: fresh.hash });
    expect(reads(sql, "policy_chunks")).toEqual([]);
    expect(reads(sql, "policy_versions")).toEqual([]);
  });

  it("coalesces heartbeats: polls write no row; one batched statement records last-seen for every node", async () => {
    const nodes = [await enrollFleetNode(), await enrollFleetNode(), await enrollFleetNode()];
    const { hash } = await publish(blockPolicy("beat.example"), "beat");
    await flushHubs(env);
    const before = Date.now();
    const { sql } = await statementsDuring(async () => {
      for (let round = 0; round < 3; round++)
        for (const node of nodes) expect((await poll(node, hash, 0)).status).toBe(304);
    });
    expect(sql.filter((s) => /^\s*update\s+"nodes"/i.test(s))).toEqual([]);

    const flushed = await statementsDuring(() => flushHubs(env));
    expect(flushed.result).toBeGreaterThanOrEqual(nodes.length);
    // One statement per PolicyHub shard that saw any of them, never one per poll (9 here).
    const writes = flushed.sql.filter((s) => /^\s*update\s+"nodes"/i.test(s));
    expect(writes.length).toBeGreaterThan(0);
    expect(writes.length).toBeLessThanOrEqual(Math.min(shardCount(env), nodes.length));
    for (const node of nodes) {
      const view = await json<{ lastSeenAt: number; status: string }>(
        await call(`/api/v1/nodes/${node.nodeId}`),
        200,
      );
      expect(view.lastSeenAt).toBeGreaterThanOrEqual(before);
      expect(view.status).toBe("online");
    }
  });

  it("writes a heartbeat at once when the node's address or agent version changes", async () => {
    const node = await enrollFleetNode();
    await publish(blockPolicy("moved.example"), "moved");
    const { sql } = await statementsDuring(() =>
      call("/api/agent/v1/policy?wait=0", {
        token: node.nodeToken,
        address: "198.51.100.7",
        headers: { "User-Agent": "fleetgate-agent/7.7.7" },
      }),
    );
    expect(sql.filter((s) => /^\s*update\s+"nodes"/i.test(s))).toHaveLength(1);
    expect(await json(await call(`/api/v1/nodes/${node.nodeId}`), 200)).toMatchObject({
      lastAddress: "198.51.100.7",
      agentVersion: "7.7.7",
    });
  });

  it("refuses a revoked node within 5 s although its identity is cached, and ends its parked poll", async () => {
    const node = await enrollFleetNode();
    const { hash } = await publish(blockPolicy("revoke.example"), "revoke");
    expect((await poll(node, hash, 0)).status).toBe(304);
    const baseline = await waitingTotal();
    const parked = poll(node, hash, 30);
    await until(async () => (await waitingTotal()) === baseline + 1);
    const revokedAt = Date.now();
    await json(await call(`/api/v1/nodes/${node.nodeId}`, { method: "DELETE" }), 200);
    await expectError(await parked, 401, "NODE_UNKNOWN");
    for (;;) {
      const res = await call("/api/agent/v1/status", {
        token: node.nodeToken,
        address: node.address,
        body: appliedReport(1, hash, 1),
      });
      if (res.status === 401) break;
      expect(res.status).toBe(204);
      expect(Date.now() - revokedAt).toBeLessThan(5000);
      await new Promise((r) => setTimeout(r, 100));
    }
    await expectError(await poll(node, hash, 0), 401, "NODE_UNKNOWN");
    expect(Date.now() - revokedAt).toBeLessThan(5000);
  });

  it("stops a re-enrolled node's old token within 5 s although it is cached", async () => {
    const node = await enrollFleetNode();
    await publish(blockPolicy("reenroll.example"), "reenroll");
    expect((await poll(node, null, 0)).status).toBe(200);
    // Re-enrolling an existing instance takes its current token.
    const { key } = await createEnrollmentKey();
    const again = {
      ...(await json<{ nodeId: string; nodeToken: string }>(
        await call("/api/agent/v1/enroll", {
          token: node.nodeToken,
          address: node.address,
          body: {
            enrollmentKey: key,
            instanceId: node.instanceId,
            hostname: "proxy-1.branch.example",
            agentVersion: "0.1.0",
            proxyKind: "builtin",
          },
        }),
        201,
      )),
      address: node.address,
    };
    expect(again.nodeId).toBe(node.nodeId);
    const changedAt = Date.now();
    await until(async () => (await poll(node, null, 0)).status === 401, 5000);
    expect(Date.now() - changedAt).toBeLessThan(5000);
    expect((await poll(again, null, 0)).status).toBe(200);
  });

  it("batches an ACK wave: 20 concurrent status reports cost a few D1 statements, each recorded once", async () => {
    const nodes = await Promise.all(Array.from({ length: 20 }, () => enrollFleetNode()));
    const { version, hash } = await publish(blockPolicy("ack-wave.example"), "ack wave");
    for (const node of nodes) expect((await poll(node, null, 0)).status).toBe(200);
    const ack = (node: { nodeToken: string; address: string }) =>
      call("/api/agent/v1/status", {
        token: node.nodeToken,
        address: node.address,
        body: appliedReport(version, hash, 5),
      });
    const { result, sql } = await statementsDuring(() => Promise.all(nodes.map(ack)));
    for (const res of result) expect(res.status).toBe(204);
    const writes = sql.filter((s) => /^\s*(insert into "node_events"|update "nodes")/i.test(s));
    expect(writes.length).toBeLessThanOrEqual(2 * shardCount(env) * 2);
    expect(writes.length).toBeLessThan(nodes.length);
    // A repeated ACK (the heartbeat) adds no second event.
    await Promise.all(nodes.map(ack));
    for (const node of nodes.slice(0, 3)) {
      const view = await json<{ appliedVersion: number; sync: string }>(
        await call(`/api/v1/nodes/${node.nodeId}`),
        200,
      );
      expect(view).toMatchObject({ appliedVersion: version, sync: "in-sync" });
      const { events } = await json<{ events: { type: string; version: number }[] }>(
        await call(`/api/v1/nodes/${node.nodeId}/events`),
        200,
      );
      expect(events.filter((e) => e.type === "policy.applied" && e.version === version)).toHaveLength(1);
    }
  });

  it("a burst of agent calls after the allow list went stale reads it once, not once per call", async () => {
    const nodes = await Promise.all(Array.from({ length: 20 }, () => enrollFleetNode()));
    const { hash } = await publish(blockPolicy("herd.example"), "herd");
    for (const node of nodes) expect((await poll(node, null, 0)).status).toBe(200);
    // Past the isolate's 2 s allow-list cache: the next calls find it stale together.
    await new Promise((r) => setTimeout(r, 2_100));
    const { result, sql } = await statementsDuring(() => Promise.all(nodes.map((n) => poll(n, hash, 0))));
    for (const res of result) expect(res.status).toBe(304);
    expect(reads(sql, "settings").length).toBeLessThanOrEqual(1);
  });
});

describe("fleet scale: status batches", () => {
  const row = (id: string, version: number, at: number): StatusRow => ({
    id,
    at,
    state: "applied",
    appliedVersion: version,
    appliedHash: `hash-${version}`,
    detail: null,
    lastError: null,
    address: "198.18.0.1",
    agentVersion: "0.1.0",
    proxyKind: "builtin",
    proxyListen: "127.0.0.1:3128",
    proxyVersion: "t",
    uptimeSeconds: 5,
    spool: { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: 0 },
  });

  it("splits N distinct nodes into ceil(N / 400) rounds, and a node's second report into a later round", () => {
    const rows = Array.from({ length: 1250 }, (_, i) => row(`n${i}`, 2, i));
    expect(statusRounds(rows).map((r) => r.length)).toEqual([400, 400, 400, 50]);
    // Two reports of n7: the later one in a later round, whatever the rounds' fill.
    const twice = [...rows.slice(0, 900), row("n7", 3, 2000), ...rows.slice(900)];
    const rounds = statusRounds(twice);
    const where = rounds.map((r) => r.filter((x) => x.id === "n7").map((x) => x.appliedVersion));
    expect(where.flat()).toEqual([2, 3]);
    expect(rounds.length).toBe(4);
    for (const r of rounds) expect(new Set(r.map((x) => x.id)).size).toBe(r.length);
  });

  it("records a 1,250-report batch (one shard's ACK wave at 5,000 nodes) in 4 rounds of D1 statements", async () => {
    const real = await Promise.all(Array.from({ length: 3 }, () => enrollFleetNode()));
    const { version } = await publish(blockPolicy("big-batch.example"), "big batch");
    const rows = [
      ...real.map((n, i) => row(n.nodeId, version, Date.now() + i)),
      ...Array.from({ length: 1247 }, (_, i) => row(`absent-${i}`, version, Date.now())),
    ];
    const { sql } = await statementsDuring(() => recordStatuses(getDb(env.DB), rows));
    // Three statements a round (events, node fields, trim), four rounds; before: ~850 rounds.
    expect(sql.length).toBe(12);
    for (const node of real) {
      const view = await json<{ appliedVersion: number }>(await call(`/api/v1/nodes/${node.nodeId}`), 200);
      expect(view.appliedVersion).toBe(version);
    }
  });
});

describe("fleet scale: heartbeats", () => {
  const stored = async (id: string) =>
    (await getDb(env.DB).select().from(nodesTable).where(eq(nodesTable.id, id)))[0]!;

  it("stores an ACK before its 204, answers a repeating heartbeat at once and writes it with the next 2 s batch", async () => {
    const fleet = await Promise.all(Array.from({ length: 6 }, () => enrollFleetNode()));
    const { version, hash } = await publish(blockPolicy("heartbeat.example"), "heartbeat");
    const send = (node: { nodeToken: string; address: string }, uptime: number) =>
      call("/api/agent/v1/status", {
        token: node.nodeToken,
        address: node.address,
        body: appliedReport(version, hash, uptime),
      });
    // The ACK: news, in D1 when the 204 comes.
    for (const res of await Promise.all(fleet.map((n) => send(n, 5)))) expect(res.status).toBe(204);
    for (const node of fleet)
      expect(await stored(node.nodeId)).toMatchObject({ appliedVersion: version, uptimeSeconds: 5 });

    // The heartbeats: the same outcome, later uptime. Answered before any D1 statement is issued.
    const { result, sql } = await statementsDuring(() => Promise.all(fleet.map((n) => send(n, 65))));
    for (const res of result) expect(res.status).toBe(204);
    const statusUpdates = (list: string[]) =>
      list.filter((s) => /^\s*update "nodes"/i.test(s) && s.includes("$.uptimeSeconds"));
    expect(statusUpdates(sql)).toHaveLength(0);
    expect((await stored(fleet[0]!.nodeId)).uptimeSeconds).toBe(5);
    // Then one batch per shard writes them all.
    const { sql: later } = await statementsDuring(() =>
      until(async () => {
        for (const node of fleet) if ((await stored(node.nodeId)).uptimeSeconds !== 65) return false;
        return true;
      }, 5_000),
    );
    const updates = statusUpdates(later);
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.length).toBeLessThanOrEqual(shardCount(env));
  });
});
