// The spool shares the proxy's event loop: a seal packs what it already holds in memory (no re-read,
// no per-record checks) and gzips on the thread pool, so timers keep firing while it runs. Memory it
// can no longer vouch for (shed records, a failed seal) falls back to reading the segment file.
import * as nodeFs from "node:fs/promises";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { gunzipSync, gzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SpoolFs } from "../../agent/spool/spool-fs";
import { openSpool, record, removeDir, tempDir } from "./fakes/spool";

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

/** fs/promises that counts the segment files read back. */
function countingFs(): { fs: SpoolFs; segmentReads: () => number } {
  let reads = 0;
  const fs: SpoolFs = {
    ...nodeFs,
    readFile: ((file: Parameters<typeof nodeFs.readFile>[0], ...rest: never[]) => {
      if (String(file).includes(`${path.sep}segments${path.sep}`)) reads++;
      return nodeFs.readFile(file, ...rest);
    }) as typeof nodeFs.readFile,
  };
  return { fs, segmentReads: () => reads };
}

async function sealedRequestIds(): Promise<string[]> {
  const names = (await readdir(path.join(dir, "sealed"))).sort(
    (a, b) => Number(a.split(".")[1]) - Number(b.split(".")[1]),
  );
  const ids: string[] = [];
  for (const name of names) {
    const text = gunzipSync(await readFile(path.join(dir, "sealed", name))).toString("utf8");
    expect(text.endsWith("\n")).toBe(true);
    for (const line of text.split("\n").filter(Boolean)) ids.push(JSON.parse(line).requestId);
  }
  return ids;
}

// Varied records (pseudo-random hex in the path, ~1.6 MB of NDJSON per 5,000), so gzip has real
// work to do and the chunk still fits the 1 MiB gzip limit.
const bigRecord = (i: number) => {
  let x = (i + 1) * 2654435761;
  const words: string[] = [];
  for (let w = 0; w < 16; w++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    words.push(x.toString(16));
  }
  return record(i, { path: `/assets/${words.join("/")}` });
};

describe("spool on the proxy's event loop", () => {
  it("seals a segment from memory, without reading it back, byte for byte what was written", async () => {
    const { fs, segmentReads } = countingFs();
    const spool = await openSpool(dir, { fs, settings: { maxChunkRecords: 1_000 } });
    for (let i = 0; i < 2_500; i++) spool.write(record(i, { host: `hôst-${i}.example` }));
    await spool.flush();
    await spool.close();
    expect(segmentReads()).toBe(0);
    expect(await sealedRequestIds()).toEqual(Array.from({ length: 2_500 }, (_, i) => `req-${i}`));
  });

  it("falls back to the segment file when records were shed, and seals exactly what was kept", async () => {
    const { fs, segmentReads } = countingFs();
    const spool = await openSpool(dir, { fs, settings: { maxBufferedBytes: 20_000 } });
    for (let i = 0; i < 500; i++) spool.write(record(i));
    const dropped = spool.figures().droppedRecords;
    expect(dropped).toBeGreaterThan(0);
    await spool.close();
    expect(segmentReads()).toBeGreaterThan(0);
    const ids = await sealedRequestIds();
    expect(ids.length + dropped).toBe(500);
    // The oldest were shed; what is left is the newest records, in order.
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => `req-${500 - ids.length + i}`));
  });

  it("keeps timers firing while it seals a 5,000-record chunk", async () => {
    const spool = await openSpool(dir, { settings: { maxChunkRecords: 5_000 } });
    for (let i = 0; i < 5_000; i++) spool.write(bigRecord(i));
    await spool.flush();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const before = performance.eventLoopUtilization();
    await spool.sealNow();
    const loop = performance.eventLoopUtilization(before);
    clearInterval(timer);
    await spool.close();
    // What sealing on the event loop would cost: one synchronous gzip of the same chunk body
    // (measured after the seal, so its garbage is not collected inside the measured window).
    const body = Buffer.from(
      Array.from({ length: 5_000 }, (_, i) => `${JSON.stringify(bigRecord(i))}\n`).join(""),
    );
    const syncStarted = performance.now();
    gzipSync(body, { level: 6 });
    const syncGzipMs = performance.now() - syncStarted;

    expect(await sealedRequestIds()).toHaveLength(5_000);
    // Other callbacks ran while the seal was in progress: it yields.
    expect(ticks).toBeGreaterThanOrEqual(2);
    // The event loop was busy for well under what compressing the chunk on it takes (busy time,
    // not wall time, so a loaded machine slows both sides alike): the gzip ran on the thread pool.
    expect(loop.active).toBeLessThan(syncGzipMs / 2);
  });
});
