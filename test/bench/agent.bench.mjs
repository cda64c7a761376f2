// The compiled agent against the real local master: publish → enforced on one node (20 rounds),
// idle RSS after enrollment and one applied policy, and the binary's size.
// Each round blocks a new host `round-<i>.localhost` (Bun's resolver answers *.localhost with
// 127.0.0.1, so the host is served by the local origin until the block lands), and polls through
// the proxy every ~5 ms from the moment the publish is sent until the block page comes back.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { enrollArgs } from "../helpers/enroll-args.mjs";
import { freePort, startMaster } from "../helpers/master.mjs";
import { proxyGet } from "../helpers/proxy-get.mjs";
import { sleep, waitFor } from "./bench-kit.mjs";

const ROUNDS = 20;
const POLL_EVERY_MS = 5;
const ROUND_TIMEOUT_MS = 10_000;
const IDLE_MS = 10_000;
const root = path.resolve(import.meta.dirname, "../..");
const bin = path.join(root, "dist", "fleetgate-agent-linux-x64");
const token = `fgb_bench-${Date.now()}-0123456789`;
const admin = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };

const children = new Set();
let agentLog = "";
const cleanups = [];
function killGroup(child, signal = "SIGTERM") {
  if (child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {}
}
// A Ctrl-C or a crash must not leave an agent or wrangler behind.
process.on("exit", () => {
  for (const child of children) killGroup(child, "SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs) => [...xs].sort((a, b) => a - b)[Math.ceil(xs.length * 0.95) - 1];
const host = (i) => `round-${i}.localhost`;
const policy = (i) => ({
  rules:
    i === 0
      ? []
      : [{ id: `round-${i}`, action: "block", match: { domains: [`=${host(i)}`] }, message: `round ${i}` }],
  defaultAction: "allow",
  // The origin is on loopback, which the destination guard refuses unless the policy allows it.
  destinations: { allow: ["127.0.0.0/8", "::1/128"] },
});

function runCli(args) {
  const result = spawnSync(bin, args, { encoding: "utf8", timeout: 60_000 });
  if (result.status !== 0)
    throw new Error(`fleetgate-agent ${args[0]} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

function vmRssMb(pid) {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+)\s+kB/m);
  if (!line) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(line[1]) / 1024;
}

async function main() {
  if (!existsSync(bin)) {
    console.log(`${bin} missing: building it`);
    if (
      spawnSync(process.execPath, ["scripts/build-agent.mjs", "linux-x64"], { cwd: root, stdio: "inherit" })
        .status !== 0
    )
      throw new Error("agent build failed");
  }
  const binaryMb = statSync(bin).size / 1024 / 1024;

  const origin = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("hello from origin");
  });
  await new Promise((r) => origin.listen(0, "127.0.0.1", r));
  cleanups.push(() => origin.close());
  const originPort = origin.address().port;
  const url = (i) => `http://${host(i)}:${originPort}/`;

  const master = await startMaster({
    bootstrapToken: token,
    signingSeed: "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
  });
  cleanups.push(() => master.stop());
  const post = async (p, body) => {
    const res = await fetch(`${master.url}${p}`, {
      method: "POST",
      headers: admin,
      body: JSON.stringify(body),
    });
    if (res.status >= 300) throw new Error(`${p}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  const nodes = async () =>
    (await (await fetch(`${master.url}/api/v1/nodes`, { headers: admin })).json()).nodes;

  const stateDir = mkdtempSync(path.join(os.tmpdir(), "fleetgate-bench-agent-"));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const proxyPort = await freePort();
  const { key } = await post("/api/v1/enrollment-keys", { name: "agent bench" });
  runCli(
    enrollArgs({
      master: master.url,
      key,
      stateDir,
      listen: `127.0.0.1:${proxyPort}`,
      hostname: "bench-node",
    }),
  );
  await post("/api/v1/policy/versions", { policy: policy(0), message: "allow all" });

  const agent = spawn(bin, ["run", "--state-dir", stateDir], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.add(agent);
  agent.stderr.on("data", (d) => {
    agentLog = (agentLog + d).slice(-20_000);
  });
  cleanups.push(async () => {
    killGroup(agent);
    const deadline = Date.now() + 15_000;
    while (agent.exitCode === null && agent.signalCode === null && Date.now() < deadline) await sleep(50);
    killGroup(agent, "SIGKILL");
  });

  await waitFor(
    "the proxy to serve round-0.localhost",
    async () => (await proxyGet(proxyPort, url(0))).status === 200,
    60_000,
  );
  await waitFor("the ACK of the first policy", async () => (await nodes())[0]?.appliedVersion === 1, 30_000);
  await sleep(IDLE_MS);
  const idleRssMb = vmRssMb(agent.pid);

  const latencies = [];
  for (let i = 1; i <= ROUNDS; i++) {
    const before = await proxyGet(proxyPort, url(i));
    if (before.status !== 200)
      throw new Error(`round ${i}: ${host(i)} answered ${before.status} before its block`);
    const t0 = performance.now();
    const publishing = post("/api/v1/policy/versions", { policy: policy(i), message: `round ${i}` });
    let enforcedAt = null;
    while (enforcedAt === null) {
      const sent = performance.now();
      const answer = await proxyGet(proxyPort, url(i));
      if (answer.status === 403 && answer.body.includes(`round ${i}`)) enforcedAt = performance.now();
      else if (answer.status !== 200) throw new Error(`round ${i}: unexpected ${answer.status}`);
      else if (performance.now() - t0 > ROUND_TIMEOUT_MS)
        throw new Error(`round ${i}: not enforced within ${ROUND_TIMEOUT_MS} ms`);
      else await sleep(Math.max(0, POLL_EVERY_MS - (performance.now() - sent)));
    }
    await publishing;
    latencies.push(enforcedAt - t0);
    await sleep(200);
  }
  await sleep(2_000);
  const busyRssMb = vmRssMb(agent.pid);

  const rows = [
    { metric: "publish → enforced, median", value: median(latencies), unit: "ms", target: "<= 300" },
    { metric: "publish → enforced, p95", value: p95(latencies), unit: "ms" },
    { metric: "agent idle RSS (1 policy, 10 s idle)", value: idleRssMb, unit: "MB", target: "<= 60" },
    { metric: `agent RSS after ${ROUNDS} publishes`, value: busyRssMb, unit: "MB" },
    { metric: "compiled binary size (linux-x64)", value: binaryMb, unit: "MB" },
  ];
  console.table(rows);
  const out = path.join(root, "bench-results");
  mkdirSync(out, { recursive: true });
  writeFileSync(
    path.join(out, "agent.json"),
    JSON.stringify({ name: "agent", rounds: ROUNDS, rows, latencies }, null, 2),
  );
}

let failed = false;
try {
  await main();
} catch (error) {
  failed = true;
  console.error(`agent bench failed: ${error.stack ?? error}\nagent log (tail):\n${agentLog.slice(-3_000)}`);
} finally {
  for (const step of cleanups.reverse()) {
    try {
      await step();
    } catch {}
  }
}
process.exit(failed ? 1 : 0);
