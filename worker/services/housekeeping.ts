import { config } from "../config";
import { getDb } from "../db/client";
import { evaluateAlerts } from "./alerts";
import { pruneAudit } from "./audit";
import { pruneArchive } from "./chunk-archive";
import { pruneNodeEvents } from "./nodes";
import { pruneRateLimits } from "./rate-limit";
import { pruneReports } from "./reports";
import { evaluateRollouts } from "./rollout";
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
  await pruneArchive({ db, bucket: env.LOG_ARCHIVE, days: archiveRetentionDays, now });
}

/** The frequent cron (wrangler.toml): rollout gates and alert checks only; every other cron also runs housekeeping. */
export const FREQUENT_CRON = "* * * * *";

/**
 * The scheduled handler: rollout gates and alert checks every minute, housekeeping hourly (with
 * both). Each part runs even when an earlier one fails, so one broken job cannot stop the rest.
 */
export async function runScheduled(env: Env, cron: string, now = Date.now()) {
  const jobs: [string, () => Promise<unknown>][] = [
    ["rolloutGates", () => evaluateRollouts(env)],
    ["alerts", () => evaluateAlerts({ db: getDb(env.DB), env, now })],
  ];
  if (cron !== FREQUENT_CRON) jobs.unshift(["housekeeping", () => runHousekeeping(env, now)]);
  for (const [job, run] of jobs) {
    try {
      await run();
    } catch (error) {
      console.error(JSON.stringify({ scheduledJobFailed: job, error: String(error) }));
    }
  }
}
