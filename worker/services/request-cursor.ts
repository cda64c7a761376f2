// Cursors of the request search and export: opaque to clients, a position in the ordering key.
// A cursor that this API did not write is refused (400 on query.cursor).
import { AppError } from "../errors";

/** Search order, newest first: (record time, archive id, line) descending. */
export type SearchKey = [ts: number, chunk: number, line: number];
/** Export order, acceptance first: (archive id, line) ascending, so late uploads are not skipped. */
export type ExportKey = [chunk: number, line: number];

const b64 = (text: string) => btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

export function encodeCursor(kind: "s" | "e", key: number[]): string {
  return b64(`${kind}1.${key.join(".")}`);
}

function decodeCursor(kind: "s" | "e", cursor: string, parts: number): number[] {
  let text = "";
  try {
    text = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
  } catch {}
  const fields = text.split(".");
  const numbers = fields.slice(1).map(Number);
  if (fields[0] !== `${kind}1` || numbers.length !== parts || !numbers.every(Number.isSafeInteger)) {
    const message = `not a ${kind === "s" ? "search" : "export"} cursor from this API`;
    throw new AppError("VALIDATION_FAILED", `query.cursor: ${message}`, [{ path: "query.cursor", message }]);
  }
  return numbers;
}

export const decodeSearchCursor = (cursor: string) => decodeCursor("s", cursor, 3) as SearchKey;
export const decodeExportCursor = (cursor: string) => decodeCursor("e", cursor, 2) as ExportKey;

export function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return 0;
}
