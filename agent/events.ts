import { appendFileSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import type { EventLogger } from "./ports";

export type EventLevel = "debug" | "info" | "warn" | "error";

export interface EventLogOptions {
  /** events.log path; omit to log to stderr only (short-lived commands without a state dir). */
  file?: string;
  /** Rotate when the file would grow past this many bytes. */
  maxBytes?: number;
  /** Rotated files kept: events.log.1 … events.log.N. */
  keep?: number;
  /** Where the same line goes for a watching operator or journald; null to silence. */
  stderr?: ((line: string) => void) | null;
  now?: () => Date;
}

const DEFAULT_MAX_BYTES = 5 * 1024 * 1024;
const DEFAULT_KEEP = 3;

/**
 * The node's troubleshooting log (SafeSquid's extended.log): one JSON object per line,
 * `{ts, level, event, ...fields}`, to stderr and to events.log with size rotation.
 */
export class EventLog implements EventLogger {
  private readonly file: string | undefined;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly stderr: ((line: string) => void) | null;
  private readonly now: () => Date;
  private size = -1;
  private fileBroken = false;

  constructor(options: EventLogOptions = {}) {
    this.file = options.file;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.keep = options.keep ?? DEFAULT_KEEP;
    this.stderr = options.stderr === undefined ? (line) => process.stderr.write(line) : options.stderr;
    this.now = options.now ?? (() => new Date());
  }

  emit(type: string, fields: Record<string, unknown> = {}): void {
    const { level, ...rest } = fields;
    const record = {
      ts: this.now().toISOString(),
      level: typeof level === "string" ? level : levelOf(type),
      event: type,
      ...rest,
    };
    const line = `${JSON.stringify(record, errorReplacer)}\n`;
    this.stderr?.(line);
    this.append(line);
  }

  private append(line: string): void {
    if (!this.file || this.fileBroken) return;
    try {
      const bytes = Buffer.byteLength(line);
      if (this.size < 0) this.size = currentSize(this.file);
      if (this.size > 0 && this.size + bytes > this.maxBytes) this.rotate();
      appendFileSync(this.file, line, { mode: 0o640 });
      this.size += bytes;
    } catch (error) {
      // Losing the file copy must never stop the proxy; say so once on stderr and keep going.
      this.fileBroken = true;
      this.stderr?.(
        `${JSON.stringify({ ts: this.now().toISOString(), level: "error", event: "eventlog.failed", error: String(error) })}\n`,
      );
    }
  }

  private rotate(): void {
    const file = this.file!;
    rmSync(`${file}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) {
      try {
        renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
    if (this.keep > 0) renameSync(file, `${file}.1`);
    else rmSync(file, { force: true });
    this.size = 0;
  }
}

function currentSize(file: string): number {
  mkdirSync(path.dirname(file), { recursive: true });
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function levelOf(type: string): EventLevel {
  if (/\.(failed|rejected|error)$/.test(type)) return "error";
  if (/\.(backoff|node_unknown|fail_closed|warn)$/.test(type)) return "warn";
  return "info";
}

function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? value.message : value;
}
