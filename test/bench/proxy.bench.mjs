#!/usr/bin/env node
// Built-in proxy vs Squid 5.7 on the same loopback origin, same wrk load, same run.
//
//   node test/bench/proxy.bench.mjs [--duration 10] [--connections 50] [--domains 1000000] [--rounds 5]
//
// The built-in proxy runs under Bun through test/agent/fixtures/proxy-harness.ts with a policy
// blocking 1,000,000 generated domains and its access log going to the agent's real sink, the
// durable disk spool (framed, fsynced every 200 ms, sealed into gzip chunks); Squid runs with a
// generated minimal config (one worker, no cache, its access log on). wrk requests the origin's
// absolute URL from each proxy (a proxy request). Writes bench-results/proxy.json.
//
// Fairness: one origin for both (raw TCP, a fixed answer: test/agent/fixtures/bench-origin.ts, so it
// costs as little as possible), the same wrk command, rounds alternating A-B then B-A, medians
// reported. Each round also records CPU time per request of the proxy, the origin and wrk (from
// /proc and the shell's `times`), which does not depend on how busy the shared machine is.

import { execFileSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort, startChild, waitForLine, waitForPort } from "./bench-kit.mjs";

const root = path.resolve(import.meta.dirname, "../..");
const bun = path.join(root, "node_modules/.bin/bun");
const argv = new Map();
for (let i = 2; i < process.argv.length; i += 2) argv.set(process.argv[i], process.argv[i + 1]);
const DURATION = Number(argv.get("--duration") ?? 10);
const CONNECTIONS = Number(argv.get("--connections") ?? 50);
const DOMAINS = Number(argv.get("--domains") ?? 1_000_000);
const ROUNDS = Number(argv.get("--rounds") ?? 5);
const SQUID = "/usr/sbin/squid";

const children = [];
const work = mkdtempSync(path.join(tmpdir(), "fg-proxy-bench-"));
// Squid drops root to its own user; let it write its pid and logs here.
chmodSync(work, 0o777);

function cleanup() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {}
    }
  }
  rmSync(work, { recursive: true, force: true });
}
process.on("exit", cleanup);
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    cleanup();
    process.exit(130);
  });
}

function start(command, args, options = {}) {
  return startChild(children, command, args, { cwd: root, ...options }, 4000);
}

// ---- 1M deterministic, realistic-looking domains ----

function generateDomains(count) {
  let seed = 0x9e3779b9;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const syllables =
    "ba be bi bo bu ca co cu da de di do fa fe fi ga go ha he hi ka ke ki ko la le li lo lu ma me mi mo mu na ne ni no pa pe pi po ra re ri ro sa se si so ta te ti to va ve vi vo za zo".split(
      " ",
    );
  const words =
    "ads track click stream shop news play cloud media pixel metric promo deal bet cash game live star".split(
      " ",
    );
  const tlds = [
    "com",
    "com",
    "com",
    "net",
    "org",
    "io",
    "info",
    "biz",
    "co",
    "de",
    "ru",
    "xyz",
    "top",
    "online",
    "site",
    "co.uk",
    "com.br",
  ];
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const out = new Set();
  while (out.size < count) {
    let label = "";
    const n = 2 + Math.floor(rand() * 3);
    for (let i = 0; i < n; i++) label += pick(syllables);
    if (rand() < 0.4) label += `-${pick(words)}`;
    if (rand() < 0.2) label += Math.floor(rand() * 100);
    let domain = `${label}.${pick(tlds)}`;
    if (rand() < 0.15) domain = `${pick(["cdn", "www", "api", "img", "m"])}.${domain}`;
    out.add(domain);
  }
  return [...out];
}

function writePolicy(file, domains) {
  const policy = {
    access: { clients: ["127.0.0.0/8", "::1/128"] },
    // The bench origin is on loopback, which the destination guard refuses unless allowed here.
    destinations: { allow: ["127.0.0.0/8", "::1/128"] },
    auth: { required: false, realm: "Fleetgate", users: [] },
    lists: { blocklist: { domains } },
    schedules: {},
    rules: [
      { id: "blocklist", name: "Bench block list", action: "block", match: { domains: ["@blocklist"] } },
    ],
    defaultAction: "allow",
    blockPage: { title: "Blocked by policy", body: "Blocked." },
    logging: { includeQuery: false },
  };
  writeFileSync(file, JSON.stringify({ version: 1, policy }));
}

