// Spool edge cases on real files: a quota drop racing the uploader, a segment whose unlink fails
// after its seal, an unreadable chunk in front of good ones, and a wall clock stepping back an hour.
import * as nodeFs from "node:fs/promises";
import { mkdir, readdir, rm } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../agent/clock";
import type { Clock } from "../../agent/ports";
import type { DiskSpool } from "../../agent/spool/disk-spool";
import type { SpoolSettings } from "../../agent/spool/settings";
import type { SpoolFs } from "../../agent/spool/spool-fs";
import { recordEvents } from "./fakes/events";
import { errorBody, type FakeMaster } from "./fakes/master";
import { FAST_UPLOADS, openSpool, record, spoolBench, uploaderFor, waitFor } from "./fakes/spool";

let dir: string;
let master: FakeMaster;
const uploads = spoolBench((d, m) => {
  dir = d;
  master = m;
});

function startUploader(spool: DiskSpool, clock: Clock = systemClock, settings: Partial<SpoolSettings> = {}) {
  const uploader = uploaderFor(spool, master, { clock, random: () => 0.5, settings });
  return uploads.run(uploader);
}

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** The real file system, with a pause in the meta.json write that journals a quota drop. */
function pausingDropFs() {
  const hit = deferred();
  const release = deferred();
  let armed = true;
  const fs: SpoolFs = {
    ...nodeFs,
    open: (async (file: string, flags?: string, mode?: number) => {
      const handle = await nodeFs.open(file, flags, mode);
      if (!String(file).endsWith(".tmp-meta.json")) return handle;
      const writeFile = handle.writeFile.bind(handle);
      handle.writeFile = (async (data: string) => {
        if (armed && String(data).includes('"dropping":["')) {
          armed = false;
          hit.resolve();
          await release.promise;
        }
        return writeFile(data);
      }) as typeof handle.writeFile;
      return handle;
    }) as SpoolFs["open"],
  };
  return { fs, hit: hit.promise, release: release.resolve };
}

describe("spool edge cases", () => {
  it("a chunk the quota drops while the uploader looks for work is counted once: dropped, never also delivered", async () => {
    const gate = pausingDropFs();
    const events = recordEvents();
    // A 1-byte quota: every sealed chunk is over it and dropped at the next flush.
    const spool = await openSpool(dir, {
      fs: gate.fs,
      events,
      settings: { ...FAST_UPLOADS, maxChunkRecords: 10, quotaBytes: 1 },
    });
    for (let i = 0; i < 40; i++) spool.write(record(i));
    const sealing = spool.sealNow();
    await gate.hit;
    // The drop is journaled but not yet deleted: an uploader starting now must find nothing to take.
    startUploader(spool);
    await new Promise((resolve) => setTimeout(resolve, 300));
    gate.release();
    await sealing;
    await new Promise((resolve) => setTimeout(resolve, 200));

    const dropped = events.of("spool.dropped").flatMap((e) => e.chunks as string[]);
    const delivered = [...master.stored.keys()];
    expect(delivered.filter((id) => dropped.includes(id))).toEqual([]);
    expect(master.storedRequestIds().length + spool.figures().droppedRecords).toBe(40);
    expect(spool.figures().droppedRecords).toBe(40);
    expect(await readdir(path.join(dir, "sealed"))).toEqual([]);
  });

  it("a segment whose unlink failed after its seal is never sealed again, now or after a restart", async () => {
    let failUnlinks = true;
    const events = recordEvents();
    const fs: SpoolFs = {
      ...nodeFs,
      unlink: async (file) => {
        if (failUnlinks && String(file).includes(`${path.sep}segments${path.sep}`)) {
          throw Object.assign(new Error(`EACCES: permission denied, unlink '${file}'`), { code: "EACCES" });
        }
        return nodeFs.unlink(file);
      },
    };
    const spool = await openSpool(dir, { fs, events, settings: { maxChunkRecords: 100 } });
    for (let i = 0; i < 10; i++) spool.write(record(i));
    await spool.sealNow();
    await spool.flush();
    await spool.sealNow();
    expect(events.of("spool.segment_unlink_failed")).toHaveLength(1);
    expect(spool.figures().pendingChunks).toBe(1);
    expect(await readdir(path.join(dir, "sealed"))).toHaveLength(1);
    expect((await readdir(path.join(dir, "segments"))).length).toBeGreaterThan(0);
    await spool.kill();

    // Restarted while the unlink still fails: the committed segment is skipped, not sealed twice.
    const again = await openSpool(dir, { fs, events });
    expect(again.figures().pendingChunks).toBe(1);
    failUnlinks = false;
    await again.flush();
    await again.close();
    const reopened = await openSpool(dir);
    expect(reopened.figures().pendingChunks).toBe(1);
    startUploader(reopened);
    await waitFor(() => reopened.pendingCount() === 0, 5_000, "upload");
    expect(master.storedRequestIds()).toHaveLength(10);
    await reopened.close();
  });

  it("one unreadable chunk is set aside; the chunks behind it are still delivered", async () => {
    const spool = await openSpool(dir, { settings: { ...FAST_UPLOADS, maxChunkRecords: 10 } });
    for (let i = 0; i < 30; i++) spool.write(record(i));
    await spool.sealNow();
    const files = (await readdir(path.join(dir, "sealed"))).sort();
    expect(files).toHaveLength(3);
    // A real read failure on a real file system (EISDIR), even for root: the first chunk becomes a directory.
    const first = path.join(dir, "sealed", files[0]!);
    await rm(first);
    await mkdir(first);
    startUploader(spool);
    await waitFor(() => master.stored.size === 2, 5_000, "the two readable chunks");
    expect(master.storedRequestIds()).toHaveLength(20);
    await waitFor(() => spool.pendingCount() === 0, 5_000, "nothing pending");
    expect(spool.figures().quarantinedChunks).toBe(1);
    expect(await readdir(path.join(dir, "quarantine"))).toEqual([files[0]]);
    await spool.close();
  });

  it("a wall clock stepping back an hour neither pauses uploads after a failure nor stops age seals", async () => {
    let offset = 0;
    const clock: Clock = {
      now: () => Date.now() + offset,
      monotonic: () => performance.now(),
      sleep: (ms, signal) => systemClock.sleep(ms, signal),
    };
    const spool = await openSpool(dir, {
      clock,
      settings: { ...FAST_UPLOADS, maxChunkRecords: 10, maxChunkAgeMs: 300 },
    });
    for (let i = 0; i < 20; i++) spool.write(record(i));
    await spool.sealNow();
    master.script.push({ status: 500, body: errorBody("INTERNAL", "boom") });
    startUploader(spool, clock, { backoffBaseMs: 200, backoffCapMs: 200 });
    await waitFor(
      () => master.received.length >= 1,
      5_000,
      `the failing attempt (pending ${spool.pendingCount()})`,
    );
    offset = -3_600_000;
    await waitFor(() => spool.pendingCount() === 0, 5_000, "uploads after the step back");
    expect(master.storedRequestIds()).toHaveLength(20);

    // Age seal: a record written just before the step is sealed maxChunkAgeMs later, not an hour later.
    offset = 0;
    spool.write(record(99));
    offset = -3_600_000;
    await new Promise((resolve) => setTimeout(resolve, 400));
    await spool.flush();
    await waitFor(() => master.storedRequestIds().includes("req-99"), 5_000, "the age-sealed record");
    await spool.close();
  });
});
