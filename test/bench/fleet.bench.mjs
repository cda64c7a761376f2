// Fleet simulator: N nodes (default 1,000; --nodes up to 5,000) in a few Bun processes, each node
// the agent's real sync code (test/bench/fleet-nodes.ts), against the real local master.
//  1. enroll through the API, every node holding GET /policy?wait=25 with its hash
//  2. master CPU and RSS while the nodes wait
//  3. --rounds publishes: publish call time, publish → answer in at the node / → applied
//     ("received") / → ACK recorded (p50/p99/max), answered → applied per node, D1 statements per
//     publish (GET /api/v1/fleet/stats), master CPU, each node process's CPU and event-loop lag,
//     and why any node is not in sync at the window's end
//  (--profile: a V8 CPU profile of the worker over the first publish, and its heap while waiting)
//  4. log ingestion at 5 records/s per node through the real /logs path, one more publish under it
//  5. a master outage (--outage-seconds, default 60): stop, restart with the same state and port,
//     publish; reconnect histogram, every node back and in sync
//  6. ingestion drained: exact totals (records sent = accepted = summary.requests, once the
//     summary caught up)
// Flags: --nodes N --procs P --rounds R --outage-seconds S --no-outage --no-ingest --profile
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { heapUsage, startProfile, summarize } from "./fleet-profile.mjs";

const root = path.resolve(import.meta.dirname, "../..");
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const NODES = Math.min(5000, Math.max(1, flag("nodes", 1000)));
const PROCS = Math.max(1, Math.min(8, flag("procs", Math.min(4, Math.ceil(NODES / 250)))));
const ROUNDS = Math.max(1, flag("rounds", 3));
const OUTAGE_S = flag("outage-seconds", 60);
const OUTAGE = !args.includes("--no-outage");
const INGEST = !args.includes("--no-ingest");
const INGEST_S = flag("ingest-seconds", 30);
// --profile: a CPU profile of the master's worker over the first publish (fleet-profile.mjs).
const PROFILE = args.includes("--profile");
const freePort = () =>
  new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
if (PROFILE) process.env.FLEET_INSPECT_PORT = String(await freePort());
// Imported after: master.mjs copies the environment its masters get when it loads.
const { startMaster } = await import("../helpers/master.mjs");
// "miniflare" (default): the worker on Miniflare's API, one workerd, no proxy worker in front;
// "wrangler": `wrangler dev` as `npm start` runs it (docs/scale.md compares the two).
const RUNTIME = args.includes("--runtime") ? args[args.indexOf("--runtime") + 1] : "miniflare";
if (RUNTIME !== "miniflare" && RUNTIME !== "wrangler")
  throw new Error(`--runtime ${RUNTIME}: miniflare or wrangler`);
const token = `fgb_fleet-${Date.now()}-0123456789`;
const seed = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const vars = { ENROLL_RATE_LIMIT: "10000" };
const started = Date.now();
const log = (...m) => console.log(`[fleet +${((Date.now() - started) / 1000).toFixed(1)}s]`, ...m);

const pct = (xs, p) => {
  if (!xs.length) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(s.length * p) - 1))];
};
const spread = (xs) => ({ p50: pct(xs, 0.5), p99: pct(xs, 0.99), max: pct(xs, 1) });

