// Reporting pipeline on the local master (wrangler dev, local D1):
//  1. ingestion throughput: pre-built gzip chunks of the agent's default size (5,000 records,
//     thousands of distinct hosts) uploaded with 4 concurrent uploads; records/s accepted.
//  2. report latency: seed ≥ 10M requests from 50 nodes over 30 days through the same
//     ingestion path, then time summary / timeseries / top (median and p95).
// BENCH_RECORDS overrides the 10M seed (e.g. 1000000 for a quick look).
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { startMaster } from "../helpers/master.mjs";

const CHUNK = Number(process.env.BENCH_CHUNK ?? 5_000); // the agent spool's default seal count
const NODES = 50;
const DAYS = 30;
const SEED_RECORDS = Number(process.env.BENCH_RECORDS ?? 10_000_000);
const THROUGHPUT_CHUNKS = Number(process.env.BENCH_TCHUNKS ?? 160);
const CONCURRENCY = 4;
const QUERY_ROUNDS = 30;

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

const token = `fgb_bench-${Date.now()}-0123456789`;
const master = await startMaster({
  bootstrapToken: token,
  signingSeed: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
  vars: { ENROLL_RATE_LIMIT: "10000" },
});
const admin = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
const post = async (p, body, headers = admin) => {
  const res = await fetch(`${master.url}${p}`, { method: "POST", headers, body: JSON.stringify(body) });
  if (res.status >= 300) throw new Error(`${p}: ${res.status} ${await res.text()}`);
  return res.json();
};
const sorted = (xs) => [...xs].sort((a, b) => a - b);
const median = (xs) => sorted(xs)[Math.floor(xs.length / 2)];
const p95 = (xs) => sorted(xs)[Math.ceil(xs.length * 0.95) - 1];

// Uploads are idempotent (the chunk id is the key), so a request on a keep-alive socket the
// server closed meanwhile is simply sent again, as the agent's spool does.
async function upload(node, chunkId, body, attempt = 0) {
  let res;
  try {
    res = await send(node, chunkId, body);
  } catch (error) {
    if (attempt < 3) return upload(node, chunkId, body, attempt + 1);
    throw error;
  }
  const answer = await res.json();
  if (res.status !== 200 || (answer.duplicate && attempt === 0))
    throw new Error(`${chunkId}: ${res.status} ${JSON.stringify(answer)}`);
  // A duplicate on a retry means the lost attempt was counted: every bench chunk holds CHUNK records.
  return answer.duplicate ? CHUNK : answer.accepted;
}

function send(node, chunkId, body) {
  return fetch(`${master.url}/api/agent/v1/logs`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${node.nodeToken}`,
      "Content-Encoding": "gzip",
      "Content-Type": "application/x-ndjson",
      "X-Fleetgate-Chunk": chunkId,
    },
    body,
  });
}

async function runPool(jobs, concurrency) {
  let next = 0;
  let accepted = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++];
        const n = await upload(job.node, job.id, job.body ?? buildChunk(job.nodeIndex, job.start, job.span));
        accepted += n;
      }
    }),
  );
  return accepted;
}

try {
  const { key } = await post("/api/v1/enrollment-keys", { name: "bench" });
  const nodes = [];
  for (let i = 0; i < NODES; i++) {
    nodes.push(
      await post(
        "/api/agent/v1/enroll",
        {
          enrollmentKey: key,
          instanceId: `bench-node-${i}-${Date.now()}`,
          hostname: `branch-${i}`,
          agentVersion: "bench",
          proxyKind: "builtin",
        },
        { "Content-Type": "application/json" },
      ),
    );
  }
  const end = Date.now() - (Date.now() % 3_600_000);
  const start = end - DAYS * 86_400_000;
  const chunksPerNode = Math.max(1, Math.ceil((SEED_RECORDS - THROUGHPUT_CHUNKS * CHUNK) / CHUNK / NODES));
  const span = (end - start) / chunksPerNode;
  const jobs = [];
  for (let c = 0; c < chunksPerNode; c++) {
    for (let n = 0; n < NODES; n++)
      jobs.push({ node: nodes[n], nodeIndex: n, id: `bench.${c + 1}`, start: start + c * span, span });
  }

  // 1. Throughput on pre-built bodies, so the load generator's JSON+gzip work is not measured.
  // These are busy-node chunks: 5,000 records over 30 s each (the spool seals by count at that
  // rate), spread over the 50 nodes in the last hours. They count towards the seeded total.
  const timed = [];
  for (let c = 0; c < THROUGHPUT_CHUNKS; c++) {
    const nodeIndex = c % NODES;
    const chunkStart = end - 3 * 3_600_000 + Math.floor(c / NODES) * 30_000;
    timed.push({
      node: nodes[nodeIndex],
      id: `busy.${Math.floor(c / NODES) + 1}`,
      body: buildChunk(nodeIndex, chunkStart, 30_000),
    });
  }
  const t0 = performance.now();
  const acceptedTimed = await runPool(timed, CONCURRENCY);
  const seconds = (performance.now() - t0) / 1000;
  const throughput = acceptedTimed / seconds;
  console.log(
    `ingested ${acceptedTimed} records in ${seconds.toFixed(2)} s: ${Math.round(throughput)} records/s`,
  );

  // 2. Seed the rest through the same path, then query.
  const s0 = performance.now();
  const seeded = acceptedTimed + (await runPool(jobs, CONCURRENCY));
  console.log(`seeded ${seeded} records in ${((performance.now() - s0) / 1000).toFixed(1)} s`);

  const ranges = {
    "24h": [end - 86_400_000, end],
    "7d": [end - 7 * 86_400_000, end],
    "30d": [start, end],
  };
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
  const check = await (await fetch(`${master.url}${queries[6][1]}`, { headers: admin })).json();
  if (check.requests !== seeded) throw new Error(`30-day summary counts ${check.requests}, seeded ${seeded}`);

  const rows = [
    {
      metric: `ingest ${CHUNK}-record chunks, ${CONCURRENCY} concurrent`,
      value: throughput,
      unit: "records/s",
      target: ">= 400000",
    },
    { metric: "records seeded (50 nodes, 30 days)", value: seeded, unit: "records" },
  ];
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
  console.table(rows);
  const out = path.resolve(import.meta.dirname, "../../bench-results");
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, "reports.json"), JSON.stringify({ name: "reports", rows }, null, 2));
} catch (error) {
  console.error(master.log().slice(-3000));
  throw error;
} finally {
  master.stop();
}
