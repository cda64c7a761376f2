// Debian's real Squid for the Squid-driver tests: started in the foreground (-N) on a loopback port
// with its own squid.conf, pid file and log dirs in a temp dir, stopped by pid whatever happens.
// The agent side (driver, decision socket, log reader) runs in the test process; Squid runs the
// agent's own CLI (`bun agent/main.ts squid-helper …`) as its helper, as user proxy.

import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { systemClock } from "../../agent/clock";
import { type AgentMetrics, createAgentMetrics } from "../../agent/metrics/agent-metrics";
import { createSquidDriver, type SquidDriver } from "../../agent/proxy/squid/index";
import { resolveSquidSettings, type SquidSettings } from "../../agent/proxy/squid/settings";
import { compileForSquid } from "../../agent/proxy/squid/support";
import type { LogRecord } from "../../protocol/wire";
import { freePort, waitForPort } from "./fakes/net";

export const SQUID = "/usr/sbin/squid";
const ROOT = path.resolve(import.meta.dirname, "../..");
export const BUN = path.join(ROOT, "node_modules/.bin/bun");
export const AGENT_MAIN = path.join(ROOT, "agent/main.ts");

/** The tests need the real Squid: a missing binary fails loudly instead of skipping. */
export function requireSquid(): void {
  if (!existsSync(SQUID)) throw new Error(`${SQUID} is missing: apt-get install -y squid (.ci/run does)`);
}

export { freePort, waitForPort };

/** A squid.conf like a node's: Fleetgate's include comes through a conf.d glob, then `deny all`. */
export function squidConf(dir: string, port: number, extra: string[] = []): string {
  return [
    `http_port 127.0.0.1:${port}`,
    "workers 1",
    "cache deny all",
    "cache_mem 8 MB",
    `pid_filename ${dir}/var/squid.pid`,
    `cache_log ${dir}/var/cache.log`,
    `access_log stdio:${dir}/var/access.log`,
    "cache_store_log none",
    `coredump_dir ${dir}/var`,
    "pinger_enable off",
    "visible_hostname fleetgate-test",
    "shutdown_lifetime 1 seconds",
    "dns_timeout 5 seconds",
    "logfile_rotate 2",
    ...extra,
    `include ${dir}/conf.d/*.conf`,
    "http_access deny all",
    "",
  ].join("\n");
}

export interface SquidProcess {
  pid: number;
  exited: Promise<void>;
  stop(): Promise<void>;
}

export function startSquidProcess(confPath: string): SquidProcess {
  const child: ChildProcess = spawn(SQUID, ["-N", "-f", confPath], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    pid: child.pid!,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(child.pid!, "SIGTERM");
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid!, "SIGKILL");
        } catch {}
      }, 8_000);
      await exited;
      clearTimeout(timer);
      if (stderr.includes("FATAL")) console.error(`squid stderr: ${stderr}`);
    },
  };
}

