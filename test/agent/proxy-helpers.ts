// Shared helpers for the built-in proxy tests: the proxy runs under Bun in a child process
// (test/agent/fixtures/proxy-harness.ts), origins and clients are real node sockets on 127.0.0.1.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { hashPassword } from "../../protocol/policy/password";
import type { LogRecord } from "../../protocol/wire";

const ROOT = path.resolve(import.meta.dirname, "../..");
const BUN = path.join(ROOT, "node_modules/.bin/bun");
const HARNESS = path.join(ROOT, "test/agent/fixtures/proxy-harness.ts");

/**
 * The test origins listen on loopback, which the destination guard refuses by default: test
 * policies opt in to reaching 127.0.0.0/8 and ::1 (and CONNECT to any port). Guard tests override
 * `destinations` to see the defaults.
 */
export const LOOPBACK_DESTINATIONS = {
  allow: ["127.0.0.0/8", "::1/128"],
  connectPorts: ["1-65535"],
};

export function makePolicy(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    access: { clients: ["127.0.0.0/8", "::1/128"] },
    destinations: LOOPBACK_DESTINATIONS,
    auth: { required: false, realm: "Fleetgate", users: [] },
    lists: {},
    schedules: {},
    rules: [],
    defaultAction: "allow",
    blockPage: { title: "Blocked by policy", body: "Ask IT if you need this site." },
    logging: { includeQuery: false },
    ...overrides,
  };
}

/** A PBKDF2 hash with few iterations, so tests stay fast (the engine accepts 1,000 and up). */
export function passwordHashFor(password: string): Promise<string> {
  return hashPassword(password, 1_000);
}

export interface Harness {
  host: string;
  port: number;
  logs: LogRecord[];
  /** Connections the proxy tried outside loopback: never dialled (see proxy-harness.ts). */
  dials: { host: string; port: number }[];
  /** The proxy process (for its RSS). */
  pid: number;
  waitForLog(match: (r: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  applyPolicy(policy: Record<string, unknown> | null): Promise<void>;
  stop(deadlineMs: number): Promise<void>;
  kill(): void;
  exited: Promise<number | null>;
}

export async function startHarness(
  policy: Record<string, unknown> | null,
  extraArgs: string[] = [],
): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), "fg-proxy-"));
  let policyCount = 0;
  const writePolicy = (p: Record<string, unknown>): string => {
    const file = path.join(dir, `policy-${++policyCount}.json`);
    writeFileSync(file, JSON.stringify({ version: policyCount, policy: p }));
    return file;
  };
  const args = [HARNESS, ...extraArgs];
  if (policy !== null) args.push("--policy", writePolicy(policy));
  const child: ChildProcess = spawn(BUN, args, { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
  const logs: LogRecord[] = [];
  const dials: { host: string; port: number }[] = [];
  const waiters: { type: string; resolve: (v: Record<string, unknown>) => void }[] = [];
  const logWaiters: { match: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }[] = [];
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  let pending = "";
  child.stdout!.on("data", (d: Buffer) => {
    pending += d.toString();
    let nl = pending.indexOf("\n");
    while (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      nl = pending.indexOf("\n");
      const msg = JSON.parse(line) as { type: string; record?: LogRecord; host?: string; port?: number };
      if (msg.type === "dial") {
        dials.push({ host: String(msg.host), port: Number(msg.port) });
        continue;
      }
      if (msg.type === "log" && msg.record) {
        logs.push(msg.record);
        for (let i = logWaiters.length - 1; i >= 0; i--) {
          if (logWaiters[i]!.match(msg.record)) logWaiters.splice(i, 1)[0]!.resolve(msg.record);
        }
        continue;
      }
      const i = waiters.findIndex((w) => w.type === msg.type);
      if (i >= 0) waiters.splice(i, 1)[0]!.resolve(msg);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const next = (type: string, timeoutMs = 15_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`harness: no "${type}" in time; stderr:\n${stderr}`)),
        timeoutMs,
      );
      waiters.push({
        type,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
      });
    });
  const kill = () => {
    if (child.exitCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  let listening: Record<string, unknown>;
  try {
    listening = await Promise.race([
      next("listening"),
      exited.then((code) => {
        throw new Error(`harness exited with ${code}: ${stderr}`);
      }),
    ]);
  } catch (error) {
    kill();
    throw error;
  }
  const address = String(listening.address);
  const colon = address.lastIndexOf(":");
  return {
    host: address.slice(0, colon),
    port: Number(address.slice(colon + 1)),
    logs,
    dials,
    pid: child.pid!,
    exited,
    waitForLog(match, timeoutMs = 5000) {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no matching access-log record")), timeoutMs);
        logWaiters.push({
          match,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        });
      });
    },
    async applyPolicy(p) {
      const applied = next("applied");
      child.stdin!.write(`${JSON.stringify({ policy: p === null ? null : writePolicy(p) })}\n`);
      await applied;
    },
    async stop(deadlineMs) {
      const stopped = next("stopped", deadlineMs + 10_000);
      child.stdin!.write(`${JSON.stringify({ stop: deadlineMs })}\n`);
      await stopped;
    },
    kill,
  };
}

