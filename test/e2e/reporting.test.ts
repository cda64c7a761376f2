// Exactly-once reporting end to end: requests through the compiled agent's proxy reach the real
// master's reports counted once each — also when the master is down while they happen and the
// agent is killed with SIGKILL in between (docs/spool.md: only records not yet synced to disk,
// at most one sync interval's worth, may be lost; the test waits well past that interval).
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollArgs } from "../helpers/enroll-args.mjs";
import {
  adminClient,
  agentCli,
  cleanup,
  freePort,
  type Master,
  type NodeView,
  proxyGet,
  type ReportSummary,
  type RunningAgent,
  requireAgentBinary,
  startAgent,
  startMaster,
  startOrigin,
  tempDir,
  waitFor,
} from "./harness";

const SYNC_MS = 100;
// Small, quickly sealed chunks: several chunks per phase and uploads within about a second.
const SPOOL_ENV = {
  FLEETGATE_SPOOL_SYNC_MS: String(SYNC_MS),
  FLEETGATE_SPOOL_CHUNK_AGE_MS: "1000",
  FLEETGATE_SPOOL_CHUNK_RECORDS: "25",
};
const N = 60;
const M = 40;
// While the master is away the sync loop backs off (full jitter, 60 s cap); its first answer after
// the restart nudges the uploads, so the backlog goes within about a minute: generous on purpose.
const UPLOAD_TIMEOUT_MS = 150_000;
// Spool figures reach the master within ~2 s of the backlog draining (not with the 60 s heartbeat):
// half the heartbeat interval is still generous.
const FIGURES_TIMEOUT_MS = 30_000;

let master: Master;
let admin: ReturnType<typeof adminClient>;
let origin: Awaited<ReturnType<typeof startOrigin>>;
let stateDir: string;
let proxyPort: number;
let agent: RunningAgent | null = null;
let nodeId: string;
let from: number;
const sent = { requests: 0, allowed: 0, blocked: 0 };

const policy = {
  rules: [{ id: "no-blocked-test", action: "block", match: { domains: ["blocked.test"] } }],
  defaultAction: "allow",
  // The test origin is on loopback, which the destination guard refuses unless the policy allows it.
  destinations: { allow: ["127.0.0.0/8", "::1/128"] },
};

/** One request through the proxy, every third to a blocked host; counted by what the proxy answered. */
async function send(i: number): Promise<void> {
  const blocked = i % 3 === 0;
  const url = blocked ? `http://blocked.test:${origin.port}/r${i}` : `${origin.url}r${i}`;
  const answer = await proxyGet(proxyPort, url);
  sent.requests++;
  if (answer.status === 200) sent.allowed++;
  else if (answer.status === 403) sent.blocked++;
  expect(answer.status, `request ${i} to ${url}`).toBe(blocked ? 403 : 200);
}

async function sendMany(first: number, count: number): Promise<void> {
  for (let i = first; i < first + count; i++) await send(i);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

const summaryNow = () => admin.summary(from, Date.now() + 60_000);

/** Waits until the master counts `requests`, then checks the split by action. */
async function expectTotals(requests: number): Promise<ReportSummary> {
  const summary = await waitFor(
    `the master to count ${requests} requests`,
    async () => {
      const s = await summaryNow();
      if (s.requests > requests) throw new Error(`over-counted: ${JSON.stringify(s)}`);
      return s.requests === requests ? s : null;
    },
    UPLOAD_TIMEOUT_MS,
    500,
  );
  expect(summary).toMatchObject({ requests, allowed: sent.allowed, blocked: sent.blocked, nodes: 1 });
  return summary;
}

const thisNode = async (): Promise<NodeView> => {
  const node = (await admin.nodes()).find((n) => n.id === nodeId);
  if (!node) throw new Error(`node ${nodeId} not listed`);
  return node;
};

beforeAll(async () => {
  requireAgentBinary();
  from = Date.now() - 60_000;
  master = await startMaster();
  admin = adminClient(master.url);
  origin = await startOrigin();
  stateDir = tempDir("reporting");
  proxyPort = await freePort();
  const published = await admin.publish(policy, "block blocked.test");
  const key = await admin.createEnrollmentKey("e2e reporting");
  const enrolled = await agentCli(
    enrollArgs({
      master: master.url,
      key,
      stateDir,
      listen: `127.0.0.1:${proxyPort}`,
      hostname: "e2e-reporting",
    }),
  );
  expect(enrolled.code, enrolled.stderr).toBe(0);
  agent = startAgent(stateDir, SPOOL_ENV);
  // Wait for the ACK instead of probing the proxy: every answered probe would be a record too.
  const node = await waitFor(
    "the node to apply the policy",
    async () => (await admin.nodes()).find((n) => n.appliedVersion === published.version),
    60_000,
    250,
  );
  nodeId = node.id;
});

afterAll(async () => {
  await agent?.stop();
  await cleanup();
});

describe("reporting through the real master and the compiled agent", () => {
  it(`counts ${N} requests exactly, by action`, async () => {
    await sendMany(0, N);
    expect(sent).toEqual({ requests: N, allowed: 40, blocked: 20 });
    const summary = await expectTotals(N);
    expect(summary.incomplete.filter((i) => i.kind === "gap")).toEqual([]);
  }, 240_000);

  it("lists the node's spool figures, back to 0 pending once uploaded", async () => {
    // If the master saw anything pending, the agent reports the empty spool within ~2 s of the last
    // ack (not with the next heartbeat); if it never did, its figures are already right.
    const node = await waitFor(
      "the node's figures to show nothing pending",
      async () => {
        const n = await thisNode();
        const spool = n.spool as { pendingChunks: number; pendingBytes: number } | null;
        return spool?.pendingChunks === 0 && spool.pendingBytes === 0 ? n : null;
      },
      FIGURES_TIMEOUT_MS,
      250,
    );
    expect(node.spool).toMatchObject({ pendingChunks: 0, pendingBytes: 0, droppedRecords: 0 });
    expect(node.spool).toHaveProperty("oldestPendingAt", null);
    expect((await summaryNow()).incomplete).toEqual([]);
  }, 240_000);

  it(`counts ${M} more requests exactly once across a master outage and a kill -9 of the agent`, async () => {
    await master.stop();
    const half = M / 2;
    await sendMany(N, half);
    // Everything answered so far is in the buffer; ten sync intervals later it is on disk.
    await new Promise((resolve) => setTimeout(resolve, 10 * SYNC_MS + 500));
    const before = JSON.parse((await agentCli(["status", "--state-dir", stateDir, "--json"])).stdout);
    // The first half waits on disk, not uploaded: the kill hits records the master has never seen.
    expect(before.spool.pendingBytes).toBeGreaterThan(0);
    await agent!.kill();

    agent = startAgent(stateDir, SPOOL_ENV);
    // A bare TCP connect, not a request: a probe the proxy answered would be a record too.
    await waitFor("the restarted proxy to accept connections", () => accepts(proxyPort), 30_000, 100);
    await sendMany(N + half, M - half);
    expect(sent.requests).toBe(N + M);

    master = await startMaster({ persistDir: master.persistDir, port: master.port });
    admin = adminClient(master.url);
    await expectTotals(N + M);
    const complete = await waitFor(
      "the node's backlog to clear in the report",
      async () => {
        const s = await summaryNow();
        return s.incomplete.length === 0 ? s : null;
      },
      FIGURES_TIMEOUT_MS,
      250,
    );
    // Still exact after the backlog cleared: no chunk was counted twice.
    expect(complete).toMatchObject({ requests: N + M, allowed: sent.allowed, blocked: sent.blocked });
  }, 420_000);
});