export interface SquidNode {
  dir: string;
  port: number;
  settings: SquidSettings;
  driver: SquidDriver;
  squid: SquidProcess;
  records: LogRecord[];
  events: { type: string; fields?: Record<string, unknown> }[];
  /** The agent's metrics, counting every record the driver reads from Squid's log (as `run` wires them). */
  metrics: AgentMetrics;
  /** Compiles (with the Squid limits) and applies a policy document as version `version`. */
  apply(policy: Record<string, unknown>, version: number): Promise<void>;
  waitForRecords(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startSquidNode(
  options: { extraConf?: string[]; helperChildren?: number; initial?: Record<string, unknown> } = {},
): Promise<SquidNode> {
  requireSquid();
  const dir = mkdtempSync(path.join(tmpdir(), "fg-squid-"));
  // Squid runs as user proxy: it must reach the socket, read the page and write var/.
  chmodSync(dir, 0o755);
  mkdirSync(path.join(dir, "var"), { mode: 0o777 });
  chmodSync(path.join(dir, "var"), 0o777);
  mkdirSync(path.join(dir, "conf.d"));
  const port = await freePort();
  const confPath = path.join(dir, "squid.conf");
  writeFileSync(confPath, squidConf(dir, port, options.extraConf));
  const settings = resolveSquidSettings(
    {
      confPath,
      includePath: path.join(dir, "conf.d/fleetgate.conf"),
      accessLogPath: path.join(dir, "var/fleetgate-access.log"),
      socketPath: path.join(dir, "state/squid/helper.sock"),
      helperCommand: [BUN, AGENT_MAIN, "squid-helper"],
      helperChildren: options.helperChildren ?? 1,
      logPollMs: 20,
    },
    path.join(dir, "state"),
  );
  const records: LogRecord[] = [];
  const events: SquidNode["events"] = [];
  let metricsDriver: SquidDriver | null = null;
  const metrics = createAgentMetrics({ clock: systemClock, driver: () => metricsDriver, spool: () => null });
  const driver = createSquidDriver({
    settings,
    listen: `127.0.0.1:${port}`,
    sink: metrics.countingSink({ write: (record) => records.push(record) }),
    events: { emit: (type, fields) => events.push({ type, fields }) },
  });
  metricsDriver = driver;
  const cacheLog = path.join(dir, "var/cache.log");
  const accepting = () =>
    existsSync(cacheLog)
      ? readFileSync(cacheLog, "utf8").split("Accepting HTTP Socket connections").length - 1
      : 0;
  const apply = async (policy: Record<string, unknown>, version: number) => {
    const compiled = compileForSquid(policy);
    if (!compiled.ok) throw new Error(compiled.error);
    const before = { reconfigures: driver.reconfigures(), accepting: accepting() };
    await driver.applyPolicy({ version, hash: `v${version}`, compiled: compiled.compiled });
    // A reconfigure closes Squid's port for a moment: wait until Squid listens again.
    if (squid !== null && driver.reconfigures() > before.reconfigures) {
      const until = Date.now() + 30_000;
      while (accepting() <= before.accepting && Date.now() < until)
        await new Promise((r) => setTimeout(r, 20));
      await waitForPort(port, 30_000);
    }
  };
  let squid: SquidProcess | null = null;
  const close = async () => {
    await squid?.stop();
    await driver.stop(0).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (options.initial) await apply(options.initial, 1);
    await driver.start();
    squid = startSquidProcess(confPath);
    await waitForPort(port, 30_000);
  } catch (error) {
    const log = existsSync(path.join(dir, "var/cache.log"))
      ? readFileSync(path.join(dir, "var/cache.log"), "utf8").slice(-2000)
      : "";
    await close();
    throw new Error(`${(error as Error).message}\n${log}`);
  }
  return {
    dir,
    port,
    settings,
    driver,
    squid: squid!,
    records,
    events,
    metrics,
    apply,
    async waitForRecords(count, timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      while (records.length < count) {
        if (Date.now() > until) throw new Error(`only ${records.length} of ${count} access-log records`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close,
  };
}

export interface SimpleResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One request on a fresh connection (Connection: close), read to the end; optional source address. */
export function rawRequest(port: number, text: string, localAddress?: string): Promise<SimpleResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", localAddress });
    const chunks: Buffer[] = [];
    socket.setTimeout(20_000, () => socket.destroy(new Error("request timed out")));
    socket.on("connect", () => socket.write(text));
    socket.on("data", (d) => chunks.push(d));
    socket.on("error", reject);
    socket.on("close", () => resolve(parseResponse(Buffer.concat(chunks).toString("latin1"))));
  });
}

export function parseResponse(text: string): SimpleResponse {
  const end = text.indexOf("\r\n\r\n");
  const head = end < 0 ? text : text.slice(0, end);
  const lines = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(lines[0]?.split(" ")[1] ?? 0), headers, body: end < 0 ? "" : text.slice(end + 4) };
}

/** CONNECT host:port, then (when the tunnel opens) one HTTP request through it. */
export function connectRequest(
  port: number,
  authority: string,
  extraHeaders = "",
  localAddress?: string,
): Promise<{ status: number; tunnelled?: SimpleResponse }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: "127.0.0.1", localAddress });
    let buffer = "";
    let opened = false;
    socket.setTimeout(20_000, () => socket.destroy(new Error("CONNECT timed out")));
    socket.on("connect", () =>
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${extraHeaders}\r\n`),
    );
    socket.on("data", (d) => {
      buffer += d.toString("latin1");
      if (!opened) {
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        const status = Number(buffer.slice(0, end).split(" ")[1]);
        if (status !== 200) {
          socket.destroy();
          resolve({ status });
          return;
        }
        opened = true;
        buffer = buffer.slice(end + 4);
        socket.write("GET /tunnelled HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n");
      }
    });
    socket.on("error", reject);
    socket.on("close", () => {
      if (opened) resolve({ status: 200, tunnelled: parseResponse(buffer) });
      else resolve({ status: 0 });
    });
  });
}
