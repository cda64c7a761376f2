#!/usr/bin/env node
// Squid with the Fleetgate helper vs Squid with no ACLs, same binary, same origin, same wrk load,
// same run; then publish → enforced on the Squid node through the real master.
//
//   node test/bench/squid.bench.mjs [--duration 8] [--connections 50] [--rounds 3] [--domains 100000] [--publishes 15]
//
// The Fleetgate Squid runs the include the compiled agent (driver squid) wrote: every request goes
// through the external ACL helper (the agent binary in helper mode) to the agent's in-memory policy
// (a block list of --domains generated domains), and the Fleetgate access log is read into the
// spool and uploaded to the master while the load runs. The plain Squid has `http_access allow
// localhost` and its own access log. Rounds alternate A-B then B-A; medians are reported, with CPU
// per request (Squid plus its helper children, and the agent) from /proc. Writes bench-results/squid.json.
//
// publish → enforced: each round publishes a policy blocking a new host and polls through Squid
// every ~5 ms from the moment the publish is sent until Squid answers with that rule's block page.

import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { enrollArgs } from "../helpers/enroll-args.mjs";
import { startMaster } from "../helpers/master.mjs";
import { proxyGet } from "../helpers/proxy-get.mjs";
import { freePort, sleep, startChild, waitFor, waitForLine } from "./bench-kit.mjs";

const root = path.resolve(import.meta.dirname, "../..");
const bun = path.join(root, "node_modules/.bin/bun");
const bin = path.join(root, "dist", "fleetgate-agent-linux-x64");
const SQUID = "/usr/sbin/squid";
const argv = new Map();
for (let i = 2; i < process.argv.length; i += 2) argv.set(process.argv[i], process.argv[i + 1]);
const DURATION = Number(argv.get("--duration") ?? 8);
const CONNECTIONS = Number(argv.get("--connections") ?? 50);
const ROUNDS = Number(argv.get("--rounds") ?? 3);
const DOMAINS = Number(argv.get("--domains") ?? 100_000);
const PUBLISHES = Number(argv.get("--publishes") ?? 15);
const token = `fgb_squid-bench-${Date.now()}-0123456789`;
const admin = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };

const work = mkdtempSync(path.join(os.tmpdir(), "fg-squid-bench-"));
// Squid (user proxy) reaches the helper socket and the block page here and writes var/.
chmodSync(work, 0o755);
for (const dir of ["var", "plain-var"]) {
  mkdirSync(path.join(work, dir));
  chmodSync(path.join(work, dir), 0o777);
}
mkdirSync(path.join(work, "conf.d"));

