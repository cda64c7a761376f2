import type { LogRecord, SpoolFigures } from "../../protocol/wire";
import type { AccessLogSink } from "../ports";

/**
 * Keeps the newest access-log records in memory until the durable spool lands (a later issue);
 * nothing is uploaded yet, so the figures it reports stay zero apart from local overflow.
 */
export class MemorySink implements AccessLogSink {
  private readonly records: LogRecord[] = [];
  private dropped = 0;

  constructor(private readonly capacity = 10_000) {}

  write(record: LogRecord): void {
    this.records.push(record);
    if (this.records.length > this.capacity) {
      this.records.shift();
      this.dropped++;
    }
  }

  /** Most recent records, oldest first. */
  recent(limit = this.capacity): LogRecord[] {
    return this.records.slice(-limit);
  }

  figures(): SpoolFigures {
    return { pendingChunks: 0, pendingBytes: 0, oldestPendingAt: null, droppedRecords: this.dropped };
  }
}
