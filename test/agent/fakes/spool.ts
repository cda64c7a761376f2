// Spool fixtures: records, temp dirs, a disk spool on the real clock, and an uploader that sends
// to the fake master over loopback HTTP.
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach } from "vitest";
import { systemClock } from "../../../agent/clock";
import { MasterClient } from "../../../agent/master/client";
import type { Clock, EventLogger } from "../../../agent/ports";
import { DiskSpool, type DiskSpoolOptions } from "../../../agent/spool/disk-spool";
import type { SpoolSettings } from "../../../agent/spool/settings";
import { ChunkUploader } from "../../../agent/spool/uploader";
import type { LogRecord } from "../../../protocol/wire";
import { FakeMaster } from "./master";

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

export async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), "fleetgate-spool-"));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
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

/** An uploader from `spool` to the listening fake master (token fgn_token, agent 1.2.3), FAST_UPLOADS under `settings`. */
export function uploaderFor(
  spool: DiskSpool,
  master: FakeMaster,
  options: {
    clock?: Clock;
    random?: () => number;
    events?: EventLogger;
    settings?: Partial<SpoolSettings>;
  } = {},
): ChunkUploader {
  const clock = options.clock ?? systemClock;
  return new ChunkUploader({
    store: spool,
    master: new MasterClient({
      fetch: globalThis.fetch,
      masterUrl: master.url,
      nodeToken: "fgn_token",
      agentVersion: "1.2.3",
      now: () => clock.now(),
    }),
    clock,
    random: options.random ?? (() => 0.5),
    events: options.events,
    settings: { ...FAST_UPLOADS, ...options.settings },
  });
}

export async function waitFor(check: () => boolean, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Per test: a fresh spool dir and a listening fake master (handed to `use`), and uploaders started
 * with `run` that are stopped, with the master and the dir, after the test.
 */
export function spoolBench(use: (dir: string, master: FakeMaster) => void) {
  let halt = new AbortController();
  let running: Promise<void>[] = [];
  let master: FakeMaster | null = null;
  let dir = "";
  beforeEach(async () => {
    dir = await tempDir();
    master = await new FakeMaster().listen();
    halt = new AbortController();
    running = [];
    use(dir, master);
  });
  afterEach(async () => {
    halt.abort();
    await Promise.all(running);
    await master?.close();
    await removeDir(dir);
  });
  return {
    run(uploader: ChunkUploader): ChunkUploader {
      running.push(uploader.run(halt.signal));
      return uploader;
    },
  };
}
