import { getDb } from "../db/client";
import { intVar } from "../env";
import { pruneRateLimits } from "./rate-limit";
import { pruneReports } from "./reports";
import { compactRollups } from "./rollup-compact";
import { pruneSessions } from "./sessions";

/**
 * Cron: drops expired rate-limit windows and sessions, compacts report rollups older than 48 h
 * and drops those past RETENTION_DAYS.
 */
export async function runHousekeeping(env: Env, now = Date.now()) {
  const db = getDb(env.DB);
  await pruneRateLimits(db, now - 24 * 60 * 60_000);
  await pruneSessions(db, now);
  await compactRollups(db, now);
  await pruneReports(db, intVar(env.RETENTION_DAYS, 90, 1, 3650), now);
}