function squidConfig(port) {
  return [
    `http_port 127.0.0.1:${port}`,
    "workers 1",
    "cache deny all",
    "cache_mem 8 MB",
    "http_access allow localhost",
    "http_access deny all",
    `pid_filename ${work}/squid.pid`,
    `access_log stdio:${work}/squid-access.log`,
    `cache_log ${work}/squid-cache.log`,
    "cache_store_log none",
    `coredump_dir ${work}`,
    "visible_hostname fleetgate-bench",
    "shutdown_lifetime 1 seconds",
    "max_filedescriptors 8192",
    "",
  ].join("\n");
}

const CHUNK_NAME = /\.r(\d+)\.t\d+\.ndjson\.gz$/;

/** Records the spool has on disk: frames in its segments plus the record counts in sealed chunk names. */
function spooledRecords(dir) {
  let records = 0;
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const file = path.join(d, entry.name);
      if (entry.isDirectory()) walk(file);
      else if (CHUNK_NAME.test(entry.name)) records += Number(CHUNK_NAME.exec(entry.name)[1]);
      else if (entry.name.endsWith(".seg")) records += countFrames(readFileSync(file));
    }
  };
  walk(dir);
  return records;
}

function countFrames(data) {
  let n = 0;
  for (let at = 4; at + 8 <= data.length; n++) at += 8 + data.readUInt32LE(at);
  return n;
}

// ---- load ----

function parseLatencyMs(text) {
  const m = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === "us" ? v / 1000 : m[2] === "s" ? v * 1000 : v;
}

/** CPU seconds (user + system) used so far by a process and its children that are still alive. */
function cpuSeconds(pid) {
  let ticks = 0;
  const add = (stat) => {
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  };
  try {
    add(readFileSync(`/proc/${pid}/stat`, "utf8"));
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(" ")
      .filter(Boolean)) {
      add(readFileSync(`/proc/${child}/stat`, "utf8"));
    }
  } catch {}
  return ticks / 100; // USER_HZ
}

function loadAverage() {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}

function runWrk(proxyPort, originUrl, seconds, measured = []) {
  const script = path.join(work, "proxy.lua");
  writeFileSync(script, `wrk.path = "${originUrl}"\nwrk.headers["Host"] = "${new URL(originUrl).host}"\n`);
  const before = measured.map(cpuSeconds);
  // `times` prints the shell's and then its children's (wrk's) user and system time.
  const out = execFileSync(
    "bash",
    [
      "-c",
      `wrk -t2 -c${CONNECTIONS} -d${seconds}s --latency -s '${script}' http://127.0.0.1:${proxyPort}/ && times`,
    ],
    { encoding: "utf8", timeout: (seconds + 30) * 1000 },
  );
  const cpu = measured.map((pid, i) => cpuSeconds(pid) - before[i]);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const times = [...out.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const wrkCpu = times.length >= 4 ? times[2] + times[3] : Number.NaN;
  const perRequest = (seconds) => Math.round((seconds / requests) * 1e7) / 10; // us, one decimal
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = parseLatencyMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? "");
  const p99 = parseLatencyMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? "");
  const errors = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1];
  const socketErrors = /Socket errors:.*/.exec(out)?.[0];
  return {
    rps,
    p50,
    p99,
    requests,
    cpuUs: cpu.map(perRequest),
    wrkCpuUs: perRequest(wrkCpu),
    non2xx: Number(errors ?? 0),
    socketErrors,
    raw: out,
  };
}

/** Event-loop stalls of the built-in proxy during a round, from its stall probe. */
function stallsSince(file, startedS) {
  if (!existsSync(file)) return "";
  const seconds = readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((s) => s.t >= startedS);
  if (seconds.length === 0) return "";
  const max = Math.max(...seconds.map((s) => s.max));
  const over3 = seconds.reduce((sum, s) => sum + s.over3, 0) / seconds.length;
  return `; loop lag max ${max} ms, ${over3.toFixed(1)} stalls > 3 ms per second`;
}

