// A fake master for spool tests: a real node:http server on a free loopback port that inflates
// every chunk, remembers ids like the real ingestion does, and answers from a script when told to.
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { DiskSpool, type DiskSpoolOptions } from "../../agent/spool/disk-spool";
import type { SpoolSettings } from "../../agent/spool/settings";
import { systemClock } from "../../agent/sync/clock";
import type { Clock } from "../../agent/sync/types";
import type { LogRecord } from "../../protocol/wire";

export function record(i: number, extra: Partial<LogRecord> = {}): LogRecord {
  return {
    ts: new Date(1_700_000_000_000 + i).toISOString(),
    client: "10.0.0.1",
    method: "GET",
    scheme: "http",
    host: `host-${i % 50}.example`,
    port: 80,
    path: "/",
    status: 200,
    action: i % 7 === 0 ? "block" : "allow",
    bytesIn: 100,
    bytesOut: 1_000 + i,
    durationMs: 3,
    requestId: `req-${i}`,
    ...extra,
  };
}

export interface Received {
  id: string;
  headers: http.IncomingHttpHeaders;
  records: LogRecord[];
  at: number;
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };

export class FakeMaster {
  readonly received: Received[] = [];
  /** Ids the master has stored, with their record request ids. */
  readonly stored = new Map<string, string[]>();
  /** Answers used, in order, before the default (store and answer 200). */
  readonly script: (Reply | ((r: Received) => Reply | null))[] = [];
  /** Refuse any chunk with more records than this with 413. */
  maxRecords = Number.POSITIVE_INFINITY;
  /** Hold every answer this long, to see how many uploads overlap. */
  delayMs = 0;
  active = 0;
  peakActive = 0;
  private server!: http.Server;
  url = "";

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      this.active++;
      this.peakActive = Math.max(this.peakActive, this.active);
      req.on("data", (part: Buffer) => parts.push(part));
      req.on("end", () => {
        const reply = this.handle(req, Buffer.concat(parts));
        setTimeout(() => {
          this.active--;
          res.writeHead(reply.status, { "content-type": "application/json", ...reply.headers });
          res.end(reply.body === undefined ? "" : JSON.stringify(reply.body));
        }, this.delayMs);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** Every record request id the master has stored, over all chunks. */
  storedRequestIds(): string[] {
    return [...this.stored.values()].flat();
  }

  private handle(req: http.IncomingMessage, body: Buffer): Reply {
    const id = String(req.headers["x-fleetgate-chunk"]);
    const lines = gunzipSync(body).toString("utf8").split("\n").filter(Boolean);
    const received: Received = {
      id,
      headers: req.headers,
      records: lines.map((line) => JSON.parse(line) as LogRecord),
      at: Date.now(),
    };
    this.received.push(received);
    while (this.script.length > 0) {
      const next = this.script.shift()!;
      const reply = typeof next === "function" ? next(received) : next;
      if (reply) return reply;
    }
    if (received.records.length > this.maxRecords) {
      return { status: 413, body: error("CHUNK_TOO_LARGE", "too many records") };
    }
    if (this.stored.has(id)) return { status: 200, body: { accepted: 0, duplicate: true } };
    this.stored.set(
      id,
      received.records.map((r) => r.requestId),
    );
    return { status: 200, body: { accepted: received.records.length, duplicate: false } };
  }
}

export function error(code: string, message: string) {
  return { error: { code, message, requestId: "req_test" } };
}

export async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "fleetgate-spool-"));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** A clock whose `now` the test moves; sleeps are real (short) timers. */
export class SteppedClock implements Clock {
  constructor(public t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }
}

export const FAST_UPLOADS: Partial<SpoolSettings> = {
  maxUploadsPerSecond: 1_000,
  backoffBaseMs: 10,
  backoffCapMs: 50,
  nodeUnknownRetryMs: 60_000,
};

export function openSpool(dir: string, options: Partial<DiskSpoolOptions> = {}): Promise<DiskSpool> {
  return DiskSpool.open({ dir, clock: systemClock, random: Math.random, ...options });
}

export async function waitFor(check: () => boolean, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface EventRecorder {
  emit(type: string, fields?: Record<string, unknown>): void;
  events: { type: string; fields: Record<string, unknown> }[];
  of(type: string): Record<string, unknown>[];
}

export function recordEvents(): EventRecorder {
  const events: { type: string; fields: Record<string, unknown> }[] = [];
  return {
    events,
    emit(type, fields = {}) {
      events.push({ type, fields });
    },
    of(type) {
      return events.filter((e) => e.type === type).map((e) => e.fields);
    },
  };
}
