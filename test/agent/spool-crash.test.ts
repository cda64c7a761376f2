// Crash safety: a torn tail is cut, a restart neither loses nor repeats a synced record (also
// across a real kill -9), a crash inside a seal or a split is finished or undone, the quota drops
// the oldest chunks and counts every record it drops.
import { spawn } from "node:child_process";
import { appendFile, readdir, readFile, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../agent/clock";
import { chunkFileName } from "../../agent/spool/chunk-name";
import type { DiskSpool } from "../../agent/spool/disk-spool";
import { readMeta } from "../../agent/spool/meta";
import { readSpoolFigures } from "../../agent/spool/read-figures";
import { gzipLines } from "../../agent/spool/seal";
import { recordEvents } from "./fakes/events";
import type { FakeMaster } from "./fakes/master";
import { openSpool, record, spoolBench, uploaderFor, waitFor } from "./fakes/spool";

let dir: string;
let master: FakeMaster;
spoolBench((d, m) => {
  dir = d;
  master = m;
});

/** Uploads everything the spool holds to the fake master, then stops the uploader. */
async function deliver(spool: DiskSpool): Promise<void> {
  const halt = new AbortController();
  const uploader = uploaderFor(spool, master, { clock: systemClock, random: Math.random });
  const running = uploader.run(halt.signal);
  await waitFor(() => spool.pendingCount() === 0, 10_000, "delivery");
  halt.abort();
  await running;
}

const ids = (from: number, to: number, prefix = "req") =>
  Array.from({ length: to - from }, (_, i) => `${prefix}-${from + i}`);
// Two uploads may be in flight at once, so the master may store neighbouring chunks in either order.
const inOrder = (requestIds: string[]) =>
  [...requestIds].sort((a, b) => Number(a.split("-").at(-1)) - Number(b.split("-").at(-1)));

async function segmentFiles() {
  return (await readdir(path.join(dir, "segments"))).map((name) => path.join(dir, "segments", name));
}

describe("spool crash safety", () => {
  it("restart after a crash resumes with no record lost or repeated", async () => {
    const first = await openSpool(dir, { settings: { maxChunkRecords: 40 } });
    for (let i = 0; i < 100; i++) first.write(record(i));
    await first.flush(); // 2 chunks sealed, 20 records synced in the active segment
    for (let i = 100; i < 130; i++) first.write(record(i));
    await first.flush();
    await first.kill(); // no close: the active segment is left as a crash leaves it

    const second = await openSpool(dir, { settings: { maxChunkRecords: 40 } });
    for (let i = 130; i < 150; i++) second.write(record(i));
    await second.sealNow();
    await deliver(second);
    await second.close();
    const delivered = master.storedRequestIds();
    expect(delivered).toHaveLength(150);
    expect(new Set(delivered)).toEqual(new Set(ids(0, 150)));
    const seqs = [...master.stored.keys()].map((id) => Number(id.split(".")[1])).sort((a, b) => a - b);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
  });

  it("loses only what was never synced: records still in memory at the crash", async () => {
    const first = await openSpool(dir);
    for (let i = 0; i < 10; i++) first.write(record(i));
    await first.flush();
    for (let i = 10; i < 15; i++) first.write(record(i));
    await first.kill();
    const second = await openSpool(dir);
    await deliver(second);
    expect(master.storedRequestIds()).toEqual(ids(0, 10));
    await second.close();
  });

  it("cuts a torn tail (a half-written frame) and keeps every record before it", async () => {
    const events = recordEvents();
    const first = await openSpool(dir);
    for (let i = 0; i < 20; i++) first.write(record(i));
    await first.flush();
    await first.kill();
    const [segment] = await segmentFiles();
    const size = (await readFile(segment!)).length;
    await truncate(segment!, size - 7); // the last frame is cut in the middle

    const second = await openSpool(dir, { events });
    expect(events.of("spool.torn_tail")[0]).toMatchObject({ keptRecords: 19 });
    await deliver(second);
    expect(inOrder(master.storedRequestIds())).toEqual(ids(0, 19));
    await second.close();
  });

  it("detects a corrupted last record by its checksum, and garbage appended after the last frame", async () => {
    const first = await openSpool(dir);
    for (let i = 0; i < 20; i++) first.write(record(i));
    await first.flush();
    await first.kill();
    const [segment] = await segmentFiles();
    const data = await readFile(segment!);
    data[data.length - 3] = data[data.length - 3]! ^ 0xff; // flip bits inside the last record's JSON
    await writeFile(segment!, data);
    await appendFile(segment!, Buffer.from([0x10, 0, 0, 0, 1, 2]));

    const events = recordEvents();
    const second = await openSpool(dir, { events });
    expect(events.of("spool.torn_tail")[0]).toMatchObject({ keptRecords: 19 });
    await deliver(second);
    expect(inOrder(master.storedRequestIds())).toEqual(ids(0, 19));
    await second.close();
  });

  it("never appends after a half-written frame: a failed write is cut back before the retry", async () => {
    const first = await openSpool(dir);
    for (let i = 0; i < 5; i++) first.write(record(i));
    await first.flush();
    const [segment] = await segmentFiles();
    // What a write torn by ENOSPC leaves: a partial frame at the end of the file.
    await appendFile(segment!, Buffer.from([0x40, 0, 0, 0, 9, 9]));
    (first as unknown as { segments: { dirty: boolean; handle: unknown }[] }).segments[0]!.dirty = true;
    const handle = (first as unknown as { segments: { handle: { close(): Promise<void> } | null }[] })
      .segments[0]!;
    await handle.handle?.close();
    handle.handle = null;
    for (let i = 5; i < 10; i++) first.write(record(i));
    await first.close();
    await deliver(first);
    expect(master.storedRequestIds()).toEqual(ids(0, 10));
  });

  it("undoes a seal whose meta.json commit never happened, and finishes one whose segment delete was lost", async () => {
    const first = await openSpool(dir, { settings: { maxChunkRecords: 10 } });
    for (let i = 0; i < 10; i++) first.write(record(i));
    await first.flush(); // sealed as seq 1
    for (let i = 10; i < 15; i++) first.write(record(i));
    await first.flush();
    await first.kill();
    const meta = await readMeta((await import("node:fs/promises")).default, dir);
    if (meta === null || meta === "corrupt") throw new Error("no meta");
    // A chunk file for seq 2 written just before the crash, never committed: must not be uploaded.
    const orphan = chunkFileName({ epoch: meta.epoch, seq: 2, records: 1, oldestMs: 1 });
    await writeFile(
      path.join(dir, "sealed", orphan),
      await gzipLines([Buffer.from(JSON.stringify(record(999)))]),
    );
    // And the segment of the already committed seq 1 reappears, as if its unlink was lost.
    const sealedSegmentFile = path.join(
      dir,
      "segments",
      `${String(meta.sealedSegment).padStart(12, "0")}.seg`,
    );
    const [active] = await segmentFiles();
    await writeFile(sealedSegmentFile, await readFile(active!));

    const second = await openSpool(dir, { settings: { maxChunkRecords: 10 } });
    await second.sealNow();
    await deliver(second);
    expect(master.storedRequestIds().sort()).toEqual(ids(0, 15).sort());
    expect([...master.stored.keys()].sort()).toEqual([`${meta.epoch}.1`, `${meta.epoch}.2`]);
    await second.close();
  });

  it("finishes a 413 split interrupted after its commit", async () => {
    const first = await openSpool(dir);
    for (let i = 0; i < 10; i++) first.write(record(i));
    await first.sealNow();
    const chunk = first.takeNext()!;
    first.release(chunk);
    await first.kill();
    // Journal exactly what splitNow commits before writing the first half.
    const fs = (await import("node:fs/promises")).default;
    const meta = await readMeta(fs, dir);
    if (meta === null || meta === "corrupt") throw new Error("no meta");
    const second = { epoch: meta.epoch, seq: 2, records: 5, oldestMs: chunk.oldestMs };
    const lines = Array.from({ length: 5 }, (_, i) => Buffer.from(JSON.stringify(record(5 + i))));
    await writeFile(path.join(dir, "sealed", chunkFileName(second)), await gzipLines(lines));
    const firstHalf = chunkFileName({ ...chunk, records: 5 });
    await writeFile(
      path.join(dir, "meta.json"),
      JSON.stringify({ ...meta, nextSeq: 3, split: { original: chunk.file, firstHalf } }),
    );

    const reopened = await openSpool(dir);
    expect((await readdir(path.join(dir, "sealed"))).sort()).toEqual(
      [chunkFileName(second), firstHalf].sort(),
    );
    await deliver(reopened);
    expect(master.storedRequestIds().sort()).toEqual(ids(0, 10).sort());
    expect([...master.stored.keys()].sort()).toEqual([`${meta.epoch}.1`, `${meta.epoch}.2`]);
    await reopened.close();
  });

  it("at the quota drops the oldest chunks, counts every dropped record and keeps the count across restarts", async () => {
    const events = recordEvents();
    const spool = await openSpool(dir, {
      events,
      settings: { maxChunkRecords: 20, quotaBytes: 4_000 },
    });
    for (let i = 0; i < 400; i++) spool.write(record(i));
    await spool.sealNow();
    const figures = spool.figures();
    expect(figures.pendingBytes).toBeLessThanOrEqual(4_000);
    expect(figures.droppedRecords).toBeGreaterThan(0);
    expect(figures.droppedRecords % 20).toBe(0);
    const dropped = events.of("spool.dropped").reduce((sum, e) => sum + Number(e.records), 0);
    expect(dropped).toBe(figures.droppedRecords);
    await deliver(spool);
    await spool.close();
    // What was kept is the newest records, and kept + dropped is everything written.
    const kept = inOrder(master.storedRequestIds());
    expect(kept.length + figures.droppedRecords).toBe(400);
    expect(kept).toEqual(ids(400 - kept.length, 400));
    expect((await readSpoolFigures(dir)).droppedRecords).toBe(figures.droppedRecords);
    const reopened = await openSpool(dir);
    expect(reopened.figures().droppedRecords).toBe(figures.droppedRecords);
    await reopened.close();
  });

  it("drops the oldest unsynced records (counted) when the disk cannot keep up, never blocking write()", async () => {
    const spool = await openSpool(dir, { settings: { maxBufferedBytes: 10_000 } });
    const started = performance.now();
    for (let i = 0; i < 1_000; i++) spool.write(record(i));
    expect(performance.now() - started).toBeLessThan(500);
    const dropped = spool.figures().droppedRecords;
    expect(dropped).toBeGreaterThan(900);
    await spool.sealNow();
    await deliver(spool);
    expect(inOrder(master.storedRequestIds())).toEqual(ids(dropped, 1_000));
    expect((await readSpoolFigures(dir)).droppedRecords).toBe(dropped);
    await spool.close();
  });

  it("survives real kill -9 at random moments: every synced record arrives exactly once", async () => {
    const child = path.resolve("test/agent/spool-crash-child.ts");
    const synced: number[] = [];
    for (let round = 0; round < 4; round++) {
      // `node --import tsx`, not the tsx binary: that one forks a grandchild a SIGKILL would miss.
      const proc = spawn(process.execPath, ["--import", "tsx", child, dir, `r${round}`], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let last = 0;
      let stderr = "";
      proc.stderr.on("data", (d: Buffer) => {
        stderr += d;
      });
      const exited = new Promise((resolve) => proc.once("exit", resolve));
      proc.stdout.on("data", (d: Buffer) => {
        const lines = d.toString().trim().split("\n");
        last = Number(lines.at(-1));
      });
      try {
        await waitFor(() => last > 200 + round * 150, 20_000, `child round ${round} writing (${stderr})`);
        await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 250)));
      } finally {
        proc.kill("SIGKILL");
        await exited;
      }
      synced.push(last);
    }
    const spool = await openSpool(dir);
    await deliver(spool);
    await spool.close();
    const delivered = master.storedRequestIds();
    expect(new Set(delivered).size).toBe(delivered.length);
    for (const [round, count] of synced.entries()) {
      const mine = delivered
        .filter((id) => id.startsWith(`r${round}-`))
        .map((id) => Number(id.slice(id.indexOf("-") + 1)))
        .sort((a, b) => a - b);
      // A prefix of what was written, at least everything reported as synced.
      expect(mine.length).toBeGreaterThanOrEqual(count);
      expect(mine).toEqual(mine.map((_, i) => i));
    }
  }, 60_000);
});
