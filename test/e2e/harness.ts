// End-to-end harness: the real master under `wrangler dev --local`, the compiled agent binary,
// a local origin and a man-in-the-middle relay. Every child runs in its own process group and is
// killed by pid; every temp dir is removed by `cleanup()`.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "../agent/fakes/net";
import { SEED } from "../agent/fakes/seeds";
import { startMaster as startSharedMaster } from "../helpers/master.mjs";

export { freePort };

export const ROOT = path.resolve(import.meta.dirname, "../..");
export const AGENT_BIN = path.join(ROOT, "dist", "fleetgate-agent-linux-x64");
export const BOOTSTRAP_TOKEN = "fgb_e2e-bootstrap-token-0123456789abcdef";
/** The seed the agent tests sign with (test/agent/fakes/seeds.ts): bundles they make verify here. */
export const SIGNING_SEED = SEED;

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
const servers = new Set<net.Server>();

export function requireAgentBinary(): void {
  if (!existsSync(AGENT_BIN)) {
    throw new Error(
      `${AGENT_BIN} is missing: build it first with \`npm run build:agent\` (npm test does this)`,
    );
  }
}

export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `fleetgate-e2e-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      killGroup(child, "SIGKILL");
      resolve(null);
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Kills every child by its process group, closes servers and removes temp dirs. */
export async function cleanup(): Promise<void> {
  for (const child of children) killGroup(child);
  await Promise.all([...children].map((child) => exited(child, 5_000)));
  children.clear();
  for (const server of servers) server.close();
  servers.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${lastError}` : ""}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

export interface Master {
  url: string;
  port: number;
  persistDir: string;
  stop(): Promise<void>;
  log(): string;
}

/** Starts the real master; pass `persistDir` and `port` of a stopped one to bring the same master back. */
export async function startMaster(previous?: { persistDir: string; port: number }): Promise<Master> {
  const shared = await startSharedMaster({
    bootstrapToken: BOOTSTRAP_TOKEN,
    signingSeed: SIGNING_SEED,
    vars: { POLL_WAIT_SECONDS: "5" },
    persistDir: previous?.persistDir ?? tempDir("master"),
    port: previous?.port,
  });
  children.add(shared.child);
  return {
    url: shared.url,
    port: shared.port,
    persistDir: shared.persistDir,
    log: shared.log,
    async stop() {
      await shared.stop();
      children.delete(shared.child);
    },
  };
}

/** The admin API as a script would use it, with the bootstrap token. */
export function adminClient(baseUrl: string) {
  const call = async (method: string, route: string, body?: unknown) => {
    const response = await fetch(`${baseUrl}${route}`, {
      method,
      headers: { authorization: `Bearer ${BOOTSTRAP_TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${route} → ${response.status}: ${text}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  return {
    createEnrollmentKey: async (name: string) =>
      (await call("POST", "/api/v1/enrollment-keys", { name })).key as string,
    publish: async (policy: unknown, message: string) =>
      (await call("POST", "/api/v1/policy/versions", { policy, message })) as {
        version: number;
        hash: string;
      },
    nodes: async () => (await call("GET", "/api/v1/nodes")).nodes as NodeView[],
    events: async (nodeId: string) =>
      (await call("GET", `/api/v1/nodes/${nodeId}/events`)).events as unknown[],
    /** `GET /api/v1/reports/summary` over [from, to] (epoch ms). */
    summary: async (from: number, to: number) =>
      (await call("GET", `/api/v1/reports/summary?from=${from}&to=${to}`)) as unknown as ReportSummary,
  };
}

export interface NodeView {
  id: string;
  hostname: string;
  status: string;
  appliedVersion: number | null;
  lastError: string | null;
  [key: string]: unknown;
}

export interface ReportSummary {
  requests: number;
  allowed: number;
  blocked: number;
  nodes: number;
  incomplete: { nodeId: string; kind: "gap" | "backlog"; missing: string }[];
  [key: string]: unknown;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one agent command to completion. */
export function agentCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(AGENT_BIN, args, { env: { ...process.env, ...env }, detached: true });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d) => {
      stdout += d;
    });
    child.stderr?.on("data", (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface RunningAgent {
  pid: number;
  stderr(): string;
  /** SIGTERM, then the exit code (null if it had to be killed). */
  stop(): Promise<number | null>;
  /** SIGKILL (`kill -9`): no shutdown, no final sync; resolves once the process is gone. */
  kill(): Promise<void>;
}

/** `env` is added to this process's environment (e.g. the `FLEETGATE_SPOOL_*` knobs). */
export function startAgent(stateDir: string, env: Record<string, string> = {}): RunningAgent {
  const child = spawn(AGENT_BIN, ["run", "--state-dir", stateDir], {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env },
  });
  children.add(child);
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return {
    pid: child.pid!,
    stderr: () => stderr,
    async stop() {
      killGroup(child);
      const code = await exited(child, 15_000);
      children.delete(child);
      return code;
    },
    async kill() {
      killGroup(child, "SIGKILL");
      await exited(child, 15_000);
      children.delete(child);
    },
  };
}

/** A local origin that answers 200 "hello from origin". */
export async function startOrigin(): Promise<{ port: number; url: string }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("hello from origin");
  });
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return { port, url: `http://127.0.0.1:${port}/` };
}

export { proxyGet } from "../helpers/proxy-get.mjs";

/**
 * A relay between agent and master that can alter policy bundles in flight: with `tamper` on, it
 * changes one character inside the policy of every bundle it forwards, leaving hash and signature.
 */
export async function startTamperRelay(
  target: () => string,
): Promise<{ url: string; tamper: boolean; tampered: number }> {
  const state = { url: "", tamper: false, tampered: 0 };
  const server = http.createServer(async (req, res) => {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const headers = new Headers();
      for (const [name, value] of Object.entries(req.headers)) {
        if (typeof value === "string" && !["host", "connection", "content-length"].includes(name))
          headers.set(name, value);
      }
      const upstream = await fetch(`${target()}${req.url}`, {
        method: req.method,
        headers,
        body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
      });
      let body = Buffer.from(await upstream.arrayBuffer());
      if (state.tamper && upstream.status === 200 && req.url?.includes("/api/agent/v1/policy")) {
        body = Buffer.from(flipOneByteInPolicy(body.toString("utf8")));
        state.tampered++;
      }
      const out: Record<string, string> = {};
      upstream.headers.forEach((value, name) => {
        if (!["content-length", "content-encoding", "transfer-encoding", "connection"].includes(name))
          out[name] = value;
      });
      res.writeHead(upstream.status, out);
      res.end(body);
    } catch (error) {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(`relay: ${(error as Error).message}`);
    }
  });
  servers.add(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  state.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  return state;
}

function flipOneByteInPolicy(json: string): string {
  const bundle = JSON.parse(json) as { policy: { blockPage?: { title?: string }; rules?: { id: string }[] } };
  const text = JSON.stringify(bundle.policy);
  // Toggle the case of the first letter of the first rule id ("no-origin" → "No-origin"): one byte.
  const at = text.indexOf('"id":"') + 6;
  const ch = text[at]!;
  const flipped = ch === ch.toUpperCase() ? ch.toLowerCase() : ch.toUpperCase();
  bundle.policy = JSON.parse(text.slice(0, at) + flipped + text.slice(at + 1));
  return JSON.stringify(bundle);
}