// The bench owns the data dir: a master that owned it would delete it on the outage's stop, and
// the restarted master would come back with an empty database.
const persistDir = mkdtempSync(path.join(os.tmpdir(), "fleetgate-fleet-"));
let master = await startMaster({
  bootstrapToken: token,
  signingSeed: seed,
  vars,
  persistDir,
  runtime: RUNTIME,
});
// An interrupted run still ends the master and the node processes (they share no process group).
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    for (const { child } of children) child.kill("SIGKILL");
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, "fleet-master.log"), master.log());
    master.stop().finally(() => {
      rmSync(persistDir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}
const port = master.port;
const admin = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
const api = async (p, body) => {
  const res = await fetch(`${master.url}${p}`, {
    method: body ? "POST" : "GET",
    headers: admin,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${p}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
};
const fleetStats = async () => {
  const res = await fetch(`${master.url}/api/v1/fleet/stats`, { headers: admin }).catch(() => null);
  return res?.ok ? await res.json() : null;
};
const d1Statements = async () => (await fleetStats())?.isolate.d1Statements ?? null;
const policy = (i) => ({
  rules: [{ id: "r", action: "block", match: { domains: [`fleet-${i}.example`] } }],
  defaultAction: "allow",
});

// ---- the master's process group: CPU ticks and RSS from /proc ----
function groupUsage(pgid) {
  let ticks = 0;
  let rssKb = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== pgid) continue;
      ticks += Number(fields[11]) + Number(fields[12]);
      const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      rssKb += rss ? Number(rss[1]) : 0;
    } catch {}
  }
  return { ticks, rssKb };
}

// ---- children ----
const children = [];
let nextId = 0;
const pendingReplies = new Map();
const results = {
  nodes: NODES,
  procs: PROCS,
  runtime: RUNTIME,
  loadAverage: null,
  rounds: [],
  errors: [],
};
const out = path.join(root, "bench-results");

function spawnChild(count, offset) {
  const child = spawn(path.join(root, "node_modules/.bin/bun"), ["test/bench/fleet-nodes.ts"], {
    cwd: root,
    stdio: ["pipe", "pipe", "inherit"],
    env: {
      ...process.env,
      BUN_CONFIG_MAX_HTTP_REQUESTS: "10000",
      FLEET_MASTER: master.url,
      FLEET_KEY: enrollKey,
      FLEET_COUNT: String(count),
      FLEET_OFFSET: String(offset),
      FLEET_RUN: `fleet-${started}`,
    },
  });
  const entry = { child, events: [] };
  let buf = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d) => {
    buf += d;
    let nl = buf.indexOf("\n");
    while (nl >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf("\n");
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.event === "error") {
        results.errors.push(msg.message);
        console.error("child error:", msg.message);
      }
      const waiter = pendingReplies.get(`${children.indexOf(entry)}:${msg.id ?? msg.event}`);
      if (waiter) waiter(msg);
    }
  });
  children.push(entry);
  return entry;
}

/** Sends a command to every child and resolves with their answers. */
function ask(cmd, fields = {}, answerEvent) {
  const id = answerEvent ? undefined : `c${nextId++}`;
  return Promise.all(
    children.map(
      (entry, i) =>
        new Promise((resolve) => {
          pendingReplies.set(`${i}:${id ?? answerEvent}`, (msg) => {
            pendingReplies.delete(`${i}:${id ?? answerEvent}`);
            resolve(msg);
          });
          entry.child.stdin.write(`${JSON.stringify({ cmd, id, ...fields })}\n`);
        }),
    ),
  );
}

