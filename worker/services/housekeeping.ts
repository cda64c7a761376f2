import { config } from "../config";
import { getDb } from "../db/client";
import { pruneAudit } from "./audit";
import { pruneArchive } from "./chunk-archive";
import { pruneNodeEvents } from "./nodes";
import { pruneRateLimits } from "./rate-limit";
import { pruneReports } from "./reports";
import { compactRollups } from "./rollup-compact";
import { pruneSessions } from "./sessions";

const DAY_MS = 24 * 60 * 60_000;

/**
 * Cron: drops expired rate-limit windows and sessions, compacts report rollups older than 48 h
 * and drops those, and node events, past RETENTION_DAYS; audit entries past AUDIT_RETENTION_DAYS;
 * archived raw chunks (R2 objects and their index rows) past ARCHIVE_RETENTION_DAYS.
 */
export async function runHousekeeping(env: Env, now = Date.now()) {
  const db = getDb(env.DB);
  const { retentionDays, auditRetentionDays, archiveRetentionDays } = config(env);
  await pruneRateLimits(db, now - DAY_MS);
  await pruneSessions(db, now);
  await compactRollups(db, now);
  await pruneReports(db, retentionDays, now);
  await pruneNodeEvents(db, now - retentionDays * DAY_MS);
  await pruneAudit(db, now - auditRetentionDays * DAY_MS);
  await pruneArchive(db, env.LOG_ARCHIVE, archiveRetentionDays, now);
}
