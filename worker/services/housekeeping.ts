import { getDb } from "../db/client";
import { pruneRateLimits } from "./rate-limit";

/** Cron: drops expired rate-limit windows (report retention joins here with the reporting pipeline). */
export async function runHousekeeping(env: Env, now = Date.now()) {
  const db = getDb(env.DB);
  await pruneRateLimits(db, now - 24 * 60 * 60_000);
}
