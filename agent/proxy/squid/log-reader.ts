// Follows Squid's Fleetgate access log into the spool (docs/squid.md, "Access log").
//
// Why a file and not Squid's udp:// or tcp:// log modules: UDP drops lines under load, and with
// TCP Squid buffers in memory and drops what does not fit while the agent is down or restarting.
// A file is Squid's most robust module and keeps every line while the agent is away.
//
// The reader keeps a durable cursor {dev, ino, offset} in the state dir. A batch of lines goes
// into the sink, the sink is made durable (the spool's fsync), and only then the cursor moves, so a
// line is never skipped. Rotation (`squid -k rotate`, logrotate's rename then rotate) shows as a
// new inode at the path: the old file is read to its end through the handle still open, then the
// new one from 0. After a restart the cursor's inode is looked for at the path and then among the
// rotated siblings (access.log.0, .1, access.log-20261202, …), so lines written while the agent was
// down, across a rotation, are read exactly once. A hard crash between the spool's fsync and the
// cursor's rename re-reads at most that one batch (docs/squid.md says so).

import { type FileHandle, open, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import type { AccessLogSink, EventLogger } from "../../ports";
import { writeFileAtomic } from "../../state/atomic-write";
import { NO_REQUEST, parseSquidLine } from "./log-format";

interface Cursor {
  dev: number;
  ino: number;
  offset: number;
}

export interface LogReaderOptions {
  logPath: string;
  cursorPath: string;
  sink: AccessLogSink;
  /** Makes what was written to the sink durable (the disk spool's flush); the cursor moves after. */
  durable?: () => Promise<void>;
  includeQuery: () => boolean;
  events: EventLogger;
  pollMs: number;
}

const READ_BYTES = 1024 * 1024;

interface Open {
  handle: FileHandle;
  dev: number;
  ino: number;
  offset: number;
}

export class SquidLogReader {
  private file: Open | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private stopped = true;
  lines = 0;
  skipped = 0;
  lastLineAt: number | null = null;

  constructor(private readonly o: LogReaderOptions) {}

  async start(): Promise<void> {
    this.stopped = false;
    const cursor = await this.loadCursor();
    if (cursor !== null) await this.resume(cursor);
    this.schedule();
  }

  /** Reads what is there now (tests, stop). */
  poll(): Promise<void> {
    this.running ??= this.readAvailable().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
    await this.poll().catch(() => undefined);
    await this.file?.handle.close().catch(() => undefined);
    this.file = null;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.poll()
        .catch((error: unknown) =>
          this.o.events.emit("squid.log_read_failed", { level: "warn", error: String(error) }),
        )
        .finally(() => this.schedule());
    }, this.o.pollMs);
  }

  private async loadCursor(): Promise<Cursor | null> {
    const text = await readFile(this.o.cursorPath, "utf8").catch(() => null);
    if (text === null) return null;
    try {
      const c = JSON.parse(text) as Cursor;
      return Number.isInteger(c.ino) && Number.isInteger(c.offset) ? c : null;
    } catch {
      return null;
    }
  }

  /** Finds the cursor's file at the path or among its rotated siblings. */
  private async resume(cursor: Cursor): Promise<void> {
    const dir = path.dirname(this.o.logPath);
    const base = path.basename(this.o.logPath);
    const names = await readdir(dir).catch(() => [] as string[]);
    const candidates = [base, ...names.filter((n) => n !== base && n.startsWith(base))];
    for (const name of candidates) {
      const file = path.join(dir, name);
      const s = await stat(file).catch(() => null);
      if (s === null || s.ino !== cursor.ino || s.dev !== cursor.dev) continue;
      const handle = await open(file, "r");
      let offset = cursor.offset;
      if (s.size < offset) {
        this.o.events.emit("squid.log_truncated", { level: "warn", file, offset, size: s.size });
        offset = 0;
      }
      this.file = { handle, dev: s.dev, ino: s.ino, offset };
      if (name !== base) this.o.events.emit("squid.log_resume_rotated", { file, offset });
      return;
    }
    this.o.events.emit("squid.log_cursor_lost", {
      level: "warn",
      message: `the log file the agent was reading (inode ${cursor.ino}) is gone; reading ${this.o.logPath} from its start`,
    });
  }

  private async readAvailable(): Promise<void> {
    for (let round = 0; round < 4; round++) {
      if (this.file === null) {
        const s = await stat(this.o.logPath).catch(() => null);
        if (s === null) return;
        const handle = await open(this.o.logPath, "r");
        this.file = { handle, dev: s.dev, ino: s.ino, offset: 0 };
        await this.saveCursor();
      }
      await this.drain(this.file);
      const now = await stat(this.o.logPath).catch(() => null);
      if (now === null || (now.ino === this.file.ino && now.dev === this.file.dev)) return;
      // Rotated: Squid closed the old file before it created the new one; read the rest, then switch.
      await this.drain(this.file);
      await this.file.handle.close().catch(() => undefined);
      this.o.events.emit("squid.log_rotated", { ino: this.file.ino, offset: this.file.offset });
      this.file = null;
    }
  }

  private async drain(file: Open): Promise<void> {
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    for (;;) {
      const { bytesRead } = await file.handle.read(buffer, 0, READ_BYTES, file.offset);
      if (bytesRead === 0) return;
      const last = buffer.lastIndexOf(10, bytesRead - 1);
      // A line still being written stays for the next read; one longer than the buffer is cut.
      const end = last >= 0 ? last + 1 : bytesRead === READ_BYTES ? bytesRead : 0;
      if (end === 0) return;
      this.consume(buffer.toString("utf8", 0, end));
      file.offset += end;
      await this.o.durable?.();
      await this.saveCursor();
      if (bytesRead < READ_BYTES) return;
    }
  }

  private consume(text: string): void {
    const includeQuery = this.o.includeQuery();
    let skippedNow = 0;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const record = parseSquidLine(line, includeQuery);
      if (record === NO_REQUEST) continue;
      if (record === null) {
        skippedNow++;
        continue;
      }
      this.o.sink.write(record);
      this.lines++;
    }
    this.lastLineAt = Date.now();
    if (skippedNow > 0) {
      this.skipped += skippedNow;
      this.o.events.emit("squid.log_lines_skipped", {
        level: "warn",
        lines: skippedNow,
        total: this.skipped,
      });
    }
  }

  private async saveCursor(): Promise<void> {
    if (this.file === null) return;
    const cursor: Cursor = { dev: this.file.dev, ino: this.file.ino, offset: this.file.offset };
    await writeFileAtomic(this.o.cursorPath, `${JSON.stringify(cursor)}\n`);
  }
}
