import { drizzle } from "drizzle-orm/d1";
import * as schema from "./schema";

export type Db = ReturnType<typeof getDb>;

export function getDb(d1: D1Database) {
  return drizzle(d1, { schema });
}

// D1 refuses statements with more than 100 bound parameters in production (the local
// simulator does not), so every multi-row write goes through this.
export const MAX_BOUND_PARAMETERS = 100;

export function chunkRows<T>(rows: readonly T[], columnsPerRow: number): T[][] {
  if (columnsPerRow < 1 || columnsPerRow > MAX_BOUND_PARAMETERS) {
    throw new Error(
      `a row of ${columnsPerRow} columns cannot be written within ${MAX_BOUND_PARAMETERS} parameters`,
    );
  }
  const perStatement = Math.floor(MAX_BOUND_PARAMETERS / columnsPerRow);
  const chunks: T[][] = [];
  for (let i = 0; i < rows.length; i += perStatement) chunks.push(rows.slice(i, i + perStatement));
  return chunks;
}