async function publishRound(label, i) {
  const statsBefore = await fleetStats();
  const before = statsBefore?.isolate.d1Statements ?? null;
  const u0 = groupUsage(master.child.pid);
  const profiler =
    PROFILE && i === 1
      ? await startProfile(Number(process.env.FLEET_INSPECT_PORT)).catch((e) => {
          log("profile not started:", String(e));
          return null;
        })
      : null;
  const t0 = Date.now();
  const published = await api("/api/v1/policy/versions", { policy: policy(i), message: label });
  const callMs = Date.now() - t0;
  const answers = await ask("await-version", { version: published.version, t0, timeoutMs: 90_000 });
  const received = answers.flatMap((a) => a.received);
  const answered = answers.flatMap((a) => a.answered);
  const nodeWork = answers.flatMap((a) => a.nodeWork ?? []);
  const missingNodes = answers.flatMap((a) => a.missingNodes ?? []);
  const acked = answers.flatMap((a) => a.acked);
  const missing = answers.reduce((s, a) => s + a.missing, 0);
  const statusMs = answers.flatMap((a) => a.statusMs);
  const statusFailed = answers.reduce((s, a) => s + a.statusFailed, 0);
  const statusCodes = {};
  for (const a of answers)
    for (const [k, v] of Object.entries(a.statusCodes ?? {})) statusCodes[k] = (statusCodes[k] ?? 0) + v;
  const load = os.loadavg()[0];
  const u1 = groupUsage(master.child.pid);
  if (profiler) {
    const profile = await profiler.stop();
    mkdirSync(out, { recursive: true });
    writeFileSync(path.join(out, "fleet-publish.cpuprofile"), JSON.stringify(profile));
    results.profile = summarize(profile);
    log("master CPU profile, publish to last ACK:", JSON.stringify(results.profile, null, 1));
  }
  const masterCpuPercent = Math.round((u1.ticks - u0.ticks) / ((Date.now() - t0) / 1000));
  await new Promise((r) => setTimeout(r, 1000));
  const stats = await fleetStats();
  const after = stats?.isolate.d1Statements ?? null;
  // Which statements, when the master counts them by kind (a diagnostic build).
  const kinds = stats?.isolate.d1ByKind;
  if (kinds) {
    const was = statsBefore?.isolate.d1ByKind ?? {};
    const diff = Object.entries(kinds)
      .map(([k, n]) => [k, n - (was[k] ?? 0)])
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12);
    log(`${label}: D1 statements by kind`, JSON.stringify(diff));
  }
  const round = {
    label,
    version: published.version,
    callMs,
    received: spread(received),
    // The poll answer's headers in, at the node: the master's share of "received" (the rest is
    // the node's parse, verify, compile and apply, and its process's queue for the CPU).
    answered: spread(answered),
    // answered → applied, per node: the simulator's own CPU queue (a real node does ~0.3 ms).
    nodeWork: spread(nodeWork),
    acked: spread(acked),
    missing,
    missingNodes: missingNodes.slice(0, 20),
    // Per node process over the round: CPU % of one core, and the event loop's worst lag.
    nodeProcs: answers.map((a) => a.load),
    d1Statements: before === null || after === null ? null : after - before - 2,
    status: { ...spread(statusMs), calls: statusMs.length, failed: statusFailed, codes: statusCodes },
    loadAverage1m: Number(load.toFixed(2)),
    // Of one core, from the publish to the last ACK (ticks are 1/100 s).
    masterCpuPercent,
    // Cumulative per shard since the master started: the status group commits and the slowest.
    statusBatches: stats?.hubs?.map((h) => h.statusBatches) ?? null,
  };
  log(
    `${label}: publish ${callMs} ms; answered p50/p99/max ${round.answered.p50}/${round.answered.p99}/${round.answered.max} ms;`,
    `received ${round.received.p50}/${round.received.p99}/${round.received.max} ms (answered → applied in the node ${round.nodeWork.p50}/${round.nodeWork.p99}/${round.nodeWork.max} ms);`,
    `ACK ${round.acked.p50}/${round.acked.p99}/${round.acked.max} ms; missing ${missing}; D1 statements ${round.d1Statements};`,
    `status batches ${JSON.stringify(round.statusBatches)};`,
    `master CPU ${masterCpuPercent} %; node procs ${JSON.stringify(round.nodeProcs)};`,
    missing ? `missing nodes ${JSON.stringify(round.missingNodes)};` : "",
    `/status calls ${round.status.calls} p50/p99/max ${round.status.p50}/${round.status.p99}/${round.status.max} ms, ${statusFailed} failed ${JSON.stringify(statusCodes)}; load ${round.loadAverage1m}`,
  );
  results.rounds.push(round);
  return round;
}

