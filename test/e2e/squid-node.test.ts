// A Squid node end to end: the real master, the compiled agent with driver squid, and Debian's
// Squid (foreground, loopback, own temp dirs) running that same binary as its helper. Requests go
// through Squid; the master's totals equal the requests sent, across `squid -k rotate`, an agent
// stop (Squid keeps serving and refuses everything, still logging), a rotation while the agent is
// down, and the agent's restart.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrollArgs } from "../helpers/enroll-args.mjs";
import {
  adminClient,
  agentCli,
  cleanup,
  freePort,
  type Master,
  proxyGet,
  type RunningAgent,
  requireAgentBinary,
  startAgent,
  startMaster,
  startOrigin,
  tempDir,
  waitFor,
} from "./harness";

const SQUID = "/usr/sbin/squid";
const SPOOL_ENV = {
  FLEETGATE_SPOOL_SYNC_MS: "100",
  FLEETGATE_SPOOL_CHUNK_AGE_MS: "1000",
  FLEETGATE_SPOOL_CHUNK_RECORDS: "25",
};

let master: Master;
let admin: ReturnType<typeof adminClient>;
let origin: Awaited<ReturnType<typeof startOrigin>>;
let dir: string;
let stateDir: string;
let squidPort: number;
let squid: ChildProcess | null = null;
let agent: RunningAgent | null = null;
let from: number;
const sent = { requests: 0, allowed: 0, blocked: 0, errors: 0 };

// The origin listens on loopback, which the destination guard refuses unless the policy allows it.
const policy = {
  destinations: { allow: ["127.0.0.0/8"] },
  rules: [{ id: "no-blocked-test", action: "block", match: { domains: ["blocked.test"] } }],
  defaultAction: "allow",
};

async function send(i: number, expected?: number): Promise<void> {
  const blocked = i % 3 === 0;
  const url = blocked ? `http://blocked.test:${origin.port}/r${i}` : `${origin.url}r${i}`;
  const answer = await proxyGet(squidPort, url, 15_000);
  sent.requests++;
  if (answer.status === 200) sent.allowed++;
  else if (answer.status === 403) sent.blocked++;
  else sent.errors++;
  expect(answer.status, `request ${i} to ${url}`).toBe(expected ?? (blocked ? 403 : 200));
}

async function sendMany(first: number, count: number, expected?: number): Promise<void> {
  for (let i = first; i < first + count; i++) await send(i, expected);
}

function rotate(): void {
  execFileSync(SQUID, ["-k", "rotate", "-f", path.join(dir, "squid.conf")], { stdio: "ignore" });
}

/**
 * Starts Squid and waits until it serves. freePort's port is free when picked, not when Squid
 * binds it (a busy CI machine's outbound connections draw from the same ephemeral range): a
 * Squid that exits before it serves is started again on another port, up to three times, and a
 * failure names Squid's exit and the end of its cache.log.
 */
async function startSquid(): Promise<void> {
  const conf = path.join(dir, "squid.conf");
  for (let attempt = 1; ; attempt++) {
    const child = spawn(SQUID, ["-N", "-f", conf], { stdio: "ignore" });
    squid = child;
    const deadline = Date.now() + 30_000;
    let serving = false;
    // Not waitFor: a Squid that exited is known at once, not after the deadline.
    while (!serving && child.exitCode === null && child.signalCode === null && Date.now() < deadline) {
      serving = (await proxyGet(squidPort, `${origin.url}warmup`).catch(() => null))?.status === 200;
      if (!serving) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (serving) return;
    const exit = child.exitCode ?? child.signalCode ?? "still running";
    await stopSquid();
    const logPath = path.join(dir, "var/cache.log");
    const log = existsSync(logPath) ? readFileSync(logPath, "utf8").slice(-2000) : "(no cache.log)";
    if (attempt === 3)
      throw new Error(`squid did not serve on ${squidPort} (exit: ${exit}); cache.log ends:\n${log}`);
    console.warn(
      `squid did not serve on ${squidPort} (attempt ${attempt}, exit: ${exit}); cache.log ends:\n${log}`,
    );
    squidPort = await freePort();
    writeFileSync(
      conf,
      readFileSync(conf, "utf8").replace(/^http_port .*$/m, `http_port 127.0.0.1:${squidPort}`),
    );
    // The node's enrolled listen address is the port doctor probes.
    const configPath = path.join(stateDir, "config.json");
    const config = JSON.parse(readFileSync(configPath, "utf8"));
    writeFileSync(configPath, JSON.stringify({ ...config, listen: `127.0.0.1:${squidPort}` }, null, 2));
  }
}

async function stopSquid(): Promise<void> {
  const child = squid;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child.once("exit", resolve));
  process.kill(child.pid!, "SIGTERM");
  const timer = setTimeout(() => child.pid && process.kill(child.pid, "SIGKILL"), 8_000);
  await gone;
  clearTimeout(timer);
}

