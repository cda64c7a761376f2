// One process of the fleet simulator (test/bench/fleet.bench.mjs), run by Bun: enrolls COUNT nodes
// through the real API and runs each with the agent's real sync code (SyncLoop + master client,
// signature checks, policy compile) and a stub proxy driver. Log chunks go through the agent's
// real upload client. Talks to the parent in JSON lines: commands on stdin, reports on stdout.
import { gzipSync } from "node:zlib";
import { MasterClient } from "../../agent/master/client";
import type { Clock, FetchLike } from "../../agent/ports";
import { tallyChunk } from "../../agent/spool/tally";
import { uploadOutcome } from "../../agent/spool/upload-outcome";
import { compileWithEngine } from "../../agent/sync/compile";
import { SyncLoop } from "../../agent/sync/loop";
import type { MasterKey } from "../../protocol/wire";

const MASTER = process.env.FLEET_MASTER!;
const KEY = process.env.FLEET_KEY!;
const COUNT = Number(process.env.FLEET_COUNT);
const OFFSET = Number(process.env.FLEET_OFFSET);
const RUN = process.env.FLEET_RUN ?? "run";
const RECORDS_PER_SECOND = Number(process.env.FLEET_RECORDS_PER_SECOND ?? 5);
const CHUNK_SECONDS = Number(process.env.FLEET_CHUNK_SECONDS ?? 10);