let enrollKey;
try {
  ({ key: enrollKey } = await api("/api/v1/enrollment-keys", { name: "fleet bench" }));
  const first = await api("/api/v1/policy/versions", { policy: policy(0), message: "fleet start" });
  const per = Math.ceil(NODES / PROCS);
  for (let p = 0; p < PROCS; p++) spawnChild(Math.min(per, NODES - p * per), p * per);
  const enrollStart = Date.now();
  const enrolled = await ask("start", { spreadMs: NODES * 10 }, "enrolled");
  results.enrollMs = Date.now() - enrollStart;
  log(`enrolled ${enrolled.reduce((s, e) => s + e.count, 0)} nodes in ${results.enrollMs} ms`);
  const startup = await ask("await-version", { version: first.version, t0: enrollStart, timeoutMs: 300_000 });
  log(`all nodes on v${first.version}; missing ${startup.reduce((s, a) => s + a.missing, 0)}`);

  // Waiting fleet: every node parked in a long poll. CPU and RSS over 10 s.
  await new Promise((r) => setTimeout(r, 5000));
  const u0 = groupUsage(master.child.pid);
  const d0 = await d1Statements();
  await new Promise((r) => setTimeout(r, 10_000));
  const u1 = groupUsage(master.child.pid);
  const d1 = await d1Statements();
  results.waiting = {
    cpuPercent: (u1.ticks - u0.ticks) / 10,
    rssMb: Math.round(u1.rssKb / 1024),
    d1StatementsPerSecond: d0 === null || d1 === null ? null : (d1 - d0 - 1) / 10,
    // With --profile: the worker isolate's own V8 heap (hubs and routes share it locally).
    heapMb: PROFILE
      ? await heapUsage(Number(process.env.FLEET_INSPECT_PORT)).then(
          (h) => h && { used: Math.round(h.usedSize / 1e6), total: Math.round(h.totalSize / 1e6) },
          () => null,
        )
      : undefined,
  };
  log("master while nodes wait:", results.waiting);

  for (let i = 1; i <= ROUNDS; i++) {
    await publishRound(`publish ${i}`, i);
    await new Promise((r) => setTimeout(r, 3000));
  }

  if (INGEST) {
    await ask("ingest-start");
    log(`ingestion on: ${NODES} nodes × 5 records/s`);
    await new Promise((r) => setTimeout(r, INGEST_S * 1000));
    // A failure here is a finding, not the end of the run: the outage and the totals still follow.
    try {
      await publishRound("publish under ingest", ROUNDS + 1);
    } catch (error) {
      results.errors.push(`publish under ingest: ${String(error?.cause ?? error)}`);
      log("publish under ingest failed:", String(error?.cause ?? error));
    }
  }

  if (OUTAGE) {
    log(`master stopping for ${OUTAGE_S} s`);
    await master.stop();
    // Only contacts after the stop count: a node that reached the master while it was stopping
    // would otherwise count as "back" before the outage (negative delays).
    await ask("outage-start");
    await new Promise((r) => setTimeout(r, OUTAGE_S * 1000));
    master = await startMaster({
      bootstrapToken: token,
      signingSeed: seed,
      vars,
      persistDir,
      port,
      runtime: RUNTIME,
    });
    const healthy = Date.now();
    log("master back; publishing");
    const reconnect = ask("reconnects", { timeoutMs: 150_000 });
    const round = await publishRound("publish after outage", ROUNDS + 2);
    const contacts = (await reconnect).flatMap((a) => a.contacts);
    const seenAt = contacts.filter((at) => at !== null);
    // The master is back at its first answer: /healthz, or a node that got in before it.
    const back = Math.min(healthy, ...seenAt);
    const delays = contacts.map((at) => (at === null ? null : at - back));
    const lost = delays.filter((d) => d === null).length;
    const seen = delays.filter((d) => d !== null);
    const edges = [1, 2, 5, 10, 20, 30, 45, 60, 90, 150];
    const histogram = {};
    let lo = 0;
    for (const edge of edges) {
      histogram[`${lo}–${edge} s`] = seen.filter((d) => d / 1000 >= lo && d / 1000 < edge).length;
      lo = edge;
    }
    results.outage = {
      seconds: OUTAGE_S,
      healthzAfterFirstContactMs: healthy - back,
      reconnect: spread(seen),
      histogram,
      neverBack: lost,
      inSyncMissing: round.missing,
    };
    log("reconnects after the outage:", results.outage);
  }

  if (INGEST) {
    const answers = await ask("ingest-stop", { timeoutMs: 180_000 });
    const sent = answers.reduce((s, a) => s + a.sent, 0);
    const accepted = answers.reduce((s, a) => s + a.acceptedRecords, 0);
    const latencies = answers.flatMap((a) => a.latencies);
    // The reports are folded asynchronously (the coalescers): ask until the summary holds every
    // accepted record, or has not moved for 20 s, and say how long it took.
    const drainedAt = Date.now();
    const readSummary = () =>
      api(`/api/v1/reports/summary?from=${started - 3_600_000}&to=${Date.now() + 60_000}`);
    let summary = await readSummary();
    let movedAt = Date.now();
    while (summary.requests < accepted && Date.now() - movedAt < 20_000 && Date.now() - drainedAt < 120_000) {
      await new Promise((r) => setTimeout(r, 2000));
      const next = await readSummary();
      if (next.requests !== summary.requests) movedAt = Date.now();
      summary = next;
    }
    results.ingest = {
      recordsSent: sent,
      recordsAccepted: accepted,
      summaryRequests: summary.requests,
      summaryCaughtUpMs: Date.now() - drainedAt,
      chunks: answers.reduce((s, a) => s + a.chunks, 0),
      duplicates: answers.reduce((s, a) => s + a.duplicates, 0),
      retries: answers.reduce((s, a) => s + a.errors, 0),
      pending: answers.reduce((s, a) => s + a.pending, 0),
      latencyMs: spread(latencies),
      exact: sent === accepted && accepted === summary.requests,
    };
    log("ingestion:", results.ingest);
  }
  const stats = await ask("stats");
  results.finalNodeStates = stats.map((s) => s.master);
  log("final node states:", results.finalNodeStates);
} catch (error) {
  results.errors.push(String(error?.stack ?? error));
  console.error("fleet bench failed:", error, "\nmaster log (tail):\n", master.log().slice(-4000));
  process.exitCode = 1;
} finally {
  await Promise.race([ask("stop", {}, "stopped"), new Promise((r) => setTimeout(r, 10_000))]);
  for (const { child } of children) if (child.exitCode === null) child.kill("SIGKILL");
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, "fleet-master.log"), master.log());
  await master.stop();
  rmSync(persistDir, { recursive: true, force: true });
}

