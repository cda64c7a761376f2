// One agent per state dir: the real CLI under Bun from source, two real processes on one state dir.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  acquireRunLock,
  ownerAlive,
  RunLockHeld,
  readRunLock,
  runLockPath,
} from "../../agent/state/run-lock";
import { enrollAt, fakeMaster } from "./fakes/cli";
import { enrollAnswer } from "./fakes/master";

const ROOT = path.resolve(import.meta.dirname, "../..");
const BUN = path.join(ROOT, "node_modules/.bin/bun");
const MAIN = path.join(ROOT, "agent/main.ts");

let dir: string;
const children = new Set<ChildProcess>();
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "fg-lock-"));
});
afterEach(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, "SIGKILL");
  }
  await Promise.all([...children].map((child) => exitOf(child)));
  children.clear();
  await rm(dir, { recursive: true, force: true });
});

function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

function startRun(): { child: ChildProcess; stderr: () => string; listening: Promise<void> } {
  const child = spawn(BUN, [MAIN, "run", "--state-dir", dir], {
    cwd: ROOT,
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.add(child);
  let stderr = "";
  const listening = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`run did not start listening:\n${stderr}`)), 20_000);
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('"proxy.listening"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`run exited with ${code}:\n${stderr}`));
    });
  });
  listening.catch(() => undefined);
  // runtime.json is written after run has installed its SIGTERM handler: only then is it "up".
  const ready = listening.then(async () => {
    for (let i = 0; i < 200; i++) {
      const runtime = await readFile(path.join(dir, "runtime.json"), "utf8").catch(() => "{}");
      if (JSON.parse(runtime).pid === child.pid) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`runtime.json never named pid ${child.pid}`);
  });
  ready.catch(() => undefined);
  return { child, stderr: () => stderr, listening: ready };
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

describe("run takes an exclusive lock on the state dir", () => {
  it("a second run exits 1 naming the first's pid; the first keeps serving, its lock and spool intact", async () => {
    const master = await fakeMaster((req) =>
      req.url?.includes("/enroll") ? enrollAnswer() : { status: 304 },
    );
    try {
      const port = await enrollAt(master.url, dir);
      const first = startRun();
      await first.listening;
      const lockBefore = await readFile(runLockPath(dir), "utf8");
      expect(JSON.parse(lockBefore)).toMatchObject({ pid: first.child.pid });
      const spoolBefore = (await readdir(path.join(dir, "spool"), { recursive: true })).sort();

      const second = startRun();
      expect(await exitOf(second.child)).toBe(1);
      expect(second.stderr()).toMatch(
        new RegExp(
          `cannot start: another agent \\(pid ${first.child.pid}, running since .*\\) holds .*run\\.lock`,
        ),
      );
      expect(second.stderr()).toMatch(/One agent per state dir/);
      expect(second.stderr()).not.toMatch(/"agent\.starting"|"proxy\.listening"/);

      expect(first.child.exitCode).toBeNull();
      expect(await connects(port)).toBe(true);
      expect(await readFile(runLockPath(dir), "utf8")).toBe(lockBefore);
      expect((await readdir(path.join(dir, "spool"), { recursive: true })).sort()).toEqual(spoolBefore);

      first.child.kill("SIGTERM");
      expect(await exitOf(first.child)).toBe(0);
      expect(existsSync(runLockPath(dir))).toBe(false);
    } finally {
      await master.close();
    }
  });

  it("a run killed with SIGKILL leaves a stale lock the next run takes over", async () => {
    const master = await fakeMaster((req) =>
      req.url?.includes("/enroll") ? enrollAnswer() : { status: 304 },
    );
    try {
      await enrollAt(master.url, dir);
      const crashed = startRun();
      await crashed.listening;
      crashed.child.kill("SIGKILL");
      await exitOf(crashed.child);
      expect((await readRunLock(dir))?.pid).toBe(crashed.child.pid);

      const next = startRun();
      await next.listening;
      expect((await readRunLock(dir))?.pid).toBe(next.child.pid);
      next.child.kill("SIGTERM");
      expect(await exitOf(next.child), next.stderr()).toBe(0);
    } finally {
      await master.close();
    }
  });
});

describe("run lock on real files", () => {
  it("refuses while a live process holds it, and ignores a reused pid (start time differs)", async () => {
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" });
    children.add(holder);
    await new Promise((resolve) => holder.once("spawn", resolve));
    const stat = await readFile(`/proc/${holder.pid}/stat`, "utf8");
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    const owner = { pid: holder.pid!, startTicks: ticks, startedAt: "2026-12-01T00:00:00.000Z" };
    await writeFile(runLockPath(dir), JSON.stringify(owner));
    expect(await ownerAlive(owner)).toBe(true);
    const refused = await acquireRunLock(dir).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(RunLockHeld);
    expect((refused as RunLockHeld).owner.pid).toBe(holder.pid);

    // Same pid, another start time: the pid was reused after the owner died.
    await writeFile(runLockPath(dir), JSON.stringify({ ...owner, startTicks: ticks - 1 }));
    const lock = await acquireRunLock(dir);
    expect(lock.owner.pid).toBe(process.pid);
    await lock.release();
    expect(existsSync(runLockPath(dir))).toBe(false);
  });

  it("takes over a lock left by a dead pid or a garbled file, and release leaves another's lock alone", async () => {
    await writeFile(
      runLockPath(dir),
      JSON.stringify({ pid: 2 ** 22 + 12345, startTicks: 1, startedAt: "x" }),
    );
    const lock = await acquireRunLock(dir);
    expect((await readRunLock(dir))?.pid).toBe(process.pid);
    await lock.release();
    await writeFile(runLockPath(dir), "{garbled");
    const again = await acquireRunLock(dir);
    await writeFile(runLockPath(dir), JSON.stringify({ pid: 1, startTicks: null, startedAt: "y" }));
    await again.release();
    expect((await readRunLock(dir))?.pid).toBe(1);
  });
});
