// The spool seals records into gzip NDJSON chunks by count, size and age, with gapless ids
// `<epoch>.<seq>` that survive restarts, and keeps every chunk inside the master's limits.
import { readdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseChunkFileName } from "../../agent/spool/chunk-name";
import { SEGMENT_MAGIC, scanSegment } from "../../agent/spool/frame";
import { readSpoolFigures } from "../../agent/spool/read-figures";
import { FakeClock } from "./fakes/clock";
import { openSpool, record, removeDir, tempDir } from "./fakes/spool";

let dir: string;
beforeEach(async () => {
  dir = await tempDir();
});
afterEach(async () => {
  await removeDir(dir);
});

async function sealedChunks() {
  const names = await readdir(path.join(dir, "sealed"));
  return names
    .map((name) => parseChunkFileName(name, 0)!)
    .filter(Boolean)
    .sort((a, b) => a.seq - b.seq);
}

async function chunkRecords(file: string) {
  const text = gunzipSync(await readFile(path.join(dir, "sealed", file))).toString("utf8");
  return text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { requestId: string });
}

describe("spool sealing", () => {
  it("writes framed records to a segment and fsyncs them on flush, before any seal", async () => {
    const spool = await openSpool(dir);
    for (let i = 0; i < 10; i++) spool.write(record(i));
    expect(await readdir(path.join(dir, "segments"))).toEqual([]);
    await spool.flush();
    const [segment] = await readdir(path.join(dir, "segments"));
    const data = await readFile(path.join(dir, "segments", segment!));
    expect(data.subarray(0, 4).equals(SEGMENT_MAGIC)).toBe(true);
    const scan = scanSegment(data);
    expect(scan.tornBytes).toBe(0);
    expect(scan.payloads.map((p) => JSON.parse(p.toString()).requestId)).toEqual(
      Array.from({ length: 10 }, (_, i) => `req-${i}`),
    );
    expect(await sealedChunks()).toEqual([]);
    await spool.close();
  });

  it("seals by record count, seqs 1, 2, 3 … in one epoch", async () => {
    const spool = await openSpool(dir, { settings: { maxChunkRecords: 100 } });
    for (let i = 0; i < 250; i++) spool.write(record(i));
    await spool.flush();
    const chunks = await sealedChunks();
    expect(chunks.map((c) => [c.seq, c.records])).toEqual([
      [1, 100],
      [2, 100],
    ]);
    expect(new Set(chunks.map((c) => c.epoch))).toEqual(new Set([spool.epoch]));
    expect(spool.figures()).toMatchObject({ pendingChunks: 2, droppedRecords: 0, quarantinedChunks: 0 });
    await spool.close();
    const all = await sealedChunks();
    expect(all.map((c) => [c.seq, c.records])).toEqual([
      [1, 100],
      [2, 100],
      [3, 50],
    ]);
    const ids = [];
    for (const c of all) ids.push(...(await chunkRecords(c.file)).map((r) => r.requestId));
    expect(ids).toEqual(Array.from({ length: 250 }, (_, i) => `req-${i}`));
  });

  it("seals by inflated size, never past the configured bytes", async () => {
    const spool = await openSpool(dir, { settings: { maxChunkBytes: 8 * 1024 } });
    const big = "x".repeat(1000);
    for (let i = 0; i < 40; i++) spool.write(record(i, { path: `/${big}` }));
    await spool.close();
    const chunks = await sealedChunks();
    expect(chunks.length).toBeGreaterThanOrEqual(5);
    let total = 0;
    for (const c of chunks) {
      const inflated = gunzipSync(await readFile(path.join(dir, "sealed", c.file)));
      expect(inflated.length).toBeLessThanOrEqual(8 * 1024);
      total += c.records;
    }
    expect(total).toBe(40);
  });

  it("seals by age on the flush after the oldest record turns maxChunkAgeMs old", async () => {
    const clock = new FakeClock("real");
    const spool = await openSpool(dir, { clock, settings: { maxChunkAgeMs: 10_000 } });
    spool.write(record(1));
    await spool.flush();
    clock.t += 9_999;
    await spool.flush();
    expect(await sealedChunks()).toEqual([]);
    clock.t += 1;
    await spool.flush();
    expect((await sealedChunks()).map((c) => c.records)).toEqual([1]);
    expect(await readdir(path.join(dir, "segments"))).toEqual([]);
    await spool.close();
  });

  it("re-splits after gzip so that no chunk is over the compressed limit", async () => {
    // Random text barely compresses: 200 records of ~1.5 KB each make ~300 KB gzip.
    const spool = await openSpool(dir, {
      settings: { maxChunkGzipBytes: 64 * 1024, maxChunkRecords: 5_000 },
    });
    for (let i = 0; i < 200; i++) {
      spool.write(
        record(i, {
          path: `/${Buffer.from(crypto.getRandomValues(new Uint8Array(1100))).toString("base64")}`,
        }),
      );
    }
    await spool.close();
    const chunks = await sealedChunks();
    expect(chunks.length).toBeGreaterThan(3);
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1));
    for (const c of chunks) {
      expect((await readFile(path.join(dir, "sealed", c.file))).length).toBeLessThanOrEqual(64 * 1024);
    }
    expect(chunks.reduce((sum, c) => sum + c.records, 0)).toBe(200);
  });

  it("keeps its epoch and continues the seq across restarts; a recreated spool gets a new epoch", async () => {
    const first = await openSpool(dir);
    first.write(record(1));
    await first.close();
    const epoch = first.epoch;
    const second = await openSpool(dir);
    expect(second.epoch).toBe(epoch);
    second.write(record(2));
    await second.close();
    expect((await sealedChunks()).map((c) => `${c.epoch}.${c.seq}`)).toEqual([`${epoch}.1`, `${epoch}.2`]);
    expect(epoch).toMatch(/^[0-9A-Za-z_-]{1,40}$/);

    await rm(dir, { recursive: true });
    const third = await openSpool(dir);
    expect(third.epoch).not.toBe(epoch);
    third.write(record(3));
    await third.close();
    expect((await sealedChunks()).map((c) => `${c.epoch}.${c.seq}`)).toEqual([`${third.epoch}.1`]);
  });

  it("reports the same figures from disk as the running spool", async () => {
    const spool = await openSpool(dir, { settings: { maxChunkRecords: 10 } });
    for (let i = 0; i < 25; i++) spool.write(record(i));
    await spool.flush();
    const live = spool.figures();
    expect(await readSpoolFigures(dir)).toEqual(live);
    expect(live).toMatchObject({
      pendingChunks: 2,
      oldestPendingAt: new Date(1_700_000_000_000).toISOString(),
      droppedRecords: 0,
      quarantinedChunks: 0,
    });
    await spool.close();
  });

  it("counts writes after close as dropped instead of losing them silently", async () => {
    const spool = await openSpool(dir);
    await spool.close();
    spool.write(record(1));
    expect(spool.figures().droppedRecords).toBe(1);
  });
});
