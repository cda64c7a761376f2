import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { EventLog } from "../../agent/events";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "fg-events-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const fixedNow = () => new Date("2026-01-02T03:04:05.000Z");

describe("event log", () => {
  it("writes one JSON object per line to the file and to stderr", async () => {
    const file = path.join(dir, "events.log");
    const stderr: string[] = [];
    const log = new EventLog({ file, stderr: (line) => stderr.push(line), now: fixedNow });
    log.emit("policy.applied", { version: 3, hash: "abc" });
    log.emit("sync.failed", { error: new Error("boom") });
    log.emit("custom", { level: "debug" });

    const lines = (await readFile(file, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { ts: "2026-01-02T03:04:05.000Z", level: "info", event: "policy.applied", version: 3, hash: "abc" },
      { ts: "2026-01-02T03:04:05.000Z", level: "error", event: "sync.failed", error: "boom" },
      { ts: "2026-01-02T03:04:05.000Z", level: "debug", event: "custom" },
    ]);
    expect(stderr.join("")).toBe(await readFile(file, "utf8"));
  });

  it("rotates by size and keeps only the configured number of old files", async () => {
    const file = path.join(dir, "events.log");
    const log = new EventLog({ file, stderr: null, maxBytes: 300, keep: 3, now: fixedNow });
    for (let i = 0; i < 60; i++) log.emit("sync.ok", { i, pad: "x".repeat(40) });

    const names = (await readdir(dir)).sort();
    expect(names).toEqual(["events.log", "events.log.1", "events.log.2", "events.log.3"]);
    for (const name of names) {
      const text = await readFile(path.join(dir, name), "utf8");
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(300);
      for (const line of text.trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
    }
    const newest = (await readFile(file, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).i as number);
    expect(newest.at(-1)).toBe(59);
    const older = (await readFile(`${file}.1`, "utf8"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).i as number);
    expect(older.at(-1)).toBe(newest[0]! - 1); // nothing lost between the current and the newest rotated file
  });

  it("continues an existing log after a restart and rotates it by its real size", async () => {
    const file = path.join(dir, "events.log");
    new EventLog({ file, stderr: null, maxBytes: 250, now: fixedNow }).emit("a", { pad: "x".repeat(150) });
    new EventLog({ file, stderr: null, maxBytes: 250, now: fixedNow }).emit("b", { pad: "x".repeat(150) });
    expect((await readdir(dir)).sort()).toEqual(["events.log", "events.log.1"]);
  });

  it("keeps running on stderr when the file cannot be written", async () => {
    const stderr: string[] = [];
    // A regular file where the log's directory should be: every write fails with ENOTDIR.
    await writeFile(path.join(dir, "not-a-dir"), "");
    const log = new EventLog({
      file: path.join(dir, "not-a-dir", "events.log"),
      stderr: (l) => stderr.push(l),
    });
    log.emit("one");
    log.emit("two");
    expect(stderr.map((l) => JSON.parse(l).event)).toEqual(["one", "eventlog.failed", "two"]);
  });
});
