// Delivering an alert to the webhook, and trying again when that fails. A webhook that is down
// for a few minutes (a deploy, a restart) must not lose the alert: a failed delivery is retried
// from the cron while its alert is open, with a pause that doubles from ALERT_RETRY_MS up to an
// hour, MAX_ATTEMPTS tries in all (about four hours at the default). Every try sends the same
// payload (same id and firedAt), freshly signed, so a receiver can drop a repeat by id.
import { and, asc, eq, isNotNull, isNull, lte } from "drizzle-orm";
import {
  ALERT_SIGNATURE_HEADER,
  ALERT_TIMESTAMP_HEADER,
  type AlertKind,
  type AlertPayload,
  signAlert,
} from "../../protocol/alerts";
import type { Db } from "../db/client";
import { alerts } from "../db/schema";

const DELIVERY_TIMEOUT_MS = 5_000;
export const MAX_ATTEMPTS = 10;
const MAX_PAUSE_MS = 60 * 60_000;
// Retries per cron run: at 5 s a try, well inside a scheduled invocation.
const RETRIES_PER_RUN = 20;

export interface AlertConfig {
  url: string | null;
  secret: string | null;
  kinds: AlertKind[];
  /** A spool whose oldest pending chunk is older than this (minutes) is a backlog. */
  backlogMinutes: number;
}

export type Delivery = { delivery: "sent" | "failed" | "off"; error: string | null };

/**
 * Signs and POSTs one payload; answers how it went (never throws). "off" without a webhook, or
 * for a kind the configuration does not alert on (a test alert always goes).
 */
export async function deliver(config: AlertConfig, payload: AlertPayload): Promise<Delivery> {
  if (!config.url || !config.secret) return { delivery: "off", error: null };
  if (payload.kind !== "test" && !config.kinds.includes(payload.kind))
    return { delivery: "off", error: null };
  const body = JSON.stringify(payload);
  const timestamp = Math.floor(Date.now() / 1000);
  try {
    const response = await fetch(config.url, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "User-Agent": "fleetgate-master-alerts",
        [ALERT_TIMESTAMP_HEADER]: String(timestamp),
        [ALERT_SIGNATURE_HEADER]: await signAlert(config.secret, timestamp, body),
      },
      body,
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
    });
    await response.body?.cancel();
    if (!response.ok) return { delivery: "failed", error: `webhook answered ${response.status}` };
    return { delivery: "sent", error: null };
  } catch (error) {
    return { delivery: "failed", error: String((error as Error).message ?? error).slice(0, 300) };
  }
}

/**
 * The columns to store after try number `attempts`: a failed one schedules the next try
 * (`baseMs` × 2^(attempts − 1), at most an hour) until MAX_ATTEMPTS, then gives up.
 */
export function deliveryColumns(result: Delivery, attempts: number, baseMs: number, now: number) {
  const retry = result.delivery === "failed" && attempts < MAX_ATTEMPTS;
  const gaveUp = result.delivery === "failed" && !retry;
  return {
    delivery: result.delivery,
    deliveredAt: result.delivery === "sent" ? now : null,
    deliveryError: gaveUp ? `gave up after ${attempts} tries: ${result.error}` : result.error,
    attempts,
    retryAt: retry ? now + Math.min(MAX_PAUSE_MS, baseMs * 2 ** (attempts - 1)) : null,
  };
}

/** The payload an alert row was first sent with. */
export function payloadOf(row: typeof alerts.$inferSelect): AlertPayload {
  return {
    id: row.id,
    kind: row.kind as AlertKind,
    subject: row.subject,
    summary: row.summary,
    details: row.details as Record<string, unknown>,
    firedAt: new Date(row.firedAt).toISOString(),
  };
}

/**
 * Tries again every open alert whose failed delivery is due, to the webhook as configured now (a
 * fixed URL reaches the new one; a kind switched off, or no webhook, stops trying). Resolved
 * alerts are not retried: the condition is gone. Answers how many were tried.
 */
export async function retryDeliveries(args: {
  db: Db;
  config: AlertConfig;
  baseMs: number;
  now?: number;
}): Promise<{ tried: number; sent: number }> {
  const { db, config } = args;
  const now = args.now ?? Date.now();
  const due = await db
    .select()
    .from(alerts)
    .where(and(isNotNull(alerts.retryAt), lte(alerts.retryAt, now), isNull(alerts.resolvedAt)))
    .orderBy(asc(alerts.retryAt))
    .limit(RETRIES_PER_RUN);
  let sent = 0;
  for (const row of due) {
    const result = await deliver(config, payloadOf(row));
    if (result.delivery === "sent") sent++;
    await db
      .update(alerts)
      .set(deliveryColumns(result, row.attempts + 1, args.baseMs, now))
      .where(eq(alerts.id, row.id));
  }
  return { tried: due.length, sent };
}
