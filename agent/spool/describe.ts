import type { SpoolFigures } from "../../protocol/wire";

/** "1.5 MiB": binary units, as the spool settings use. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 10 ? Math.round(value) : value.toFixed(1)} ${units[unit]}`;
}

/** The one-line summary `status` and `doctor` print: pending, oldest pending, dropped, quarantined. */
export function describeSpool(figures: SpoolFigures, ago: (iso: string | null) => string): string {
  const oldest = figures.oldestPendingAt ? ` (oldest ${ago(figures.oldestPendingAt)})` : "";
  return [
    `${figures.pendingChunks} chunks / ${formatBytes(figures.pendingBytes)} pending${oldest}`,
    `${figures.droppedRecords} records dropped`,
    `${figures.quarantinedChunks ?? 0} chunks quarantined`,
  ].join(", ");
}