beforeAll(async () => {
  requireAgentBinary();
  if (!existsSync(SQUID)) throw new Error(`${SQUID} is missing: apt-get install -y squid (.ci/run does)`);
  from = Date.now() - 60_000;
  master = await startMaster();
  admin = adminClient(master.url);
  origin = await startOrigin();
  dir = tempDir("squid");
  // Squid runs as user proxy: it reaches the helper socket and its page, and writes var/.
  chmodSync(dir, 0o755);
  mkdirSync(path.join(dir, "var"), { mode: 0o777 });
  chmodSync(path.join(dir, "var"), 0o777);
  mkdirSync(path.join(dir, "conf.d"));
  stateDir = path.join(dir, "state");
  squidPort = await freePort();
  writeFileSync(
    path.join(dir, "squid.conf"),
    [
      `http_port 127.0.0.1:${squidPort}`,
      "workers 1",
      "cache deny all",
      `pid_filename ${dir}/var/squid.pid`,
      `cache_log ${dir}/var/cache.log`,
      `access_log stdio:${dir}/var/access.log`,
      "cache_store_log none",
      `coredump_dir ${dir}/var`,
      "pinger_enable off",
      "visible_hostname fleetgate-e2e",
      "shutdown_lifetime 1 seconds",
      "logfile_rotate 3",
      `include ${dir}/conf.d/*.conf`,
      "http_access deny all",
      "",
    ].join("\n"),
  );
  const published = await admin.publish(policy, "block blocked.test");
  const key = await admin.createEnrollmentKey("e2e squid");
  const enrolled = await agentCli(
    enrollArgs({
      master: master.url,
      key,
      stateDir,
      listen: `127.0.0.1:${squidPort}`,
      hostname: "e2e-squid",
      extra: ["--driver", "squid"],
    }),
  );
  expect(enrolled.code, enrolled.stderr).toBe(0);
  // Node-local Squid paths (docs/squid.md, Settings); the helper defaults to this agent binary.
  const configPath = path.join(stateDir, "config.json");
  const config = JSON.parse(readFileSync(configPath, "utf8"));
  config.squid = {
    confPath: path.join(dir, "squid.conf"),
    includePath: path.join(dir, "conf.d/fleetgate.conf"),
    accessLogPath: path.join(dir, "var/fleetgate-access.log"),
    socketPath: path.join(dir, "run/helper.sock"),
    logPollMs: 50,
  };
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  agent = startAgent(stateDir, SPOOL_ENV);
  await waitFor("the include", async () => existsSync(path.join(dir, "conf.d/fleetgate.conf")), 30_000);
  await waitFor(
    "the node to apply the policy",
    async () => (await admin.nodes()).find((n) => n.appliedVersion === published.version),
    60_000,
    250,
  );
  await startSquid();
  sent.requests++;
  sent.allowed++;
}, 180_000);

afterAll(async () => {
  await stopSquid().catch(() => undefined);
  await agent?.stop();
  await cleanup();
});

describe("a Squid node through the real master", () => {
  it("master totals equal the requests sent across rotations and an agent restart", async () => {
    await sendMany(0, 30);
    rotate();
    await sendMany(30, 30);
    expect(await agent!.stop()).toBe(0);
    // Agent down: Squid still listens and logs; the helper refuses everything (503).
    await sendMany(60, 10, 503);
    rotate();
    agent = startAgent(stateDir, SPOOL_ENV);
    // The helper tries the socket again a second after a failed attempt.
    await waitFor(
      "the agent to decide again",
      async () => {
        const s = await proxyGet(squidPort, `${origin.url}probe`, 15_000);
        sent.requests++;
        if (s.status === 200) sent.allowed++;
        else sent.errors++;
        return s.status === 200;
      },
      60_000,
      300,
    );
    await sendMany(70, 30);
    const summary = await waitFor(
      `the master to count ${sent.requests} requests (${JSON.stringify(sent)})`,
      async () => {
        const s = await admin.summary(from, Date.now() + 60_000);
        if (s.requests > sent.requests)
          throw new Error(`over-counted: ${JSON.stringify(s)} vs ${JSON.stringify(sent)}`);
        return s.requests === sent.requests ? s : null;
      },
      150_000,
      500,
    );
    expect(summary).toMatchObject({
      requests: sent.requests,
      allowed: sent.allowed,
      blocked: sent.blocked,
      nodes: 1,
    });
    expect(sent.blocked).toBe(30);
  }, 300_000);

  it("doctor passes on the running Squid node", async () => {
    const result = await agentCli(["doctor", "--state-dir", stateDir]);
    expect(result.stdout).toMatch(/✓ squid binary — Squid 5\.\d+/);
    expect(result.stdout).toMatch(/✓ squid include/);
    expect(result.stdout).toMatch(/✓ squid -k parse/);
    expect(result.stdout).toMatch(/✓ squid helper answers/);
    expect(result.stdout).toMatch(/✓ squid access log/);
    expect(result.stdout).toMatch(/✓ squid port/);
  }, 60_000);
});
