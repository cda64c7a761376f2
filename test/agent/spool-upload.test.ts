// The uploader against a real local HTTP master: ack deletes, duplicate is an ack, 413 splits
// without a seq gap, 422 quarantines, 429 Retry-After and 5xx back off, 401 stops, rate is bounded.
import { readdir } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { systemClock } from "../../agent/clock";
import type { DiskSpool } from "../../agent/spool/disk-spool";
import { readSpoolFigures } from "../../agent/spool/read-figures";
import type { SpoolSettings } from "../../agent/spool/settings";
import { chunkLag, foldChunk, tallyJson } from "../../protocol/chunk-tally";
import { recordEvents } from "./fakes/events";
import { errorBody, type FakeMaster, type Received } from "./fakes/master";
import {
  FAST_UPLOADS,
  openSpool,
  record,
  removeDir,
  spoolBench,
  tempDir,
  uploaderFor,
  waitFor,
} from "./fakes/spool";

let dir: string;
let master: FakeMaster;
const uploads = spoolBench((d, m) => {
  dir = d;
  master = m;
});

function startUploader(spool: DiskSpool, settings: Partial<SpoolSettings> = {}, events = recordEvents()) {
  const uploader = uploaderFor(spool, master, { clock: systemClock, random: () => 0.5, events, settings });
  return uploads.run(uploader);
}

async function spoolWith(count: number, settings: Partial<SpoolSettings> = {}, events = recordEvents()) {
  const spool = await openSpool(dir, { settings: { ...FAST_UPLOADS, ...settings }, events });
  for (let i = 0; i < count; i++) spool.write(record(i));
  await spool.sealNow();
  return spool;
}

const sealedFiles = () => readdir(path.join(dir, "sealed"));

