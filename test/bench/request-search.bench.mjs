// Request search on the local master (wrangler dev, local D1 + local R2):
//  a one-hour window holding 1 M records from 50 nodes, uploaded through POST /logs (so R2
//  objects and the D1 archive index are the real ones), once as busy-node chunks of 5,000 records
//  and once as 1,000-record chunks, in two different hours. Then: first page of
//  GET /api/v1/requests (newest 100) with no filter, with node + action, and with a rare user
//  (reads up to the per-page chunk cap); a full NDJSON export of one node's hour; and the D1
//  bytes per archive index row (sqlite3 dbstat on the local database file).
// BENCH_SEARCH_RECORDS overrides the 1 M per hour.
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { startMaster } from "../helpers/master.mjs";

const NODES = 50;
const HOUR = 3_600_000;
const RECORDS = Number(process.env.BENCH_SEARCH_RECORDS ?? 1_000_000);
const LAYOUTS = [5_000, 1_000]; // records per chunk
const CONCURRENCY = 4;
const ROUNDS = 15;

let seed = 7;
const rand = () => {
  seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
  return seed / 2 ** 32;
};
const HOSTS = Array.from(
  { length: 5000 },
  (_, i) => `${["www", "api", "cdn"][i % 3]}.site${i}.${["com", "net", "org"][i % 3]}`,
);
const pickHost = () => HOSTS[Math.min(HOSTS.length - 1, Math.floor(HOSTS.length * rand() ** 3))];

