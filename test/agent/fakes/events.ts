import type { EventLogger } from "../../../agent/ports";

/** The event log as a list: what the code under test emitted, in order. */
export class RecordingEvents implements EventLogger {
  readonly events: { type: string; fields: Record<string, unknown> }[] = [];
  emit(type: string, fields: Record<string, unknown> = {}): void {
    this.events.push({ type, fields });
  }
  types(): string[] {
    return this.events.map((e) => e.type);
  }
  of(type: string): Record<string, unknown>[] {
    return this.events.filter((e) => e.type === type).map((e) => e.fields);
  }
}

export function recordEvents(): RecordingEvents {
  return new RecordingEvents();
}
