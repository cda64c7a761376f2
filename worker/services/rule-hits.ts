import type { Db } from "../db/client";
import { top } from "./reports";
import { DAY } from "./rollup-kinds";

/** Requests each rule decided over the last 24 h, fleet-wide, from the rule rollups. */
export async function ruleHits(args: { db: Db; now?: number }): Promise<Record<string, number>> {
  const to = args.now ?? Date.now();
  const result = await top(args.db, { by: "rule", from: to - DAY, to, limit: 1000 });
  return Object.fromEntries(result.rows.map((r) => [r.key, r.requests]));
}