/** `count` records of one node spread evenly over [startMs, startMs + spanMs). */
function buildChunk(node, startMs, spanMs, count) {
  const lines = [];
  for (let i = 0; i < count; i++) {
    const blocked = rand() < 0.1;
    const r = {
      ts: new Date(startMs + Math.floor((i / count) * spanMs)).toISOString(),
      client: `10.${node}.${Math.floor(rand() * 4)}.${Math.floor(rand() * 50)}`,
      method: "GET",
      scheme: "connect",
      host: pickHost(),
      port: 443,
      status: blocked ? 403 : 200,
      action: blocked ? "block" : "allow",
      bytesIn: Math.floor(rand() * 2000),
      bytesOut: Math.floor(rand() * 50_000),
      durationMs: Math.floor(rand() * 300),
      requestId: `${node}-${startMs}-${i}`,
    };
    // One in ~20,000 records belongs to the rare user the filtered search looks for.
    if (rand() < 0.5) r.user = rand() < 0.0001 ? "rare-user" : `user${node}-${Math.floor(rand() * 20)}`;
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

async function upload(node, chunkId, body, attempt = 0) {
  let res;
  try {
    res = await fetch(`${master.url}/api/agent/v1/logs`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${node.nodeToken}`,
        "Content-Encoding": "gzip",
        "Content-Type": "application/x-ndjson",
        "X-Fleetgate-Chunk": chunkId,
      },
      body,
    });
  } catch (error) {
    if (attempt < 3) return upload(node, chunkId, body, attempt + 1);
    throw error;
  }
  const text = await res.text();
  // Uploads are idempotent: a local workerd restart ("worker restarted mid-request") is retried.
  if (res.status >= 500 && attempt < 3) return upload(node, chunkId, body, attempt + 1);
  if (res.status !== 200) throw new Error(`${chunkId}: ${res.status} ${text}`);
}

async function runPool(jobs) {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < jobs.length) {
        const job = jobs[next++];
        await upload(job.node, job.id, buildChunk(job.nodeIndex, job.start, job.span, job.count));
      }
    }),
  );
}

async function timeQuery(url, check) {
  const times = [];
  let last;
  for (let i = 0; i < ROUNDS; i++) {
    const q0 = performance.now();
    const res = await fetch(`${master.url}${url}`, { headers: admin });
    const text = await res.text();
    times.push(performance.now() - q0);
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${text}`);
    last = JSON.parse(text);
  }
  check?.(last);
  return { times, last };
}

/** D1 bytes of the archive index (table + its indexes), read with sqlite3's dbstat. */
function archiveIndexBytes() {
  const dir = path.join(master.persistDir, "v3/d1/miniflare-D1DatabaseObject");
  const file = readdirSync(dir).find((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  if (!file) return null;
  const out = spawnSync("sqlite3", [
    path.join(dir, file),
    "SELECT SUM(pgsize), (SELECT COUNT(*) FROM log_archive) FROM dbstat WHERE name LIKE 'log_archive%'",
  ]);
  const [bytes, rows] = String(out.stdout).trim().split("|").map(Number);
  return Number.isFinite(bytes) && rows ? { bytes, rows } : null;
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
          instanceId: `search-node-${i}-${Date.now()}`,
          hostname: `branch-${i}`,
          agentVersion: "bench",
          proxyKind: "builtin",
        },
        { "Content-Type": "application/json" },
      ),
    );
  }
  const rows = [];
  const base = Date.now() - (Date.now() % HOUR) - 4 * HOUR;
  for (const [layout, perChunk] of LAYOUTS.entries()) {
    const from = base + layout * 2 * HOUR;
    const to = from + HOUR;
    const chunksPerNode = Math.max(1, Math.round(RECORDS / NODES / perChunk));
    const span = HOUR / chunksPerNode;
    const jobs = [];
    for (let c = 0; c < chunksPerNode; c++)
      for (let n = 0; n < NODES; n++)
        jobs.push({
          node: nodes[n],
          nodeIndex: n,
          id: `s${perChunk}.${c + 1}`,
          start: from + c * span,
          span,
          count: perChunk,
        });
    const s0 = performance.now();
    await runPool(jobs);
    // Chunks are counted (and indexed) by the ingest coalescers' flush, about a second later.
    for (let i = 0; i < 600; i++) {
      const res = await fetch(`${master.url}/api/v1/reports/summary?from=${from}&to=${to}`, {
        headers: admin,
      });
      if ((await res.json()).requests >= jobs.length * perChunk) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    const records = jobs.length * perChunk;
    console.log(
      `${perChunk}-record chunks: ${records} records in ${jobs.length} chunks uploaded in ${((performance.now() - s0) / 1000).toFixed(1)} s`,
    );
    const label = `${records.toLocaleString("en")} records/h in ${perChunk}-record chunks`;
    const window = `from=${from}&to=${to}`;

    const plain = await timeQuery(`/api/v1/requests?${window}&limit=100`, (page) => {
      if (page.rows.length !== 100 || !page.nextCursor) throw new Error("first page is not full");
      const times = page.rows.map((r) => Date.parse(r.ts));
      if (times.some((t, i) => i > 0 && t > times[i - 1])) throw new Error("first page is not newest first");
    });
    rows.push({
      metric: `first page (100 newest), ${label}`,
      value: median(plain.times),
      unit: `ms (p95 ${p95(plain.times).toFixed(0)}; ${plain.last.scanned.chunks} chunks, ${plain.last.scanned.records} records read)`,
      target: "<= 2000",
    });
    const node = nodes[7].nodeId;
    const blocked = await timeQuery(
      `/api/v1/requests?${window}&node=${node}&action=block&limit=100`,
      (page) => {
        if (page.rows.some((r) => r.action !== "block" || r.nodeId !== node))
          throw new Error("filter leaked");
      },
    );
    rows.push({
      metric: `first page, one node + action=block, ${label}`,
      value: median(blocked.times),
      unit: `ms (p95 ${p95(blocked.times).toFixed(0)}; ${blocked.last.scanned.chunks} chunks read)`,
    });
    const rare = await timeQuery(`/api/v1/requests?${window}&user=rare-user&limit=100`, (page) => {
      if (page.rows.some((r) => r.user !== "rare-user")) throw new Error("filter leaked");
    });
    rows.push({
      metric: `first page, rare user (whole window, chunk cap 200), ${label}`,
      value: median(rare.times),
      unit: `ms (p95 ${p95(rare.times).toFixed(0)}; ${rare.last.scanned.chunks} chunks, ${rare.last.scanned.records} records read, ${rare.last.rows.length} rows, partial ${rare.last.partial})`,
    });

    const e0 = performance.now();
    const res = await fetch(`${master.url}/api/v1/requests/export.ndjson?${window}&node=${node}`, {
      headers: admin,
    });
    const text = await res.text();
    const seconds = (performance.now() - e0) / 1000;
    const exported = text.split("\n").length - 2; // minus the end line and the final newline
    if (exported !== records / NODES)
      throw new Error(`export of one node gave ${exported} records, want ${records / NODES}`);
    rows.push({
      metric: `export one node's hour (${exported} records), ${label}`,
      value: exported / seconds,
      unit: "records/s",
    });
  }
  const index = archiveIndexBytes();
  if (index) {
    rows.push({
      metric: `D1 archive index bytes per chunk (${index.rows} rows, 4 KiB pages)`,
      value: index.bytes / index.rows,
      unit: "bytes",
    });
  }
  console.table(rows);
  const out = path.resolve(import.meta.dirname, "../../bench-results");
  mkdirSync(out, { recursive: true });
  writeFileSync(path.join(out, "search.json"), JSON.stringify({ name: "search", rows }, null, 2));
} catch (error) {
  console.error(master.log().slice(-3000));
  throw error;
} finally {
  master.stop();
}
