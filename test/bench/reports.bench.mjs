// Reporting pipeline on the local master (wrangler dev, local D1):
//  1. ingestion throughput: pre-built gzip chunks of the agent's default size (5,000 records,
//     thousands of distinct hosts) uploaded with 4 concurrent uploads; records/s acknowledged and
//     records/s counted in D1 (the coalescers flushed), and workerd CPU per record.
//  2. report latency: seed ≥ 10M requests from 50 nodes over 30 days through the same
//     ingestion path, run the cron (compaction), then time summary / timeseries / top.
//  3. storage: a fresh master, a realistic fleet model (Zipf hosts over 1M names, thousands of
//     clients, users and rules) at 200k requests per node-day (10M/day over 50 nodes), measured
//     in the D1 file before and after compaction, projected to 90 days of 50 nodes.
// BENCH_RECORDS overrides the 10M seed (e.g. 1000000 for a quick look); BENCH_PHASES picks
// phases (e.g. "ingest,storage"); BENCH_STORAGE_NODES / BENCH_STORAGE_DAYS scale phase 3.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";
import { startMaster } from "../helpers/master.mjs";

// The agent's own tally code (agent/spool/tally.ts), bundled for this Node script: the bench
// sends what a current agent sends, the chunk's tally in front of its gzip.
const tallyChunk = await (async () => {
  const root = path.resolve(import.meta.dirname, "../..");
  const out = await build({
    entryPoints: [path.join(root, "agent/spool/tally.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    write: false,
    logLevel: "error",
  });
  const code = Buffer.from(out.outputFiles[0].text).toString("base64");
  return (await import(`data:text/javascript;base64,${code}`)).tallyChunk;
})();
// "both" (default): plain chunks, then tallied ones, timed one after the other in this run;
// "plain" or "tally": only that one.
const TALLY = process.env.BENCH_TALLY ?? "both";

const CHUNK = Number(process.env.BENCH_CHUNK ?? 5_000); // the agent spool's default seal count
const NODES = 50;
const DAYS = 30;
const SEED_RECORDS = Number(process.env.BENCH_RECORDS ?? 10_000_000);
const THROUGHPUT_CHUNKS = Number(process.env.BENCH_TCHUNKS ?? 160);
const CONCURRENCY = 4;
const QUERY_ROUNDS = 30;
const PHASES = new Set((process.env.BENCH_PHASES ?? "ingest,reports,storage").split(","));
const STORAGE_NODES = Number(process.env.BENCH_STORAGE_NODES ?? 5);
const STORAGE_DAYS = Number(process.env.BENCH_STORAGE_DAYS ?? 3);
const NODE_DAY_RECORDS = 200_000; // 10M requests/day over 50 nodes
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

let seed = 42;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
// Zipf-like host popularity over 5,000 hosts of 3–5 labels.
const HOSTS = Array.from({ length: 5000 }, (_, i) => {
  const sub = ["www", "api", "cdn", "static", "img", "m"][i % 6];
  const depth = i % 3;
  return [
    sub,
    ...(depth > 0 ? [`r${i % 97}`] : []),
    ...(depth > 1 ? ["eu"] : []),
    `site${i}`,
    ["com", "net", "org", "de", "io"][i % 5],
  ].join(".");
});
const pickHost = () => HOSTS[Math.min(HOSTS.length - 1, Math.floor(HOSTS.length * rand() ** 3))];

function buildChunk(node, startMs, spanMs) {
  const lines = [];
  for (let i = 0; i < CHUNK; i++) {
    const blocked = rand() < 0.1;
    const r = {
      ts: new Date(startMs + Math.floor((i / CHUNK) * spanMs)).toISOString(),
      client: `10.${node}.${Math.floor(rand() * 4)}.${Math.floor(rand() * 50)}`,
      method: "GET",
      scheme: rand() < 0.7 ? "connect" : "http",
      host: pickHost(),
      port: 443,
      status: blocked ? 403 : 200,
      action: blocked ? "block" : "allow",
      bytesIn: Math.floor(rand() * 2000),
      bytesOut: Math.floor(rand() * 50_000),
      durationMs: Math.floor(rand() * 300),
      requestId: `${node}-${startMs}-${i}`,
    };
    if (rand() < 0.5) r.user = `user${node}-${Math.floor(rand() * 20)}`;
    if (blocked) r.rule = ["no-social", "no-ads", "malware"][Math.floor(rand() * 3)];
    lines.push(JSON.stringify(r));
  }
  return gzipSync(`${lines.join("\n")}\n`);
}

// Realistic fleet model for the storage phase: hosts Zipf(1) over 1M names, 60 clients and 40
// users per node (3,000 and 2,000 fleet-wide at 50 nodes), 500 rules (Zipf), 10% blocked, 30%
// of allowed requests matched by an allow rule; requests spread evenly over the day.
const ZIPF_HOSTS = 1_000_000;
const zipf = (n) => Math.min(n, Math.floor(Math.exp(rand() * Math.log(n + 1))));
const TLDS = ["com", "net", "org", "de", "io", "co.uk"];
const realisticHost = (rank) =>
  `${["www", "api", "cdn", "img", "m"][rank % 5]}.site${rank}.${TLDS[rank % 6]}`;

function buildRealisticChunk(node, startMs, spanMs, count) {
  const lines = [];
  for (let i = 0; i < count; i++) {
    const blocked = rand() < 0.1;
    const rule = blocked || rand() < 0.3 ? `rule-${zipf(500)}` : undefined;
    const r = {
      ts: new Date(startMs + Math.floor((i / count) * spanMs)).toISOString(),
      client: `10.${node}.${Math.floor(rand() * 60 * rand())}.7`,
      method: "GET",
      scheme: "connect",
      host: realisticHost(zipf(ZIPF_HOSTS)),
      port: 443,
      status: blocked ? 403 : 200,
      action: blocked ? "block" : "allow",
      bytesIn: Math.floor(rand() * 2000),
      bytesOut: Math.floor(rand() * 50_000),
      durationMs: Math.floor(rand() * 300),
      requestId: `${node}-${startMs}-${i}`,
    };
    if (rand() < 0.7) r.user = `user${node}-${Math.floor(rand() * 40 * rand())}`;
    if (rule) r.rule = rule;
    lines.push(JSON.stringify(r));
  }
  return gzipSync(`${lines.join("\n")}\n`);
}

const token = `fgb_bench-${Date.now()}-0123456789`;
const masterOptions = {
  bootstrapToken: token,
  signingSeed: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
  vars: { ENROLL_RATE_LIMIT: "10000" },
  // "wrangler" (wrangler dev, as npm start) or "miniflare" (Miniflare's API: no proxy worker;
  // ingest phase only, the cron needs wrangler's --test-scheduled).
  runtime: process.env.BENCH_RUNTIME ?? "wrangler",
  testScheduled: (process.env.BENCH_RUNTIME ?? "wrangler") === "wrangler",
};
const admin = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => sorted(xs)[Math.floor(xs.length / 2)];
const p95 = (xs) => sorted(xs)[Math.ceil(xs.length * 0.95) - 1];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function client(master) {
  const post = async (p, body, headers = admin) => {
    const res = await fetch(`${master.url}${p}`, { method: "POST", headers, body: JSON.stringify(body) });
    if (res.status >= 300) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const get = async (p) => {
    const res = await fetch(`${master.url}${p}`, { headers: admin });
    if (res.status !== 200) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  // Uploads are idempotent (the chunk id is the key), so a request on a keep-alive socket the
  // server closed meanwhile is simply sent again, as the agent's spool does; so is a 503 (the
  // coalescer's buffer is full), after a pause.
  async function upload(node, chunkId, body, records, tally, attempt = 0) {
    let res;
    try {
      res = await send(node, chunkId, body, tally);
    } catch (error) {
      if (attempt < 3) return upload(node, chunkId, body, records, tally, attempt + 1);
      throw error;
    }
    if (res.status === 503 && attempt < 50) {
      await res.arrayBuffer();
      await sleep(500);
      return upload(node, chunkId, body, records, tally, attempt + 1);
    }
    const answer = await res.json();
    if (res.status !== 200 || (answer.duplicate && attempt === 0) || (tally && answer.counted !== "tally"))
      throw new Error(`${chunkId}: ${res.status} ${JSON.stringify(answer)}`);
    // A duplicate on a retry means the lost attempt was counted.
    return answer.duplicate ? records : answer.accepted;
  }
  const send = (node, chunkId, body, tally) =>
    fetch(`${master.url}/api/agent/v1/logs`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${node.nodeToken}`,
        "X-Fleetgate-Chunk": chunkId,
        ...(tally
          ? {
              "Content-Type": "application/x-fleetgate-tallied-chunk",
              "X-Fleetgate-Tally-Length": String(tally.byteLength),
            }
          : { "Content-Encoding": "gzip", "Content-Type": "application/x-ndjson" }),
      },
      body: tally ? Buffer.concat([tally, body]) : body,
    });
  async function runPool(jobs, concurrency) {
    let next = 0;
    let accepted = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < jobs.length) {
          const job = jobs[next++];
          const body = job.body ?? job.build();
          // Not `accepted += await …`: that reads `accepted` before the await and loses updates.
          const n = await upload(job.node, job.id, body, job.records ?? CHUNK, job.tally);
          accepted += n;
        }
      }),
    );
    return accepted;
  }
  async function enrollNodes(count, prefix) {
    const { key } = await post("/api/v1/enrollment-keys", { name: prefix });
    const nodes = [];
    for (let i = 0; i < count; i++) {
      nodes.push(
        await post(
          "/api/agent/v1/enroll",
          {
            enrollmentKey: key,
            instanceId: `${prefix}-node-${i}-${Date.now()}`,
            hostname: `branch-${i}`,
            agentVersion: "bench",
            proxyKind: "builtin",
          },
          { "Content-Type": "application/json" },
        ),
      );
    }
    return nodes;
  }
  /** Waits until the fleet summary over [from, to) counts `records` (the coalescers flushed). */
  async function counted(from, to, records, timeoutMs = 600_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await get(`/api/v1/reports/summary?from=${from}&to=${to}`);
      if (s.requests === records) return;
      if (s.requests > records) throw new Error(`counted ${s.requests}, sent ${records}`);
      if (Date.now() > deadline) throw new Error(`only ${s.requests} of ${records} counted`);
      await sleep(20);
    }
  }
  /** Runs the cron trigger and waits for it: the answer comes before its waitUntil work ends. */
  async function cron() {
    const res = await fetch(`${master.url}/__scheduled?cron=17+*+*+*+*`);
    await res.arrayBuffer();
    if (res.status >= 300) throw new Error(`cron: ${res.status}`);
    // Compaction ends with the ledger: done when no ledger row before the cutoff is left.
    const left = () =>
      d1Stats(master, {
        left: "SELECT COUNT(*) AS n FROM log_chunks WHERE last_ts < (SELECT COALESCE(MAX(compacted_before), 0) FROM report_state)",
        state: "SELECT COUNT(*) AS n FROM report_state",
      }).counts;
    for (;;) {
      const { left: l, state } = left();
      if (state[0].n > 0 && l[0].n === 0) break;
      await sleep(500);
    }
    await sleep(2000); // retention pruning after compaction
  }
  return { post, get, runPool, enrollNodes, counted, cron };
}

/** CPU seconds (user + system) of the master's workerd processes so far. */
function workerdCpuSeconds(master) {
  let ticks = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (comm.startsWith("workerd") && Number(fields[2]) === master.child.pid) {
        ticks += Number(fields[11]) + Number(fields[12]);
      }
    } catch {}
  }
  return ticks / 100; // USER_HZ
}

/** Bytes per table and index of the master's local D1 file (SQLite's dbstat), rows of `sql`. */
function d1Stats(master, queries = {}) {
  const dir = path.join(master.persistDir, "v3/d1/miniflare-D1DatabaseObject");
  const file = readdirSync(dir).find((f) => f.endsWith(".sqlite"));
  const db = path.join(dir, file);
  const sqlite = (sql) => execFileSync("sqlite3", ["-readonly", "-json", db, sql], { encoding: "utf8" });
  const bytes = {};
  for (const row of JSON.parse(
    sqlite("SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name") || "[]",
  )) {
    bytes[row.name] = row.bytes;
  }
  const counts = {};
  for (const [name, sql] of Object.entries(queries)) counts[name] = JSON.parse(sqlite(sql) || "[]");
  return { bytes, counts, total: Object.values(bytes).reduce((a, b) => a + b, 0) };
}

const rows = [];
// Request search latency (docs/reports.md, Request search) adds its rows here.
const searchRows = [];

async function ingestAndReports() {
  const master = await startMaster(masterOptions);
  const api = client(master);
  try {
    const nodes = await api.enrollNodes(NODES, "bench");
    const end = Date.now() - (Date.now() % HOUR);
    const start = end - DAYS * DAY;
    const chunksPerNode = Math.max(1, Math.ceil((SEED_RECORDS - THROUGHPUT_CHUNKS * CHUNK) / CHUNK / NODES));
    const span = (end - start) / chunksPerNode;
    const jobs = [];
    for (let c = 0; c < chunksPerNode; c++) {
      for (let n = 0; n < NODES; n++) {
        const chunkStart = start + c * span;
        jobs.push({ node: nodes[n], id: `bench.${c + 1}`, build: () => buildChunk(n, chunkStart, span) });
      }
    }

    // 1. Throughput on pre-built bodies, so the load generator's JSON+gzip work (and the tally,
    // which the node computes) is not measured. These are busy-node chunks: 5,000 records over 30 s
    // each (the spool seals by count at that rate), spread over the 50 nodes in the last hours,
    // sent plain (records parsed by the master) and then tallied, each in its own hour so each
    // pass is counted on its own. They count towards the seeded total.
    let acceptedTimed = 0;
    const passes = TALLY === "both" ? ["plain", "tally"] : [TALLY];
    for (const [pass, kind] of passes.entries()) {
      const hourStart = end - (3 - pass) * HOUR;
      const timed = [];
      let tallyMs = 0;
      for (let c = 0; c < THROUGHPUT_CHUNKS; c++) {
        const nodeIndex = c % NODES;
        const body = buildChunk(nodeIndex, hourStart + Math.floor(c / NODES) * 30_000, 30_000);
        const t = performance.now();
        const tally = kind === "tally" ? tallyChunk(body) : undefined;
        tallyMs += performance.now() - t;
        timed.push({ node: nodes[nodeIndex], id: `${kind}.${Math.floor(c / NODES) + 1}`, body, tally });
      }
      const cpu0 = workerdCpuSeconds(master);
      const t0 = performance.now();
      const accepted = await api.runPool(timed, CONCURRENCY);
      const acked = (performance.now() - t0) / 1000;
      await api.counted(hourStart, hourStart + HOUR, accepted);
      const seconds = (performance.now() - t0) / 1000;
      const cpu = workerdCpuSeconds(master) - cpu0;
      const throughput = accepted / seconds;
      acceptedTimed += accepted;
      console.log(
        `${kind}: ingested ${accepted} records: acknowledged in ${acked.toFixed(2)} s, counted in D1 after ${seconds.toFixed(2)} s: ${Math.round(throughput)} records/s; workerd CPU ${cpu.toFixed(2)} s`,
      );
      rows.push(
        {
          metric: `ingest ${CHUNK}-record chunks (${kind}), ${CONCURRENCY} concurrent, counted in D1`,
          value: throughput,
          unit: "records/s",
          target: kind === "tally" ? ">= 250000" : undefined,
        },
        {
          metric: `ingest (${kind}), acknowledged (durable in the coalescers)`,
          value: accepted / acked,
          unit: "records/s",
        },
        {
          metric: `ingest (${kind}) CPU per record (workerd, all work)`,
          value: (cpu / accepted) * 1e6,
          unit: "µs",
        },
      );
      if (kind === "tally") {
        rows.push({
          metric: "tally on the node (bench process), per record",
          value: (tallyMs / accepted) * 1e3,
          unit: "µs",
        });
      }
    }
    if (!PHASES.has("reports")) return;

    // 2. Seed the rest through the same path, compact (the cron), then query.
    const s0 = performance.now();
    const seeded = acceptedTimed + (await api.runPool(jobs, CONCURRENCY));
    await api.counted(start, end + HOUR, seeded);
    console.log(`seeded ${seeded} records in ${((performance.now() - s0) / 1000).toFixed(1)} s`);
    const c0 = performance.now();
    await api.cron();
    console.log(`cron (compaction) took ${((performance.now() - c0) / 1000).toFixed(1)} s`);

    const ranges = { "24h": [end - DAY, end], "7d": [end - 7 * DAY, end], "30d": [start, end] };
    const queries = [];
    for (const [label, [from, to]] of Object.entries(ranges)) {
      queries.push([`summary ${label}`, `/api/v1/reports/summary?from=${from}&to=${to}`]);
      queries.push([`timeseries ${label}`, `/api/v1/reports/timeseries?from=${from}&to=${to}`]);
      queries.push([`top hosts ${label}`, `/api/v1/reports/top?by=host&from=${from}&to=${to}`]);
    }
    queries.push([
      "top clients 30d, one node",
      `/api/v1/reports/top?by=client&node=${nodes[7].nodeId}&from=${start}&to=${end}`,
    ]);
    queries.push([
      "summary 30d, one node",
      `/api/v1/reports/summary?node=${nodes[7].nodeId}&from=${start}&to=${end}`,
    ]);
    const check = await api.get(queries[6][1]);
    if (check.requests !== seeded)
      throw new Error(`30-day summary counts ${check.requests}, seeded ${seeded}`);
    rows.push({ metric: "records seeded (50 nodes, 30 days), compacted", value: seeded, unit: "records" });
    const all = [];
    for (const [label, url] of queries) {
      const times = [];
      for (let i = 0; i < QUERY_ROUNDS; i++) {
        const q0 = performance.now();
        const res = await fetch(`${master.url}${url}`, { headers: admin });
        await res.arrayBuffer();
        if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
        times.push(performance.now() - q0);
      }
      all.push(...times);
      rows.push({
        metric: `${label} median / p95`,
        value: median(times),
        unit: `ms (p95 ${p95(times).toFixed(1)})`,
        target: "p95 <= 150",
      });
    }
    rows.push({ metric: "all report queries p95", value: p95(all), unit: "ms", target: "<= 150" });
  } catch (error) {
    console.error(master.log().slice(-3000));
    throw error;
  } finally {
    await master.stop();
  }
}

// 3. Storage: STORAGE_NODES nodes × STORAGE_DAYS days at 200k requests per node-day, all days
// older than 48 h; bytes of D1 measured hourly (as ingested) and compacted (after the cron).
async function storage() {
  const master = await startMaster(masterOptions);
  const api = client(master);
  try {
    const nodes = await api.enrollNodes(STORAGE_NODES, "storage");
    const cutoff = Date.now() - 48 * HOUR - ((Date.now() - 48 * HOUR) % DAY);
    const start = cutoff - STORAGE_DAYS * DAY;
    const perChunk = CHUNK;
    const chunksPerNode = Math.ceil((STORAGE_DAYS * NODE_DAY_RECORDS) / perChunk);
    const span = (STORAGE_DAYS * DAY) / chunksPerNode;
    const jobs = [];
    for (let c = 0; c < chunksPerNode; c++) {
      for (let n = 0; n < nodes.length; n++) {
        jobs.push({
          node: nodes[n],
          id: `st.${c + 1}`,
          records: perChunk,
          build: () => buildRealisticChunk(n, start + c * span, span, perChunk),
        });
      }
    }
    const s0 = performance.now();
    const sent = await api.runPool(jobs, CONCURRENCY);
    await api.counted(start, cutoff, sent);
    console.log(
      `storage: ${sent} records from ${nodes.length} nodes over ${STORAGE_DAYS} days in ${((performance.now() - s0) / 1000).toFixed(1)} s`,
    );
    const categories = {
      rollups: `SELECT CASE WHEN node_id = '*' THEN 'fleet' ELSE 'node' END AS scope, kind, COUNT(*) AS n FROM rollups GROUP BY 1, 2`,
      ledger:
        "SELECT (SELECT COUNT(*) FROM log_chunks) AS chunks, (SELECT COUNT(*) FROM log_chunk_runs) AS runs",
    };
    const hourly = d1Stats(master, categories);
    await api.cron();
    const compacted = d1Stats(master, categories);
    const check = await api.get(`/api/v1/reports/summary?from=${start}&to=${cutoff}`);
    if (check.requests !== sent)
      throw new Error(`after compaction the summary counts ${check.requests}, sent ${sent}`);

    const nodeDays = nodes.length * STORAGE_DAYS;
    const rollupBytes = (s) => s.bytes.rollups ?? 0;
    const rowsOf = (s, scope) =>
      s.counts.rollups.filter((r) => r.scope === scope).reduce((a, r) => a + r.n, 0);
    const perRow = (s) => rollupBytes(s) / (rowsOf(s, "node") + rowsOf(s, "fleet"));
    const ledgerBytes = (s) =>
      Object.entries(s.bytes)
        .filter(([name]) => /log_chunk/.test(name))
        .reduce((a, [, b]) => a + b, 0);
    const nodeDay = {
      hourly: (rowsOf(hourly, "node") * perRow(hourly)) / nodeDays,
      compacted: (rowsOf(compacted, "node") * perRow(compacted)) / nodeDays,
    };
    const fleetDay = {
      hourly: (rowsOf(hourly, "fleet") * perRow(hourly)) / STORAGE_DAYS,
      compacted: (rowsOf(compacted, "fleet") * perRow(compacted)) / STORAGE_DAYS,
    };
    // A ledger row costs this much (table + primary key + last_ts index); real agents seal a chunk
    // every 10 s when traffic is steady, so a node-day of the last 48 h holds 8,640 of them.
    const ledgerRows = hourly.counts.ledger[0].chunks;
    const perLedgerRow = ledgerBytes(hourly) / ledgerRows;
    // Fleet rows grow with the union of the nodes' keys, bounded by the caps: per day at most
    // DAY_TOP_K + 1 keys per dimension; per hour of the last 48 h at most 50 × HOUR_TOP_K hosts
    // and rules, and the fleet's clients (3,000) and users (2,000).
    const FLEET_DAY_ROWS_50 = 2001 + 3000 + 2000 + 501 + 1440 + 24;
    const FLEET_HOUR_ROWS_50 = 50 * 201 + 3000 + 2000 + 50 * 201 + 60 + 1;
    const projection =
      50 * 88 * nodeDay.compacted +
      50 * 2 * nodeDay.hourly +
      88 * FLEET_DAY_ROWS_50 * perRow(compacted) +
      2 * 24 * FLEET_HOUR_ROWS_50 * perRow(hourly) +
      50 * 2 * 8640 * perLedgerRow +
      50 * 88 * 24 * perLedgerRow; // ledger runs: at most one per node and compaction hour
    console.log(
      JSON.stringify({
        hourly: { bytes: hourly.bytes, rows: hourly.counts },
        compacted: { bytes: compacted.bytes, rows: compacted.counts },
      }),
    );
    rows.push(
      {
        metric: `storage model: ${nodes.length} nodes × ${STORAGE_DAYS} d × 200k req/node-day`,
        value: sent,
        unit: "records",
      },
      { metric: "D1 bytes per node-day, compacted (steady state)", value: nodeDay.compacted, unit: "bytes" },
      { metric: "D1 bytes per node-day, last 48 h (hourly)", value: nodeDay.hourly, unit: "bytes" },
      {
        metric: "D1 bytes per rollup row (compacted / hourly)",
        value: perRow(compacted),
        unit: `bytes (${perRow(hourly).toFixed(1)})`,
      },
      {
        metric: `fleet rows per day at ${nodes.length} nodes, compacted`,
        value: fleetDay.compacted,
        unit: "bytes",
      },
      { metric: "D1 bytes per ledger row (chunk of the last 48 h)", value: perLedgerRow, unit: "bytes" },
      {
        metric: "D1 file, compacted / as ingested",
        value: compacted.total,
        unit: `bytes (${hourly.total.toLocaleString("en")})`,
      },
      {
        metric: "projection: 90 days, 50 nodes, 10M requests/day",
        value: projection / 1e9,
        unit: "GB",
        target: "<= 3",
      },
    );
  } catch (error) {
    console.error(master.log().slice(-3000));
    throw error;
  } finally {
    await master.stop();
  }
}

// 4. Fleet-shaped uploads (issue 9's fleet: 1,000 nodes × 5 records/s, one 50-record chunk per
// node every 10 s = 100 chunks/s), sent open-loop at that rate for BENCH_FLEET_SECONDS: answer
// latency, errors, and the user workerd's CPU per chunk and resident memory. Not in the default
// phases: BENCH_PHASES=fleetlogs (BENCH_FLEET_NODES scales it).
const FLEET_NODES = Number(process.env.BENCH_FLEET_NODES ?? 1000);
const FLEET_SECONDS = Number(process.env.BENCH_FLEET_SECONDS ?? 60);
const FLEET_CHUNK = 50;
const FLEET_EVERY_MS = 10_000;

/** Resident memory (MB) of the master's busiest workerd (the one running the worker). */
function workerdRssMb(master) {
  let best = { cpu: -1, rss: 0 };
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (!comm.startsWith("workerd") || Number(fields[2]) !== master.child.pid) continue;
      const cpu = Number(fields[11]) + Number(fields[12]);
      if (cpu > best.cpu) best = { cpu, rss: (Number(fields[21]) * 4096) / 1e6 };
    } catch {}
  }
  return best.rss;
}

async function fleetLogs() {
  const master = await startMaster(masterOptions);
  const api = client(master);
  try {
    const nodes = await api.enrollNodes(FLEET_NODES, "fleet");
    const startTs = Date.now() - 60_000;
    const latencies = [];
    const statuses = {};
    const rss = [workerdRssMb(master)];
    const cpu0 = workerdCpuSeconds(master);
    const t0 = performance.now();
    const inflight = new Set();
    let sent = 0;
    let accepted = 0;
    const total = Math.floor((FLEET_SECONDS * 1000 * FLEET_NODES) / FLEET_EVERY_MS);
    const gapMs = FLEET_EVERY_MS / FLEET_NODES;
    const sampler = setInterval(() => rss.push(workerdRssMb(master)), 2000);
    for (let i = 0; i < total; i++) {
      const due = t0 + i * gapMs;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const n = i % FLEET_NODES;
      const seq = Math.floor(i / FLEET_NODES) + 1;
      const body = buildSmallChunk(n, startTs + seq * 1000);
      const s0 = performance.now();
      const p = fetch(`${master.url}/api/agent/v1/logs`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${nodes[n].nodeToken}`,
          "Content-Encoding": "gzip",
          "Content-Type": "application/x-ndjson",
          "X-Fleetgate-Chunk": `fleet.${seq}`,
        },
        body,
      })
        .then(async (res) => {
          const text = await res.text();
          statuses[res.status] = (statuses[res.status] ?? 0) + 1;
          if (res.status === 200) accepted += JSON.parse(text).accepted;
          latencies.push(performance.now() - s0);
        })
        .catch(() => {
          statuses.failed = (statuses.failed ?? 0) + 1;
        })
        .finally(() => inflight.delete(p));
      inflight.add(p);
      sent++;
    }
    await Promise.all(inflight);
    clearInterval(sampler);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = workerdCpuSeconds(master) - cpu0;
    console.log(
      `fleet uploads: ${sent} chunks in ${seconds.toFixed(1)} s, statuses ${JSON.stringify(statuses)}`,
    );
    rows.push(
      {
        metric: `fleet uploads: ${FLEET_NODES} nodes, ${FLEET_CHUNK}-record chunk per node per 10 s, ${sent} chunks`,
        value: sent / seconds,
        unit: `chunks/s (${JSON.stringify(statuses)})`,
      },
      {
        metric: "fleet upload answer median / p95",
        value: median(latencies),
        unit: `ms (p95 ${p95(latencies).toFixed(0)}, max ${Math.max(...latencies).toFixed(0)})`,
      },
      { metric: "fleet upload workerd CPU per chunk (all work)", value: (cpu / sent) * 1000, unit: "ms" },
      {
        metric: "fleet upload workerd RSS start / max / end",
        value: rss[0],
        unit: `MB (max ${Math.max(...rss).toFixed(0)}, end ${rss[rss.length - 1].toFixed(0)})`,
      },
      { metric: "fleet upload records accepted", value: accepted, unit: "records" },
    );
  } catch (error) {
    console.error(master.log().slice(-3000));
    throw error;
  } finally {
    await master.stop();
  }
}

function buildSmallChunk(node, startMs) {
  const lines = [];
  for (let i = 0; i < FLEET_CHUNK; i++) {
    lines.push(
      JSON.stringify({
        ts: new Date(startMs + i * 200).toISOString(),
        client: `10.${node % 250}.${Math.floor(rand() * 4)}.7`,
        method: "GET",
        scheme: "connect",
        host: pickHost(),
        port: 443,
        status: 200,
        action: "allow",
        bytesIn: Math.floor(rand() * 2000),
        bytesOut: Math.floor(rand() * 50_000),
        durationMs: Math.floor(rand() * 300),
        requestId: `${node}-${startMs}-${i}`,
      }),
    );
  }
  return gzipSync(`${lines.join("\n")}\n`);
}

if (PHASES.has("ingest") || PHASES.has("reports")) await ingestAndReports();
if (PHASES.has("storage")) await storage();
if (PHASES.has("fleetlogs")) await fleetLogs();
rows.push(...searchRows);
console.table(rows);
const out = path.resolve(import.meta.dirname, "../../bench-results");
mkdirSync(out, { recursive: true });
writeFileSync(path.join(out, "reports.json"), JSON.stringify({ name: "reports", rows }, null, 2));