const children = [];
const cleanups = [];
let masterLog = () => "";
function kill(child, signal) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.detached ? -child.pid : child.pid, signal);
  } catch {}
}
process.on("exit", () => {
  for (const child of children) kill(child, "SIGKILL");
  rmSync(work, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function start(command, args, options = {}) {
  return startChild(children, command, args, { cwd: root, ...options });
}

function generateDomains(count) {
  const out = [];
  for (let i = 0; i < count; i++) out.push(`site${i.toString(36)}.bench-block.test`);
  return out;
}

function squidConf(port, varDir, withInclude) {
  return [
    `http_port 127.0.0.1:${port}`,
    "workers 1",
    "cache deny all",
    "cache_mem 8 MB",
    `pid_filename ${varDir}/squid.pid`,
    `cache_log ${varDir}/cache.log`,
    `access_log stdio:${varDir}/access.log`,
    "cache_store_log none",
    `coredump_dir ${varDir}`,
    "pinger_enable off",
    "visible_hostname fleetgate-bench",
    "shutdown_lifetime 1 seconds",
    "max_filedescriptors 8192",
    ...(withInclude
      ? [`include ${work}/conf.d/*.conf`, "http_access deny all"]
      : ["http_access allow localhost", "http_access deny all"]),
    "",
  ].join("\n");
}

/** CPU seconds of a process and its live children (Squid's helpers); "-pid": the children alone. */
function cpuSeconds(spec) {
  const childrenOnly = typeof spec === "string";
  const pid = Math.abs(Number(spec));
  let ticks = 0;
  const add = (stat) => {
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  };
  try {
    if (!childrenOnly) add(readFileSync(`/proc/${pid}/stat`, "utf8"));
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(" ")
      .filter(Boolean)) {
      add(readFileSync(`/proc/${child}/stat`, "utf8"));
    }
  } catch {}
  return ticks / 100;
}

function runWrk(proxyPort, originUrl, seconds, measured = []) {
  const script = path.join(work, "proxy.lua");
  writeFileSync(script, `wrk.path = "${originUrl}"\nwrk.headers["Host"] = "${new URL(originUrl).host}"\n`);
  const before = measured.map(cpuSeconds);
  const out = execFileSync(
    "wrk",
    ["-t2", `-c${CONNECTIONS}`, `-d${seconds}s`, "--latency", "-s", script, `http://127.0.0.1:${proxyPort}/`],
    { encoding: "utf8", timeout: (seconds + 30) * 1000 },
  );
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const cpuUs = measured.map((pid, i) => Math.round(((cpuSeconds(pid) - before[i]) / requests) * 1e7) / 10);
  const latency = (q) => {
    const m = new RegExp(`^\\s+${q}%\\s+([\\d.]+)(us|ms|s)$`, "m").exec(out);
    if (!m) return Number.NaN;
    return m[2] === "us" ? Number(m[1]) / 1000 : m[2] === "s" ? Number(m[1]) * 1000 : Number(m[1]);
  };
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    p50: latency(50),
    p99: latency(99),
    requests,
    cpuUs,
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0),
    socketErrors: /Socket errors:.*/.exec(out)?.[0] ?? "",
    raw: out,
  };
}

