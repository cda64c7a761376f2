import { getDb } from "../db/client";
import { intVar } from "../env";
import { pruneRateLimits } from "./rate-limit";
import { pruneReports } from "./reports";

/** Cron: drops expired rate-limit windows and report rollups past RETENTION_DAYS. */
export async function runHousekeeping(env: Env, now = Date.now()) {
  const db = getDb(env.DB);
  await pruneRateLimits(db, now - 24 * 60 * 60_000);
  await pruneReports(db, intVar(env.RETENTION_DAYS, 90, 1, 3650), now);
}