describe("spool upload", () => {
  it("posts gzip NDJSON with the protocol headers and deletes the chunk once acked", async () => {
    const spool = await spoolWith(30, { maxChunkRecords: 10 });
    expect(await sealedFiles()).toHaveLength(3);
    startUploader(spool);
    await waitFor(() => spool.pendingCount() === 0, 5_000, "all chunks acked");
    expect(await sealedFiles()).toEqual([]);
    expect(master.received.map((r) => r.id)).toEqual([1, 2, 3].map((seq) => `${spool.epoch}.${seq}`));
    const headers = master.received[0]!.headers;
    expect(headers).toMatchObject({
      authorization: "Bearer fgn_token",
      "content-type": "application/x-ndjson",
      "content-encoding": "gzip",
      "user-agent": "fleetgate-agent/1.2.3",
    });
    expect(master.storedRequestIds()).toEqual(Array.from({ length: 30 }, (_, i) => `req-${i}`));
    expect(spool.figures()).toMatchObject({ pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null });
  });

  it("treats a duplicate answer as an ack", async () => {
    const spool = await spoolWith(5);
    master.script.push({ status: 200, body: { accepted: 0, duplicate: true } });
    const events = recordEvents();
    startUploader(spool, {}, events);
    await waitFor(() => spool.pendingCount() === 0, 5_000, "duplicate acked");
    expect(master.received).toHaveLength(1);
    expect(await sealedFiles()).toEqual([]);
    expect(events.of("spool.uploaded")[0]).toMatchObject({ duplicate: true });
  });

  it("splits a chunk refused with 413: the first half keeps its id, the second takes the next seq", async () => {
    const spool = await spoolWith(100, { maxChunkRecords: 100 });
    spool.write(record(100));
    await spool.sealNow(); // seq 2, sealed before the split happens
    master.maxRecords = 30;
    startUploader(spool, { uploadConcurrency: 1 });
    await waitFor(() => spool.pendingCount() === 0, 10_000, "split chunks delivered");
    const epoch = spool.epoch;
    const storedIds = [...master.stored.keys()];
    // 100 → 50 (seq 1) + 50 (seq 3) → 25 + 25 (seq 4) and 25 + 25 (seq 5 …): no seq skipped, none reused.
    const seqs = storedIds.map((id) => Number(id.split(".")[1])).sort((a, b) => a - b);
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(storedIds.every((id) => id.startsWith(`${epoch}.`))).toBe(true);
    const delivered = master.storedRequestIds().sort();
    expect(delivered).toEqual(Array.from({ length: 101 }, (_, i) => `req-${i}`).sort());
    expect(new Set(delivered).size).toBe(101);
    // The refused attempts were all 413s on ids the master never stored.
    const refused = master.received.filter((r: Received) => r.records.length > 30);
    expect(refused.every((r) => !master.stored.has(r.id) || master.stored.get(r.id)!.length <= 30)).toBe(
      true,
    );
  });

  it("quarantines a chunk refused with 422, never retries it, and shows it in the figures", async () => {
    const events = recordEvents();
    const spool = await spoolWith(20, { maxChunkRecords: 10 }, events);
    master.script.push({ status: 422, body: errorBody("CHUNK_INVALID", "line 3: status must be a number") });
    startUploader(spool, { uploadConcurrency: 1 }, events);
    await waitFor(() => spool.pendingCount() === 0, 5_000, "both chunks settled");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(master.received.map((r) => r.id)).toEqual([`${spool.epoch}.1`, `${spool.epoch}.2`]);
    expect(await readdir(path.join(dir, "quarantine"))).toHaveLength(1);
    expect(spool.figures()).toMatchObject({ pendingChunks: 0, quarantinedChunks: 1 });
    expect(await readSpoolFigures(dir)).toMatchObject({ pendingChunks: 0, quarantinedChunks: 1 });
    expect(events.of("spool.quarantined")[0]).toMatchObject({ chunk: `${spool.epoch}.1`, records: 10 });
    expect(String(events.of("spool.quarantined")[0]!.reason)).toContain("CHUNK_INVALID");
    // A restart does not bring it back into the queue.
    await spool.close();
    const reopened = await openSpool(dir);
    expect(reopened.figures()).toMatchObject({ pendingChunks: 0, quarantinedChunks: 1 });
    await reopened.close();
  });

  it("honours Retry-After on 429 before trying again", async () => {
    const spool = await spoolWith(5);
    master.script.push({
      status: 429,
      body: errorBody("RATE_LIMITED", "slow down"),
      headers: { "retry-after": "1" },
    });
    startUploader(spool);
    await waitFor(() => spool.pendingCount() === 0, 5_000, "upload after Retry-After");
    expect(master.received).toHaveLength(2);
    const gap = master.received[1]!.at - master.received[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(950);
  });

  it("backs off on 5xx and network errors and resumes when the master is back", async () => {
    const spool = await spoolWith(5);
    for (let i = 0; i < 3; i++) master.script.push({ status: 500, body: errorBody("INTERNAL", "boom") });
    const events = recordEvents();
    startUploader(spool, {}, events);
    await waitFor(() => spool.pendingCount() === 0, 5_000, "upload after backoff");
    expect(master.received).toHaveLength(4);
    expect(events.of("spool.upload_backoff").map((e) => e.attempt)).toEqual([1, 2, 3]);
    expect(events.of("spool.upload_resumed")).toHaveLength(1);
    expect(master.stored.size).toBe(1);
  });

  it("keeps everything and stops trying for a long while on 401 NODE_UNKNOWN", async () => {
    const spool = await spoolWith(20, { maxChunkRecords: 10 });
    master.script.push({ status: 401, body: errorBody("NODE_UNKNOWN", "revoked") });
    const events = recordEvents();
    startUploader(spool, { uploadConcurrency: 1 }, events);
    await waitFor(() => events.of("spool.upload_backoff").length > 0, 5_000, "401 seen");
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(master.received).toHaveLength(1);
    expect(spool.pendingCount()).toBe(2);
    expect(await sealedFiles()).toHaveLength(2);
    expect(events.of("spool.upload_backoff")[0]).toMatchObject({ reason: "NODE_UNKNOWN" });
    expect(Number(events.of("spool.upload_backoff")[0]!.delayMs)).toBeGreaterThanOrEqual(45_000);
  });

  it("drains a backlog at the configured rate with bounded concurrency", async () => {
    const spool = await spoolWith(12, { maxChunkRecords: 1 });
    master.delayMs = 150;
    startUploader(spool, { maxUploadsPerSecond: 20, uploadConcurrency: 2 });
    await waitFor(() => spool.pendingCount() === 0, 5_000, "backlog drained");
    const span = master.received.at(-1)!.at - master.received[0]!.at;
    // 12 starts at 20/s: at least 11 intervals of 50 ms.
    expect(span).toBeGreaterThanOrEqual(500);
    expect(master.peakActive).toBeLessThanOrEqual(2);
    expect(master.stored.size).toBe(12);
  });

  it("keeps a chunk refused with 403 IP_NOT_ALLOWED (nothing wrong with it) and waits minutes", async () => {
    const spool = await spoolWith(10);
    master.script.push({ status: 403, body: errorBody("IP_NOT_ALLOWED", "address not on the allow list") });
    const events = recordEvents();
    startUploader(spool, {}, events);
    await waitFor(() => events.of("spool.upload_backoff").length > 0, 5_000, "403 seen");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(master.received).toHaveLength(1);
    expect(spool.figures()).toMatchObject({ pendingChunks: 1, quarantinedChunks: 0 });
    expect(events.of("spool.quarantined")).toEqual([]);
    expect(events.of("spool.upload_backoff")[0]).toMatchObject({ reason: "IP_NOT_ALLOWED" });
    expect(Number(events.of("spool.upload_backoff")[0]!.delayMs)).toBeGreaterThanOrEqual(45_000);
  });

  it("retries 408 and 425 (not now) and quarantines other 4xx such as 400 and 404 (never)", async () => {
    const events = recordEvents();
    const spool = await spoolWith(30, { maxChunkRecords: 10 }, events);
    master.script.push(
      { status: 408, body: errorBody("TIMEOUT", "request timeout") },
      { status: 425, body: errorBody("TOO_EARLY", "too early") },
      { status: 400, body: errorBody("BAD_REQUEST", "bad chunk id") },
      { status: 404, body: errorBody("NOT_FOUND", "no such route") },
    );
    startUploader(spool, { uploadConcurrency: 1 }, events);
    await waitFor(() => spool.pendingCount() === 0, 5_000, "all settled");
    const epoch = spool.epoch;
    // seq 1 is retried twice and then quarantined by the 400; seq 2 by the 404; seq 3 goes through.
    expect(master.received.map((r) => r.id)).toEqual([1, 1, 1, 2, 3].map((seq) => `${epoch}.${seq}`));
    expect(events.of("spool.upload_backoff").map((e) => e.status)).toEqual([408, 425]);
    expect(events.of("spool.quarantined").map((e) => e.chunk)).toEqual([`${epoch}.1`, `${epoch}.2`]);
    expect([...master.stored.keys()]).toEqual([`${epoch}.3`]);
  });

  it("retries at once when nudged after an outage, still at the drain rate", async () => {
    const spool = await spoolWith(30, { maxChunkRecords: 10 });
    master.script.push({ status: 502, body: errorBody("BAD_GATEWAY", "origin down") });
    const events = recordEvents();
    // 0.5 × 60 s: without the nudge the retry would come half a minute later.
    const uploader = startUploader(
      spool,
      { backoffBaseMs: 60_000, backoffCapMs: 60_000, maxUploadsPerSecond: 5, uploadConcurrency: 1 },
      events,
    );
    await waitFor(() => events.of("spool.upload_backoff").length > 0, 5_000, "502 seen");
    expect(Number(events.of("spool.upload_backoff")[0]!.delayMs)).toBe(30_000);
    const nudgedAt = Date.now();
    uploader.nudge();
    await waitFor(() => spool.pendingCount() === 0, 5_000, "backlog after the nudge");
    expect(Date.now() - nudgedAt).toBeLessThan(3_000);
    expect(events.of("spool.upload_nudged")).toHaveLength(1);
    expect(master.stored.size).toBe(3);
    const starts = master.received.map((r) => r.at);
    // 5 starts per second: the three retries are spread, not fired together.
    for (let i = 2; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(150);
  });

  it("does not let a nudge cut short a Retry-After, a 429 or the backoff after a 500", async () => {
    for (const reply of [
      { status: 429, body: errorBody("RATE_LIMITED", "slow down"), headers: { "retry-after": "30" } },
      { status: 429, body: errorBody("RATE_LIMITED", "slow down") },
      { status: 500, body: errorBody("INTERNAL", "ingestion failed") },
    ]) {
      const spool = await spoolWith(5);
      master.received.length = 0;
      master.script.push(reply);
      const events = recordEvents();
      const stop = new AbortController();
      const uploader = uploaderFor(spool, master, {
        clock: systemClock,
        random: () => 0.5,
        events,
        settings: { backoffBaseMs: 60_000, backoffCapMs: 60_000 },
      });
      const run = uploader.run(stop.signal);
      await waitFor(() => events.of("spool.upload_backoff").length > 0, 5_000, `${reply.status} seen`);
      uploader.nudge();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(master.received, `after ${reply.status}`).toHaveLength(1);
      expect(events.of("spool.upload_nudged")).toEqual([]);
      stop.abort();
      await run;
      await spool.close();
      await removeDir(dir);
      dir = await tempDir();
    }
  });

  it("sends tallies once the master said it reads them; the tally counts exactly the chunk's records", async () => {
    master.takesTally = true;
    const spool = await spoolWith(30, { maxChunkRecords: 10 });
    startUploader(spool, { uploadConcurrency: 1 });
    await waitFor(() => spool.pendingCount() === 0, 5_000, "all chunks acked");
    const [first, ...rest] = master.received;
    // The first upload learns that the master reads tallies; it goes without one.
    expect(first!.tally).toBeNull();
    expect(first!.headers["content-encoding"]).toBe("gzip");
    expect(rest).toHaveLength(2);
    for (const upload of rest) {
      expect(upload.headers["content-type"]).toBe("application/x-fleetgate-tallied-chunk");
      expect(upload.headers["content-encoding"]).toBeUndefined();
      const times = upload.records.map((r) => Date.parse(r.ts));
      const expected = JSON.parse(
        tallyJson({ fold: foldChunk({ records: upload.records, times }), lagMs: chunkLag(times) }),
      );
      expect(upload.tally).toEqual(expected);
      expect((upload.tally as { records: number }).records).toBe(10);
    }
  });

  it("a tallied upload refused with 400 or 415 (a master rolled back) is sent again without a tally, not quarantined", async () => {
    master.takesTally = true;
    const spool = await spoolWith(20, { maxChunkRecords: 10 });
    const events = recordEvents();
    // The first upload learns tallies; the second, tallied, meets a master that no longer reads them.
    master.onUpload = (r: Received) => {
      if (!r.tally) return null;
      master.takesTally = false;
      return { status: 415, body: errorBody("UNSUPPORTED_MEDIA_TYPE", "gzip only") };
    };
    startUploader(spool, { uploadConcurrency: 1 }, events);
    await waitFor(() => spool.pendingCount() === 0, 5_000, "both chunks acked");
    expect(master.received.map((r) => r.tally === null)).toEqual([true, false, true]);
    expect(master.storedRequestIds()).toHaveLength(20);
    expect(events.of("spool.tally_dropped")).toHaveLength(1);
    expect(await readdir(path.join(dir, "quarantine")).catch(() => [])).toEqual([]);
  });
});