function curlThrough(proxyPort, url) {
  return execFileSync(
    "curl",
    ["-s", "-o", "/dev/stderr", "-w", "%{http_code}", "-x", `http://127.0.0.1:${proxyPort}`, url],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 10_000,
    },
  );
}

async function main() {
  if (!existsSync(SQUID)) throw new Error(`${SQUID} missing: apt-get install -y squid`);
  if (!existsSync("/usr/bin/wrk")) throw new Error("wrk missing: apt-get install -y wrk");

  const origin = start(bun, ["test/agent/fixtures/bench-origin.ts"]);
  const originPort = (await waitForLine(origin, "listening", 15_000)).port;
  const originUrl = `http://127.0.0.1:${originPort}/`;

  console.log(`generating ${DOMAINS.toLocaleString("en")} domains…`);
  const domains = generateDomains(DOMAINS);
  const policyFile = path.join(work, "policy.json");
  writePolicy(policyFile, domains);
  console.log(`policy: ${(statSync(policyFile).size / 1e6).toFixed(1)} MB`);

  const spoolDir = path.join(work, "builtin-spool");
  // The harness's 1 ms timer reports its worst lag each second: event-loop stalls under load.
  const stallFile = path.join(work, "stalls.ndjson");
  const builtin = start(
    bun,
    ["test/agent/fixtures/proxy-harness.ts", "--policy", policyFile, "--log", `spool:${spoolDir}`],
    { env: { ...process.env, FLEETGATE_STALL_PROBE: stallFile } },
  );
  const listening = await waitForLine(builtin, "listening", 180_000);
  const builtinPort = Number(String(listening.address).split(":").pop());
  const compiled = /"type":"compiled","version":\d+,"ms":(\d+)/.exec(builtin.log);
  console.log(`builtin proxy on ${builtinPort} (validate + compile ${compiled?.[1] ?? "?"} ms)`);

  const squidPort = await freePort();
  const conf = path.join(work, "squid.conf");
  writeFileSync(conf, squidConfig(squidPort));
  execFileSync(SQUID, ["-k", "parse", "-f", conf], { stdio: "ignore" });
  const squid = start(SQUID, ["-N", "-f", conf]);
  await waitForPort(squidPort, 30_000);
  console.log(`squid on ${squidPort}`);

  // Sanity: both proxies forward, and the built-in one really blocks a listed domain.
  for (const [name, port] of [
    ["builtin", builtinPort],
    ["squid", squidPort],
  ]) {
    const code = curlThrough(port, originUrl);
    if (code !== "200") throw new Error(`${name}: curl -x answered ${code}`);
  }
  const blocked = curlThrough(builtinPort, `http://${domains[12345]}/`);
  if (blocked !== "403") throw new Error(`builtin did not block a listed domain (got ${blocked})`);

  // The two cores are shared with other work, so load drifts: alternate the proxies over several
  // rounds and report each one's median round, which treats both the same way.
  const targets = [
    ["builtin", builtinPort, builtin.pid],
    ["squid", squidPort, squid.pid],
  ];
  const rounds = { builtin: [], squid: [] };
  const loadBefore = loadAverage();
  console.log(`load average before: ${loadBefore}`);
  for (const [, port] of targets) runWrk(port, originUrl, 3); // warm-up
  for (let round = 0; round < ROUNDS; round++) {
    // A-B, then B-A: neither proxy always runs right after the other one's load.
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const [name, port, pid] of order) {
      const startedS = Math.floor(Date.now() / 1000);
      const result = runWrk(port, originUrl, DURATION, [pid, origin.pid]);
      const stalls = name === "builtin" ? stallsSince(stallFile, startedS) : "";
      if (result.non2xx > 0 || !Number.isFinite(result.rps)) {
        console.error(result.raw);
        throw new Error(`${name}: errors under load`);
      }
      const [proxyUs, originUs] = result.cpuUs;
      console.log(
        `round ${round + 1} ${name.padEnd(7)}: ${result.rps.toFixed(0).padStart(6)} req/s, p99 ${String(result.p99).padStart(6)} ms; ` +
          `CPU per request: proxy ${proxyUs} us, origin ${originUs} us, wrk ${result.wrkCpuUs} us${stalls}`,
      );
      rounds[name].push({ ...result, proxyUs, originUs });
    }
  }
  const loadAfter = loadAverage();
  const median = (list, key) => [...list].sort((a, b) => a[key] - b[key])[Math.floor(list.length / 2)][key];
  const results = {};
  for (const name of ["builtin", "squid"]) {
    results[name] = {
      rps: median(rounds[name], "rps"),
      p50: median(rounds[name], "p50"),
      p99: median(rounds[name], "p99"),
      proxyUs: median(rounds[name], "proxyUs"),
      originUs: median(rounds[name], "originUs"),
      wrkUs: median(rounds[name], "wrkCpuUs"),
      socketErrors: rounds[name]
        .map((r) => r.socketErrors)
        .filter(Boolean)
        .join("; "),
    };
  }
  // The spool's figures: records synced to segments or sealed into chunks (what survives a crash).
  await new Promise((r) => setTimeout(r, 600)); // one more spool sync (every 200 ms)
  const logged = spooledRecords(spoolDir);

  const ratio = results.builtin.rps / results.squid.rps;
  const row = (label, r) => [
    label,
    r.rps.toFixed(0),
    r.p50.toFixed(2),
    r.p99.toFixed(2),
    r.proxyUs.toFixed(1),
    r.originUs.toFixed(1),
    r.wrkUs.toFixed(1),
  ];
  const table = [
    ["", "req/s", "p50 ms", "p99 ms", "proxy us", "origin us", "wrk us"],
    row("builtin", results.builtin),
    row("squid 5.7", results.squid),
  ];
  console.log(
    `\nwrk -t2 -c${CONNECTIONS} -d${DURATION}s, median of ${ROUNDS} alternating rounds, ${DOMAINS.toLocaleString("en")}-domain policy, access logs on; CPU time per request; load average ${loadBefore} -> ${loadAfter}`,
  );
  for (const row of table)
    console.log(row.map((c, i) => (i === 0 ? c.padEnd(10) : c.padStart(10))).join(" "));
  console.log(
    `ratio builtin/squid: ${ratio.toFixed(2)}x (target >= 2.5); builtin access-log records: ${logged}`,
  );
  if (results.builtin.socketErrors) console.log(`builtin ${results.builtin.socketErrors}`);
  if (results.squid.socketErrors) console.log(`squid ${results.squid.socketErrors}`);

  const rows = [
    { metric: "builtin req/s", value: Math.round(results.builtin.rps), unit: "req/s" },
    { metric: "squid req/s", value: Math.round(results.squid.rps), unit: "req/s" },
    { metric: "ratio builtin/squid", value: Number(ratio.toFixed(2)), unit: "x", target: ">= 2.5" },
    { metric: "builtin p50", value: results.builtin.p50, unit: "ms" },
    { metric: "squid p50", value: results.squid.p50, unit: "ms" },
    {
      metric: "builtin p99",
      value: results.builtin.p99,
      unit: "ms",
      target: `<= squid p99 (${results.squid.p99} ms)`,
    },
    { metric: "squid p99", value: results.squid.p99, unit: "ms" },
    { metric: "builtin CPU per request", value: results.builtin.proxyUs, unit: "us" },
    { metric: "squid CPU per request", value: results.squid.proxyUs, unit: "us" },
    { metric: "policy domains", value: DOMAINS, unit: "domains" },
    { metric: "builtin access-log records", value: logged, unit: "records" },
  ];
  const outDir = path.join(root, "bench-results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    path.join(outDir, "proxy.json"),
    `${JSON.stringify(
      {
        name: "proxy",
        connections: CONNECTIONS,
        durationSeconds: DURATION,
        loadAverage: { before: loadBefore, after: loadAfter },
        rounds: Object.fromEntries(
          Object.entries(rounds).map(([k, list]) => [
            k,
            list.map(({ rps, p50, p99, proxyUs, originUs, wrkCpuUs }) => ({
              rps,
              p50,
              p99,
              proxyUs,
              originUs,
              wrkUs: wrkCpuUs,
            })),
          ]),
        ),
        rows,
      },
      null,
      2,
    )}\n`,
  );
}

try {
  await main();
  cleanup();
  process.exit(0);
} catch (error) {
  console.error(`proxy bench failed: ${error instanceof Error ? error.message : String(error)}`);
  cleanup();
  process.exit(1);
}
