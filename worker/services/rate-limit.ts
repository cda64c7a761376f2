import { sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { AppError } from "../errors";

/**
 * Fixed-window counter in one atomic upsert. Throws RATE_LIMITED with Retry-After once
 * `limit` hits land in the same window.
 */
export async function hitRateLimit(db: Db, key: string, limit: number, windowMs: number, now = Date.now()) {
  const windowStart = now - (now % windowMs);
  const row = await db.get<{ count: number }>(sql`
    INSERT INTO rate_limits (key, window_start, count) VALUES (${key}, ${windowStart}, 1)
    ON CONFLICT(key) DO UPDATE SET
      count = CASE WHEN rate_limits.window_start = excluded.window_start THEN rate_limits.count + 1 ELSE 1 END,
      window_start = excluded.window_start
    RETURNING count`);
  if ((row?.count ?? 0) > limit) {
    const retryAfter = Math.ceil((windowStart + windowMs - now) / 1000);
    throw new AppError("RATE_LIMITED", `too many attempts; retry in ${retryAfter} s`, undefined, {
      "Retry-After": String(retryAfter),
    });
  }
}

export async function pruneRateLimits(db: Db, olderThan: number) {
  await db.run(sql`DELETE FROM rate_limits WHERE window_start < ${olderThan}`);
}
