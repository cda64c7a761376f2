// One `run` per state dir: two agents on one spool would seal, upload and delete each other's
// chunks. The lock is a file created with O_EXCL holding the owner's pid and, on Linux, the
// process start time from /proc, so a pid reused after a crash or reboot is not taken for the
// owner. A lock whose owner is gone is stale and taken over; the takeover renames the stale file
// away first and checks what it moved, so two agents starting together cannot both win.

import { constants } from "node:fs";
import { link, open, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";

export const RUN_LOCK_FILE = "run.lock";

export interface LockOwner {
  pid: number;
  /** /proc/<pid>/stat start time in clock ticks since boot; null off Linux. */
  startTicks: number | null;
  startedAt: string;
}

export class RunLockHeld extends Error {
  constructor(
    readonly owner: LockOwner,
    readonly file: string,
  ) {
    super(`another agent (pid ${owner.pid}, running since ${owner.startedAt}) holds ${file}`);
  }
}

export function runLockPath(stateRoot: string): string {
  return path.join(stateRoot, RUN_LOCK_FILE);
}

async function startTicksOf(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Field 22; the command name (field 2) may contain spaces, so count from its closing paren.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True when the process that wrote `owner` still runs (the same process, not a reused pid). */
export async function ownerAlive(owner: LockOwner): Promise<boolean> {
  if (!pidExists(owner.pid)) return false;
  if (owner.startTicks === null) return true;
  const ticks = await startTicksOf(owner.pid);
  return ticks === null || ticks === owner.startTicks;
}

function parseOwner(text: string): LockOwner | null {
  try {
    const data = JSON.parse(text) as Partial<LockOwner>;
    if (!Number.isInteger(data.pid) || (data.pid ?? 0) <= 0) return null;
    return {
      pid: data.pid as number,
      startTicks: typeof data.startTicks === "number" ? data.startTicks : null,
      startedAt: typeof data.startedAt === "string" ? data.startedAt : "unknown",
    };
  } catch {
    return null;
  }
}

/** The lock's recorded owner, or null when there is no (readable) lock file. */
export async function readRunLock(stateRoot: string): Promise<LockOwner | null> {
  try {
    return parseOwner(await readFile(runLockPath(stateRoot), "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

export interface RunLock {
  readonly owner: LockOwner;
  release(): Promise<void>;
}

/** Takes the state dir's run lock or throws RunLockHeld naming the live owner. */
export async function acquireRunLock(stateRoot: string, now = () => new Date()): Promise<RunLock> {
  const file = runLockPath(stateRoot);
  const owner: LockOwner = {
    pid: process.pid,
    startTicks: await startTicksOf(process.pid),
    startedAt: now().toISOString(),
  };
  const text = `${JSON.stringify(owner)}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return { owner, release: () => releaseIfOurs(file, text) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    let seen: string;
    try {
      seen = await readFile(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw error;
    }
    const holder = parseOwner(seen);
    // A half-written lock (its owner between create and write) is young: give it a moment.
    if (holder === null && attempt < 2) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    if (holder && holder.pid !== process.pid && (await ownerAlive(holder)))
      throw new RunLockHeld(holder, file);
    await takeOverStale(file, seen);
  }
  throw new Error(`could not take ${file}: it keeps changing (another agent starting?)`);
}

async function takeOverStale(file: string, staleText: string): Promise<void> {
  const aside = `${file}.stale-${process.pid}`;
  try {
    await rename(file, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const moved = await readFile(aside, "utf8").catch(() => "");
  if (moved !== staleText) {
    // Another agent replaced the stale lock with its own between our read and rename: put it back
    // (link fails if a third lock appeared meanwhile, which then wins).
    await link(aside, file).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

async function releaseIfOurs(file: string, text: string): Promise<void> {
  const current = await readFile(file, "utf8").catch(() => null);
  if (current === text) await unlink(file).catch(() => undefined);
}