export interface Origin {
  port: number;
  connections: number;
  close(): Promise<void>;
}

export async function startOrigin(handler: http.RequestListener): Promise<Origin> {
  const server = http.createServer(handler);
  const sockets = new Set<net.Socket>();
  const origin: Origin = {
    port: 0,
    connections: 0,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  server.on("connection", (s) => {
    origin.connections++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  origin.port = (server.address() as net.AddressInfo).port;
  return origin;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** Header names in the order and case received. */
  rawHeaderNames: string[];
  body: Buffer;
}

/** Reads HTTP/1.1 responses (Content-Length framed or until close) from a raw socket. */
export class RawClient {
  private buffer = Buffer.alloc(0);
  private closed = false;
  private wake: (() => void) | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on("data", (d) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      this.wake?.();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on("error", () => {});
  }

  /** Starts reading an already connected (possibly paused) socket. */
  static adopt(socket: net.Socket): RawClient {
    const client = new RawClient(socket);
    socket.resume();
    return client;
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1", () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  private async waitFor(ready: () => boolean, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.closed) return;
      const left = until - Date.now();
      if (left <= 0) throw new Error("timed out reading from proxy");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  async readResponse(timeoutMs = 5000, headOnly = false): Promise<RawResponse> {
    await this.waitFor(() => this.buffer.indexOf("\r\n\r\n") >= 0, timeoutMs);
    const end = this.buffer.indexOf("\r\n\r\n");
    if (end < 0) throw new Error(`connection closed before a response head: ${this.buffer.toString()}`);
    const lines = this.buffer.subarray(0, end).toString("latin1").split("\r\n");
    this.buffer = this.buffer.subarray(end + 4);
    const status = Number(lines[0]!.split(" ")[1]);
    const headers: Record<string, string> = {};
    const rawHeaderNames: string[] = [];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      const name = line.slice(0, colon);
      rawHeaderNames.push(name);
      const key = name.toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[key] = headers[key] === undefined ? value : `${headers[key]}, ${value}`;
    }
    let body: Buffer;
    if (headOnly || status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = Buffer.alloc(0);
    } else if (headers["content-length"] !== undefined) {
      const n = Number(headers["content-length"]);
      await this.waitFor(() => this.buffer.length >= n, timeoutMs);
      body = this.buffer.subarray(0, n);
      this.buffer = this.buffer.subarray(n);
    } else {
      await this.waitFor(() => this.closed, timeoutMs);
      body = this.buffer;
      this.buffer = Buffer.alloc(0);
    }
    return { status, headers, rawHeaderNames, body };
  }

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    await this.waitFor(() => this.closed, timeoutMs).catch(() => {});
    return this.closed;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One request through the proxy on a fresh connection. */
export async function proxyRequest(
  proxyPort: number,
  text: string,
): Promise<RawResponse & { client: RawClient }> {
  const client = await RawClient.connect(proxyPort);
  client.send(text);
  const response = await client.readResponse();
  return { ...response, client };
}

export interface TlsMaterial {
  key: string;
  cert: string;
}

/** A throwaway self-signed certificate for 127.0.0.1, made with the system's openssl. */
export function selfSignedCert(): TlsMaterial {
  const dir = mkdtempSync(path.join(tmpdir(), "fg-cert-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "cert.pem"),
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
      ],
      { stdio: "ignore" },
    );
    return {
      key: readFileSync(path.join(dir, "key.pem"), "utf8"),
      cert: readFileSync(path.join(dir, "cert.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface EchoServer {
  port: number;
  /** Connections accepted (for TLS: handshakes completed). */
  connections: number;
  close(): Promise<void>;
}

/**
 * An echo origin on loopback, plain TCP or TLS with `material`: every byte read goes back (explicit
 * data handlers, no pipe()), and a FIN is answered with a FIN.
 */
export async function startEcho(material?: TlsMaterial): Promise<EchoServer> {
  const sockets = new Set<net.Socket>();
  const echo: EchoServer = { port: 0, connections: 0, close: async () => {} };
  const onSocket = (socket: net.Socket) => {
    echo.connections++;
    sockets.add(socket);
    socket.on("data", (d: Buffer) => socket.write(d));
    socket.on("end", () => socket.end());
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  };
  const server = material
    ? tls.createServer({ key: material.key, cert: material.cert }, onSocket)
    : net.createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  echo.port = (server.address() as net.AddressInfo).port;
  echo.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return echo;
}
