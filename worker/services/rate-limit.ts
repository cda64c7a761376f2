import { sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { AppError } from "../errors";

/**
 * Fixed-window counter in one atomic upsert. Throws RATE_LIMITED with Retry-After once
 * `limit` hits land in the same window.
 */
export async function hitRateLimit({
  db,
  key,
  limit,
  windowMs,
  now = Date.now(),
}: {
  db: Db;
  key: string;
  limit: number;
  windowMs: number;
  now?: number;
}) {
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

/**
 * The bucket an address counts in: an IPv4 address itself, an IPv6 address by its /64 (one
 * subscriber usually holds a whole /64, so per-address buckets would be unlimited).
 */
export function addressBucket(address: string): string {
  const ip = address.trim().toLowerCase();
  if (!ip.includes(":")) return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (mapped) return mapped[1]!;
  const [head = "", tail = ""] = ip.split("::", 2);
  const left = head ? head.split(":") : [];
  const right = ip.includes("::") && tail ? tail.split(":") : [];
  const groups = ip.includes("::")
    ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => (Number.parseInt(g, 16) || 0).toString(16))
    .join(":")}::/64`;
}

/**
 * A per-source-address limit. Without an address (no CF-Connecting-IP: only off Cloudflare, e.g.
 * a direct Worker call) there is nothing to tell callers apart, and one shared bucket would let
 * any caller lock out every other one, so the per-address limit is skipped; per-account lockout
 * and per-key limits still apply.
 */
export async function hitAddressLimit({
  db,
  scope,
  address,
  limit,
  windowMs,
  now = Date.now(),
}: {
  db: Db;
  scope: string;
  address: string | null | undefined;
  limit: number;
  windowMs: number;
  now?: number;
}) {
  if (!address) return;
  await hitRateLimit({ db, key: `${scope}:${addressBucket(address)}`, limit, windowMs, now });
}

export async function pruneRateLimits(db: Db, olderThan: number) {
  await db.run(sql`DELETE FROM rate_limits WHERE window_start < ${olderThan}`);
}