const say = (msg: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(msg)}\n`);

const clock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      }
      signal?.addEventListener("abort", done, { once: true });
    }),
};

interface SimNode {
  index: number;
  nodeId: string;
  token: string;
  masterKey: MasterKey;
  wait: number;
  applied: Map<number, number>;
  /** When the poll answer carrying a version arrived (headers in): the master's part of "received". */
  answered: Map<number, number>;
  acked: Map<number, number>;
  contacts: number;
  firstContactAfterOutage: number | null;
  loop?: SyncLoop;
  failures: number;
  // ingestion
  seq: number;
  epoch: string;
  pending: { id: string; body: Uint8Array; tally: Uint8Array | null; records: number; tries: number }[];
  /** The master said it reads tallies: uploads carry one, as the agent's uploader sends them. */
  takesTally: boolean;
}

const nodes: SimNode[] = [];
// Where an ACK's time goes: how long each /status call took and how many failed, per round.
const diag = { statusMs: [] as number[], statusFailed: 0, statusCodes: {} as Record<string, number> };
let outage = false;
const stopAll = new AbortController();

async function enrollAll() {
  let next = 0;
  const worker = async () => {
    while (next < COUNT) {
      const i = next++;
      for (let attempt = 0; ; attempt++) {
        const result = await new MasterClient({
          fetch: fetch as FetchLike,
          masterUrl: MASTER,
          nodeToken: null,
        }).enroll({
          request: {
            enrollmentKey: KEY,
            instanceId: `${RUN}-node-${OFFSET + i}`,
            hostname: `sim-${OFFSET + i}.fleet.test`,
            agentVersion: "0.1.0-sim",
            proxyKind: "builtin",
          },
        });
        if (result.ok) {
          nodes[i] = {
            index: OFFSET + i,
            nodeId: result.enrollment.nodeId,
            token: result.enrollment.nodeToken,
            masterKey: result.enrollment.masterKey,
            wait: result.enrollment.pollWaitSeconds,
            applied: new Map(),
            answered: new Map(),
            acked: new Map(),
            contacts: 0,
            firstContactAfterOutage: null,
            failures: 0,
            seq: 0,
            epoch: `${(Date.now() + i).toString(36)}`,
            pending: [],
            takesTally: false,
          };
          break;
        }
        if (attempt > 20) throw new Error(`enroll ${i}: ${result.status} ${result.code} ${result.message}`);
        await clock.sleep(200 * (attempt + 1));
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

function startNode(node: SimNode) {
  // The real fetch, watched: a 204 to a status report with appliedVersion v is the master having
  // recorded the ACK (the handler answers after the D1 write).
  const watched: FetchLike = async (url, init) => {
    const sentAt = Date.now();
    const response = await fetch(url, init);
    if (url.endsWith("/status")) diag.statusMs.push(Date.now() - sentAt);
    if (response.status === 200 && url.includes("/policy?")) {
      // ETag "<generation>.<version>.<hash>"
      const version = Number(response.headers.get("etag")?.replace(/"/g, "").split(".")[1]);
      if (Number.isFinite(version) && !node.answered.has(version)) node.answered.set(version, Date.now());
    }
    if (response.status === 204 && url.endsWith("/status") && typeof init?.body === "string") {
      const report = JSON.parse(init.body) as { appliedVersion: number | null; state: string };
      if (
        report.appliedVersion !== null &&
        report.state === "applied" &&
        !node.acked.has(report.appliedVersion)
      )
        node.acked.set(report.appliedVersion, Date.now());
    }
    return response;
  };
  let stored: unknown = null;
  node.loop = new SyncLoop({
    master: new MasterClient({
      fetch: watched,
      masterUrl: MASTER,
      nodeToken: node.token,
      agentVersion: "0.1.0-sim",
    }),
    masterKey: node.masterKey,
    pollWaitSeconds: node.wait,
    clock,
    random: Math.random,
    store: {
      loadLastGood: async () => stored,
      saveLastGood: async (bundle) => {
        stored = bundle;
      },
    },
    driver: {
      kind: "builtin",
      start: async () => {},
      applyPolicy: async (policy) => {
        if (policy && !node.applied.has(policy.version)) node.applied.set(policy.version, Date.now());
      },
      stop: async () => {},
      listenAddress: () => "127.0.0.1:3128",
      version: () => "sim",
    },
    events: {
      emit: (type, fields) => {
        if (process.env.FLEET_DEBUG) console.error(node.index, type, JSON.stringify(fields));
        if (type === "sync.failed") node.failures++;
        if (type === "status.failed") {
          diag.statusFailed++;
          const code = `${fields?.status}:${fields?.code}:${String(fields?.error ?? "").slice(0, 80)}`;
          diag.statusCodes[code] = (diag.statusCodes[code] ?? 0) + 1;
        }
      },
    },
    compile: compileWithEngine,
    onMasterContact: () => {
      node.contacts++;
      if (outage && node.firstContactAfterOutage === null) node.firstContactAfterOutage = Date.now();
    },
  });
  void node.loop.run(stopAll.signal);
}

// ---- ingestion: every node seals a chunk of CHUNK_SECONDS × RECORDS_PER_SECOND records ----
let ingesting = false;
const ingest = {
  sent: 0,
  acceptedRecords: 0,
  duplicates: 0,
  chunks: 0,
  latencies: [] as number[],
  errors: 0,
};

function sealChunk(node: SimNode) {
  const count = CHUNK_SECONDS * RECORDS_PER_SECOND;
  const now = Date.now();
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    lines.push(
      JSON.stringify({
        ts: new Date(now - (count - i) * (1000 / RECORDS_PER_SECOND)).toISOString(),
        client: `10.${node.index >> 8}.${node.index & 255}.${i % 50}`,
        method: "GET",
        scheme: i % 3 ? "connect" : "http",
        host: `site${(node.index * 7 + i) % 300}.example`,
        port: 443,
        status: 200,
        action: i % 10 === 0 ? "block" : "allow",
        bytesIn: 100,
        bytesOut: 1000,
        durationMs: 5,
        requestId: `${node.index}-${node.seq}-${i}`,
      }),
    );
  }
  const body = gzipSync(`${lines.join("\n")}\n`);
  node.pending.push({
    id: `${node.epoch}.${node.seq++}`,
    body,
    tally: tallyChunk(body),
    records: count,
    tries: 0,
  });
  ingest.sent += count;
}

async function uploadLoop(node: SimNode) {
  // Spread the nodes' chunk schedules over the interval, as real fleets are.
  await clock.sleep(Math.random() * CHUNK_SECONDS * 1000, stopAll.signal);
  let nextSeal = Date.now();
  while (!stopAll.signal.aborted && (ingesting || node.pending.length > 0)) {
    if (ingesting && Date.now() >= nextSeal) {
      sealChunk(node);
      nextSeal += CHUNK_SECONDS * 1000;
    }
    const chunk = node.pending[0];
    if (!chunk) {
      await clock.sleep(Math.max(50, nextSeal - Date.now()), stopAll.signal);
      continue;
    }
    const started = Date.now();
    const client = new MasterClient({
      fetch: fetch as FetchLike,
      masterUrl: MASTER,
      nodeToken: node.token,
      agentVersion: "0.1.0-sim",
    });
    const outcome = uploadOutcome(
      await client.uploadChunk({
        chunkId: chunk.id,
        body: chunk.body,
        tally: node.takesTally ? chunk.tally : null,
        signal: AbortSignal.timeout(30_000),
      }),
    );
    if (outcome.kind === "acked") {
      node.takesTally = outcome.takesTally;
      node.pending.shift();
      ingest.chunks++;
      if (!outage) ingest.latencies.push(Date.now() - started);
      ingest.acceptedRecords += outcome.accepted;
      if (outcome.duplicate) ingest.duplicates++;
      continue;
    }
    ingest.errors++;
    chunk.tries++;
    const delay =
      outcome.kind === "throttled" && outcome.retryAfterMs !== null
        ? outcome.retryAfterMs
        : Math.random() * Math.min(30_000, 1000 * 2 ** Math.min(chunk.tries, 5));
    await clock.sleep(delay, stopAll.signal);
  }
}

const uploaders: Promise<void>[] = [];

function summary(version: number, t0: number) {
  const received: number[] = [];
  const answered: number[] = [];
  // Per node, answer in → applied: the node's own part (body, verify, compile, apply), and its
  // wait for this process's CPU behind the other nodes answered at the same moment.
  const nodeWork: number[] = [];
  const acked: number[] = [];
  let missing = 0;
  // Why a node is not in sync, when one is not: what it has, and what its loop says.
  const missingNodes: Record<string, unknown>[] = [];
  for (const node of nodes) {
    const at = node.applied.get(version);
    const ans = node.answered.get(version);
    const ack = node.acked.get(version);
    if (at === undefined || ack === undefined) {
      missing++;
      if (missingNodes.length < 20) {
        const snap = node.loop?.snapshot();
        missingNodes.push({
          node: node.index,
          answered: ans === undefined ? null : ans - t0,
          applied: at === undefined ? null : at - t0,
          master: snap?.master,
          appliedVersion: snap?.appliedVersion,
          lastContact: snap?.lastContactAt ? Date.parse(snap.lastContactAt) - t0 : null,
          lastError: snap?.lastError?.slice(0, 120),
          failures: node.failures,
          firstContactAfterOutage:
            node.firstContactAfterOutage === null ? null : node.firstContactAfterOutage - t0,
        });
      }
    }
    if (at !== undefined) received.push(at - t0);
    if (ans !== undefined) answered.push(ans - t0);
    if (ans !== undefined && at !== undefined) nodeWork.push(at - ans);
    if (ack !== undefined) acked.push(ack - t0);
  }
  return { received, answered, nodeWork, acked, missing, missingNodes };
}

// This process's own load: CPU used and the event loop's worst lag since the last reset, so a
// tail in "received" can be told apart from the simulator starving on its own CPU.
const lag = { max: 0, over50: 0, cpu0: process.cpuUsage(), wall0: Date.now() };
let lagTick = Date.now();
setInterval(() => {
  const now = Date.now();
  const late = now - lagTick - 20;
  lagTick = now;
  if (late > lag.max) lag.max = late;
  if (late > 50) lag.over50++;
}, 20).unref();
function loadFigures() {
  const cpu = process.cpuUsage(lag.cpu0);
  const wall = Date.now() - lag.wall0;
  const figures = {
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    cpuPercent: Math.round(((cpu.user + cpu.system) / 1000 / Math.max(1, wall)) * 100),
    loopLagMaxMs: lag.max,
    loopLagOver50: lag.over50,
  };
  lag.max = 0;
  lag.over50 = 0;
  lag.cpu0 = process.cpuUsage();
  lag.wall0 = Date.now();
  return figures;
}

async function command(msg: Record<string, unknown>) {
  switch (msg.cmd) {
    case "start": {
      const t = Date.now();
      await enrollAll();
      say({ event: "enrolled", ms: Date.now() - t, count: nodes.length });
      // A fleet does not boot in one millisecond: starts are spread over `spreadMs`.
      const spread = Number(msg.spreadMs ?? 0);
      for (const node of nodes) setTimeout(() => startNode(node), Math.random() * spread);
      break;
    }
    case "await-version": {
      // Report once every node applied and ACKed `version`, or at the deadline.
      const version = Number(msg.version);
      loadFigures();
      const deadline = Date.now() + Number(msg.timeoutMs ?? 60_000);
      while (Date.now() < deadline && summary(version, 0).missing > 0) await clock.sleep(50);
      say({
        event: "version",
        id: msg.id,
        ...summary(version, Number(msg.t0)),
        ...diag,
        load: loadFigures(),
      });
      diag.statusMs = [];
      diag.statusFailed = 0;
      diag.statusCodes = {};
      break;
    }
    case "outage-start":
      outage = true;
      for (const node of nodes) node.firstContactAfterOutage = null;
      say({ event: "ok", id: msg.id });
      break;
    case "reconnects": {
      const deadline = Date.now() + Number(msg.timeoutMs ?? 120_000);
      while (Date.now() < deadline && nodes.some((n) => n.firstContactAfterOutage === null))
        await clock.sleep(100);
      outage = false;
      // Absolute times: the parent knows when the master came back.
      say({ event: "reconnects", id: msg.id, contacts: nodes.map((n) => n.firstContactAfterOutage) });
      break;
    }
    case "ingest-start":
      ingesting = true;
      for (const node of nodes) uploaders.push(uploadLoop(node));
      say({ event: "ok", id: msg.id });
      break;
    case "ingest-stop": {
      ingesting = false;
      const deadline = Date.now() + Number(msg.timeoutMs ?? 120_000);
      while (Date.now() < deadline && nodes.some((n) => n.pending.length > 0)) await clock.sleep(100);
      say({
        event: "ingest",
        id: msg.id,
        ...ingest,
        pending: nodes.reduce((sum, n) => sum + n.pending.length, 0),
      });
      ingest.latencies = [];
      break;
    }
    case "stats":
      say({
        event: "stats",
        id: msg.id,
        failures: nodes.reduce((s, n) => s + n.failures, 0),
        contacts: nodes.reduce((s, n) => s + n.contacts, 0),
        master: nodes.reduce<Record<string, number>>((acc, n) => {
          const state = n.loop?.snapshot().master ?? "none";
          acc[state] = (acc[state] ?? 0) + 1;
          return acc;
        }, {}),
      });
      break;
    case "stop":
      stopAll.abort();
      await Promise.race([Promise.all(uploaders), clock.sleep(5000)]);
      say({ event: "stopped" });
      process.exit(0);
  }
}

let buffer = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (data: string) => {
  buffer += data;
  let nl = buffer.indexOf("\n");
  while (nl >= 0) {
    const line = buffer.slice(0, nl);
    buffer = buffer.slice(nl + 1);
    if (line.trim())
      command(JSON.parse(line)).catch((error) => {
        say({ event: "error", message: String(error?.stack ?? error) });
      });
    nl = buffer.indexOf("\n");
  }
});
// The parent going away ends this process too.
process.stdin.on("end", () => process.exit(0));
say({ event: "up" });