const rows = [];
for (const r of results.rounds) {
  rows.push({ metric: `${r.label}: publish call`, value: r.callMs, unit: "ms", target: "<= 500" });
  rows.push({ metric: `${r.label}: received p50`, value: r.received.p50, unit: "ms" });
  rows.push({ metric: `${r.label}: received p99`, value: r.received.p99, unit: "ms", target: "<= 1000" });
  rows.push({ metric: `${r.label}: received max`, value: r.received.max, unit: "ms" });
  rows.push({ metric: `${r.label}: ACK p50`, value: r.acked.p50, unit: "ms" });
  rows.push({ metric: `${r.label}: ACK p99`, value: r.acked.p99, unit: "ms", target: "<= 2000" });
  rows.push({ metric: `${r.label}: ACK max`, value: r.acked.max, unit: "ms" });
  if (r.d1Statements !== null) rows.push({ metric: `${r.label}: D1 statements`, value: r.d1Statements });
}
if (results.waiting) {
  rows.push({ metric: "waiting: master CPU", value: results.waiting.cpuPercent, unit: "%" });
  rows.push({ metric: "waiting: master RSS", value: results.waiting.rssMb, unit: "MB" });
}
if (results.outage) {
  rows.push({ metric: "outage: reconnect p50", value: results.outage.reconnect.p50, unit: "ms" });
  rows.push({ metric: "outage: reconnect max", value: results.outage.reconnect.max, unit: "ms" });
  rows.push({ metric: "outage: nodes never back", value: results.outage.neverBack, target: "0" });
}
if (results.ingest) {
  rows.push({ metric: "ingest: latency p50", value: results.ingest.latencyMs.p50, unit: "ms" });
  rows.push({ metric: "ingest: latency p99", value: results.ingest.latencyMs.p99, unit: "ms" });
  rows.push({ metric: "ingest: totals exact", value: results.ingest.exact ? "yes" : "NO", target: "yes" });
}
console.log(JSON.stringify(results, null, 2));
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, "fleet.json"), JSON.stringify({ name: "fleet", rows, results }, null, 2));