async function main() {
  if (!existsSync(SQUID)) throw new Error(`${SQUID} missing: apt-get install -y squid`);
  if (!existsSync("/usr/bin/wrk")) throw new Error("wrk missing: apt-get install -y wrk");
  if (!existsSync(bin)) {
    console.log(`${bin} missing: building it`);
    const built = spawnSync(process.execPath, ["scripts/build-agent.mjs", "linux-x64"], {
      cwd: root,
      stdio: "inherit",
    });
    if (built.status !== 0) throw new Error("agent build failed");
  }

  const origin = start(bun, ["test/agent/fixtures/bench-origin.ts"]);
  const originPort = (await waitForLine(origin, "listening", 15_000)).port;
  const originUrl = `http://127.0.0.1:${originPort}/`;

  const master = await startMaster({
    bootstrapToken: token,
    signingSeed: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
  });
  // wrangler runs in its own process group (test/helpers/master.mjs): a crash kills the whole group.
  master.child.detached = true;
  children.push(master.child);
  masterLog = master.log;
  cleanups.push(() => master.stop());
  const call = async (method, p, body) => {
    const res = await fetch(`${master.url}${p}`, {
      method,
      headers: admin,
      body: body && JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    return res.json();
  };

  const domains = generateDomains(DOMAINS);
  // The origin is on loopback, which the destination guard refuses unless the policy allows it.
  const policy = (round) => ({
    destinations: { allow: ["127.0.0.0/8"] },
    lists: { blocklist: { domains } },
    rules: [
      ...(round > 0
        ? [{ id: `round-${round}`, action: "block", match: { domains: [`=round-${round}.test`] } }]
        : []),
      { id: "blocklist", action: "block", match: { domains: ["@blocklist"] } },
    ],
    defaultAction: "allow",
  });

  const fgPort = await freePort();
  const plainPort = await freePort();
  const stateDir = path.join(work, "state");
  const { key } = await call("POST", "/api/v1/enrollment-keys", { name: "squid bench" });
  const enrolled = spawnSync(
    bin,
    enrollArgs({
      master: master.url,
      key,
      stateDir,
      listen: `127.0.0.1:${fgPort}`,
      hostname: "squid-bench",
      extra: ["--driver", "squid"],
    }),
  );
  if (enrolled.status !== 0) throw new Error(`enroll: ${enrolled.stderr}`);
  const configPath = path.join(stateDir, "config.json");
  const config = JSON.parse(readFileSync(configPath, "utf8"));
  config.squid = {
    confPath: path.join(work, "squid-fg.conf"),
    includePath: path.join(work, "conf.d/fleetgate.conf"),
    accessLogPath: path.join(work, "var/fleetgate-access.log"),
    socketPath: path.join(work, "run/helper.sock"),
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  writeFileSync(config.squid.confPath, squidConf(fgPort, path.join(work, "var"), true));
  writeFileSync(
    path.join(work, "squid-plain.conf"),
    squidConf(plainPort, path.join(work, "plain-var"), false),
  );
  const publishStarted = performance.now();
  const published = await call("POST", "/api/v1/policy/versions", {
    policy: policy(0),
    message: "block list",
  });
  console.log(
    `publishing the ${DOMAINS.toLocaleString("en")}-domain policy took ${Math.round(performance.now() - publishStarted)} ms`,
  );

  const agent = start(bin, ["run", "--state-dir", stateDir], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
  });
  cleanups.push(async () => {
    kill(agent, "SIGTERM");
    const deadline = Date.now() + 15_000;
    while (agent.exitCode === null && agent.signalCode === null && Date.now() < deadline) await sleep(50);
    kill(agent, "SIGKILL");
  });
  await waitFor("the include", async () => existsSync(config.squid.includePath), 60_000);
  const squidFg = start(SQUID, ["-N", "-f", config.squid.confPath]);
  const squidPlain = start(SQUID, ["-N", "-f", path.join(work, "squid-plain.conf")]);
  for (const squid of [squidFg, squidPlain]) {
    cleanups.push(async () => {
      kill(squid, "SIGTERM");
      const deadline = Date.now() + 10_000;
      while (squid.exitCode === null && squid.signalCode === null && Date.now() < deadline) await sleep(50);
      kill(squid, "SIGKILL");
    });
  }
  const nodes = async () => (await call("GET", "/api/v1/nodes")).nodes;
  await waitFor(
    "the node to apply the block list",
    async () => (await nodes())[0]?.appliedVersion === published.version,
    180_000,
    250,
  );
  await waitFor(
    "both Squids to forward",
    async () => {
      const [a, b] = await Promise.all([proxyGet(fgPort, originUrl), proxyGet(plainPort, originUrl)]);
      return a.status === 200 && b.status === 200;
    },
    60_000,
    200,
  );
  const listed = await proxyGet(fgPort, `http://${domains[DOMAINS >> 1]}/`);
  if (listed.status !== 403)
    throw new Error(`Fleetgate Squid did not block a listed domain (${listed.status})`);
  console.log(
    `squid+fleetgate on ${fgPort}, plain squid on ${plainPort}, ${DOMAINS.toLocaleString("en")} domains`,
  );

  // publish → enforced first, on a quiet master: the load rounds below make it ingest ~100k records.
  const latencies = [];
  for (let i = 1; i <= PUBLISHES; i++) {
    const url = `http://round-${i}.test/`;
    const t0 = performance.now();
    const publishing = call("POST", "/api/v1/policy/versions", { policy: policy(i), message: `round ${i}` });
    let publishError = null;
    publishing.catch((error) => {
      publishError = error;
    });
    let enforcedAt = null;
    while (enforcedAt === null) {
      const sent = performance.now();
      const answer = await proxyGet(fgPort, url, 10_000);
      if (publishError) throw publishError;
      if (answer.status === 403 && answer.body.includes(`round-${i}`)) enforcedAt = performance.now();
      else if (performance.now() - t0 > 60_000) throw new Error(`round ${i}: not enforced within 60 s`);
      else await sleep(Math.max(0, 5 - (performance.now() - sent)));
    }
    await publishing;
    latencies.push(Math.round(enforcedAt - t0));
    // As the agent bench does: the node's ACK and its next long-poll settle before the next publish.
    await sleep(500);
    console.log(
      `round ${i}: enforced after ${latencies.at(-1)} ms (publish call ${Math.round(performance.now() - t0)} ms)`,
    );
  }
  const targets = [
    ["fleetgate", fgPort, [squidFg.pid, agent.pid, `-${squidFg.pid}`]],
    ["plain", plainPort, [squidPlain.pid]],
  ];
  for (const [, port] of targets) runWrk(port, originUrl, 2);
  const rounds = { fleetgate: [], plain: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const [name, port, pids] of order) {
      const result = runWrk(port, originUrl, DURATION, pids);
      if (result.non2xx > 0 || !Number.isFinite(result.rps)) {
        console.error(result.raw);
        throw new Error(`${name}: errors under load`);
      }
      console.log(
        `round ${round + 1} ${name.padEnd(9)}: ${result.rps.toFixed(0).padStart(6)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms; CPU per request: squid ${result.cpuUs[0]} us${name === "fleetgate" ? ` (helpers ${result.cpuUs[2]} us), agent ${result.cpuUs[1]} us` : ""} ${result.socketErrors}`,
      );
      rounds[name].push(result);
    }
  }
  const pick = (name, key) => median(rounds[name].map((r) => r[key]));
  const squidUs = (name) => median(rounds[name].map((r) => r.cpuUs[0]));
  const agentUs = median(rounds.fleetgate.map((r) => r.cpuUs[1]));
  const helperUs = median(rounds.fleetgate.map((r) => r.cpuUs[2]));

  const agentConf = readFileSync(config.squid.includePath, "utf8");
  if (!agentConf.includes("cache=0")) throw new Error("unexpected include");

  const ratio = pick("fleetgate", "rps") / pick("plain", "rps");
  const rows = [
    { metric: "squid + fleetgate helper req/s", value: Math.round(pick("fleetgate", "rps")), unit: "req/s" },
    { metric: "squid, no ACLs req/s", value: Math.round(pick("plain", "rps")), unit: "req/s" },
    { metric: "ratio fleetgate/plain", value: Number(ratio.toFixed(2)), unit: "x" },
    { metric: "squid + fleetgate p99", value: pick("fleetgate", "p99"), unit: "ms" },
    { metric: "squid, no ACLs p99", value: pick("plain", "p99"), unit: "ms" },
    { metric: "squid CPU per request (with helpers), fleetgate", value: squidUs("fleetgate"), unit: "us" },
    { metric: "  of which the helper relays", value: helperUs, unit: "us" },
    { metric: "squid CPU per request, no ACLs", value: squidUs("plain"), unit: "us" },
    { metric: "agent CPU per request (decisions + log + spool + upload)", value: agentUs, unit: "us" },
    { metric: "publish → enforced on Squid, median", value: median(latencies), unit: "ms" },
    { metric: "publish → enforced on Squid, max", value: Math.max(...latencies), unit: "ms" },
  ];
  console.table(rows);
  console.log(`publish → enforced (ms): ${latencies.join(", ")}`);
  const out = path.join(root, "bench-results");
  mkdirSync(out, { recursive: true });
  writeFileSync(
    path.join(out, "squid.json"),
    JSON.stringify(
      { name: "squid", domains: DOMAINS, connections: CONNECTIONS, duration: DURATION, rows, latencies },
      null,
      2,
    ),
  );
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`squid bench failed: ${error.stack ?? error}\n--- master log:\n${masterLog().slice(-3000)}`);
  for (const child of children)
    if (child.log) console.error(`--- ${child.spawnargs.slice(0, 2).join(" ")}:\n${child.log.slice(-2000)}`);
}
for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
process.exit(failed ? 1 : 0);
