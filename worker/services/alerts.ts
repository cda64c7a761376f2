// Alerts: a signed JSON POST to one webhook when something needs a person. Conditions are checked
// by the cron (evaluateAlerts) and by other features through fireAlert (the rollout calls it when
// it halts). Deduplicated: one open alert per (kind, subject) — seen again, it is only touched;
// once the condition clears it is resolved and a later occurrence fires anew.
//
// The webhook secret is stored as given in the settings row (the master needs it in clear to sign
// with HMAC) and is never shown again: pages and the API only say whether one is set.
// One file past 300 lines: the conditions, the dedupe/resolve bookkeeping and the signed delivery
// are one lifecycle of an alert row; each part is short and used only here.

import { and, desc, eq, inArray, isNotNull, isNull, notInArray } from "drizzle-orm";
import type { AlertKind, AlertPayload } from "../../protocol/alerts";
import { config as envConfig } from "../config";
import type { Db } from "../db/client";
import { alerts, nodes, settings } from "../db/schema";
import type { Actor } from "../env";
import { AppError } from "../errors";
import { type AlertConfig, deliver, deliveryColumns, retryDeliveries } from "./alert-delivery";
import { type AuditContext, auditInsert } from "./audit";
import { pollWaitSeconds, type SpoolState } from "./fleet";
import { onlineWindowMs } from "./nodes";
import { newId } from "./secrets";

const KEY = "alerts";
const MAX_URL = 2048;

export const CONDITION_KINDS = [
  "node.offline",
  "policy.rejected",
  "records.dropped",
  "spool.backlog",
  "rollout.halted",
  "logs.tally_refused",
] as const satisfies readonly AlertKind[];

export type { AlertConfig } from "./alert-delivery";

const DEFAULT_CONFIG: AlertConfig = {
  url: null,
  secret: null,
  kinds: [...CONDITION_KINDS],
  backlogMinutes: 30,
};

/** What a page may show of the configuration: never the secret. */
export interface AlertConfigView extends Omit<AlertConfig, "secret"> {
  secretSet: boolean;
}

export async function getAlertConfig(args: { db: Db }): Promise<AlertConfig> {
  const [row] = await args.db.select().from(settings).where(eq(settings.key, KEY)).limit(1);
  return { ...DEFAULT_CONFIG, ...((row?.value as Partial<AlertConfig> | undefined) ?? {}) };
}

export async function alertConfigView(args: { db: Db }): Promise<AlertConfigView> {
  const { secret, ...rest } = await getAlertConfig(args);
  return { ...rest, secretSet: Boolean(secret) };
}

function checkUrl(url: string) {
  if (url.length > MAX_URL)
    throw new AppError("VALIDATION_FAILED", `the webhook URL is limited to ${MAX_URL} characters`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AppError("VALIDATION_FAILED", "the webhook URL is not a URL");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
    throw new AppError("VALIDATION_FAILED", "the webhook URL must be http(s)");
}

/**
 * Saves the webhook. An empty `secret` keeps the stored one; `clearSecret` removes it. A URL
 * needs a secret (an unsigned alert could be forged by anyone who learns the URL).
 */
export async function saveAlertConfig(args: {
  db: Db;
  audit: AuditContext;
  input: { url: string; secret?: string; clearSecret?: boolean; kinds: string[]; backlogMinutes: number };
}): Promise<AlertConfigView> {
  const { db, input } = args;
  const current = await getAlertConfig({ db });
  const url = input.url.trim() || null;
  if (url) checkUrl(url);
  const secret = input.clearSecret ? null : input.secret?.trim() ? input.secret.trim() : current.secret;
  if (secret && (secret.length < 16 || secret.length > 256))
    throw new AppError("VALIDATION_FAILED", "the webhook secret must be 16 to 256 characters");
  if (url && !secret)
    throw new AppError("VALIDATION_FAILED", "set a shared secret: alerts are always signed");
  if (!Number.isInteger(input.backlogMinutes) || input.backlogMinutes < 1 || input.backlogMinutes > 10_080)
    throw new AppError("VALIDATION_FAILED", "the backlog threshold is 1 to 10080 minutes");
  const kinds = CONDITION_KINDS.filter((k) => input.kinds.includes(k));
  const value: AlertConfig = { url, secret, kinds, backlogMinutes: input.backlogMinutes };
  const now = Date.now();
  const actor: Actor = args.audit.actor;
  await db.batch([
    db
      .insert(settings)
      .values({ key: KEY, value, updatedAt: now, updatedBy: actor.id })
      .onConflictDoUpdate({ target: settings.key, set: { value, updatedAt: now, updatedBy: actor.id } }),
    auditInsert(db, args.audit, {
      action: "alerts.configure",
      target: "alerts",
      before: { url: current.url, kinds: current.kinds, secretSet: Boolean(current.secret) },
      after: { url, kinds, backlogMinutes: value.backlogMinutes, secretSet: Boolean(secret) },
    }),
  ]);
  return { url, kinds, backlogMinutes: value.backlogMinutes, secretSet: Boolean(secret) };
}

export interface FiredAlert {
  id: string;
  fired: boolean;
  delivery: "sent" | "failed" | "off" | "open";
  error?: string | null;
}

/**
 * Fires an alert unless the same (kind, subject) is already open; the hook other features call
 * (the rollout: `fireAlert({db, env, kind: "rollout.halted", subject: rolloutId, details})`).
 */
export async function fireAlert(args: {
  db: Db;
  env: Env;
  kind: AlertKind;
  subject: string;
  summary?: string;
  details?: Record<string, unknown>;
  now?: number;
}): Promise<FiredAlert> {
  const { db } = args;
  const now = args.now ?? Date.now();
  const details = args.details ?? {};
  const summary = (args.summary ?? `${args.kind}: ${args.subject}`).slice(0, 500);
  const [open] = await db
    .select({ id: alerts.id })
    .from(alerts)
    .where(and(eq(alerts.kind, args.kind), eq(alerts.subject, args.subject), isNull(alerts.resolvedAt)))
    .limit(1);
  if (open) {
    await db.update(alerts).set({ lastSeenAt: now }).where(eq(alerts.id, open.id));
    return { id: open.id, fired: false, delivery: "open" };
  }
  const id = newId("alr");
  try {
    await db.insert(alerts).values({
      id,
      kind: args.kind,
      subject: args.subject,
      summary,
      details,
      firedAt: now,
      lastSeenAt: now,
      delivery: "off",
    });
  } catch (error) {
    // A concurrent evaluation opened it first (the partial unique index): that one sends.
    if (/UNIQUE|constraint/i.test(String((error as Error).message)))
      return { id, fired: false, delivery: "open" };
    throw error;
  }
  const config = await getAlertConfig({ db });
  const payload: AlertPayload = {
    id,
    kind: args.kind,
    subject: args.subject,
    summary,
    details,
    firedAt: new Date(now).toISOString(),
  };
  const result = await deliver(config, payload);
  await db
    .update(alerts)
    .set({
      ...deliveryColumns(result, 1, envConfig(args.env).alertRetryMs, Date.now()),
      // A test never stays open (the next test sends again) and is never retried: it asks "does it work now?".
      ...(args.kind === "test" ? { resolvedAt: now, retryAt: null } : {}),
    })
    .where(eq(alerts.id, id));
  return { id, fired: true, delivery: result.delivery, error: result.error };
}

/** Sends a test alert now, from `by` through `via` (the dashboard, the API); never retried. */
export function sendTestAlert(args: { db: Db; env: Env; by: string; via: string }): Promise<FiredAlert> {
  return fireAlert({
    db: args.db,
    env: args.env,
    kind: "test",
    subject: `test-${Date.now()}`,
    summary: `Test alert sent by ${args.by} from ${args.via}`,
    details: { by: args.by },
  });
}

/** Resolves open alerts of `kind` whose subject is not in `stillTrue`. */
async function resolveCleared(db: Db, kind: AlertKind, stillTrue: string[], now: number) {
  await db
    .update(alerts)
    .set({ resolvedAt: now, retryAt: null })
    .where(
      and(
        eq(alerts.kind, kind),
        isNull(alerts.resolvedAt),
        stillTrue.length ? notInArray(alerts.subject, stillTrue) : undefined,
      ),
    );
}

/** The cron's check: every condition over the live fleet, fired and resolved as it stands. */
export async function evaluateAlerts(args: { db: Db; env: Env; now?: number }) {
  const { db, env } = args;
  const now = args.now ?? Date.now();
  const config = await getAlertConfig({ db });
  const cutoff = now - onlineWindowMs(pollWaitSeconds(env));
  const live = await db.select().from(nodes).where(isNull(nodes.revokedAt));
  const found: Record<string, { subject: string; summary: string; details: Record<string, unknown> }[]> = {
    "node.offline": [],
    "policy.rejected": [],
    "records.dropped": [],
    "spool.backlog": [],
  };
  for (const n of live) {
    const spool = (n.spool ?? null) as SpoolState | null;
    if (n.lastSeenAt !== null && n.lastSeenAt < cutoff)
      found["node.offline"]!.push({
        subject: n.id,
        summary: `${n.hostname} is offline (last seen ${new Date(n.lastSeenAt).toISOString()})`,
        details: { hostname: n.hostname, lastSeenAt: n.lastSeenAt },
      });
    if (n.syncState === "rejected")
      found["policy.rejected"]!.push({
        subject: n.id,
        summary: `${n.hostname} rejected the policy: ${n.lastError ?? "no reason given"}`,
        details: { hostname: n.hostname, appliedVersion: n.appliedVersion, error: n.lastError },
      });
    if ((spool?.droppedRecords ?? 0) > 0)
      found["records.dropped"]!.push({
        subject: n.id,
        summary: `${n.hostname} dropped ${spool?.droppedRecords} log records`,
        details: { hostname: n.hostname, droppedRecords: spool?.droppedRecords },
      });
    // The agent reports oldestPendingAt as an ISO string (older agents: epoch ms).
    const oldest = spool?.oldestPendingAt ? new Date(spool.oldestPendingAt).getTime() : Number.NaN;
    if (spool && Number.isFinite(oldest) && oldest < now - config.backlogMinutes * 60_000)
      found["spool.backlog"]!.push({
        subject: n.id,
        summary: `${n.hostname} has log chunks waiting for over ${config.backlogMinutes} min`,
        details: {
          hostname: n.hostname,
          oldestPendingAt: new Date(oldest).toISOString(),
          pendingChunks: spool.pendingChunks,
          pendingBytes: spool.pendingBytes,
        },
      });
  }
  const fired: FiredAlert[] = [];
  for (const [kind, items] of Object.entries(found) as [AlertKind, (typeof found)[string]][]) {
    await resolveCleared(
      db,
      kind,
      items.map((i) => i.subject),
      now,
    );
    for (const item of items) fired.push(await fireAlert({ db, env, kind, ...item, now }));
  }
  // Failed deliveries of alerts still open, when due (alert-delivery.ts).
  const retried = await retryDeliveries({ db, config, baseMs: envConfig(env).alertRetryMs, now });
  return { checked: live.length, fired: fired.filter((f) => f.fired), retried };
}

/** Alerts, newest first; `open` true or false keeps only open or only resolved ones. */
export async function listAlerts(args: { db: Db; limit?: number; open?: boolean }) {
  return args.db
    .select()
    .from(alerts)
    .where(
      args.open === undefined
        ? undefined
        : args.open
          ? isNull(alerts.resolvedAt)
          : isNotNull(alerts.resolvedAt),
    )
    .orderBy(desc(alerts.firedAt))
    .limit(args.limit ?? 50);
}

/**
 * Resolves open alerts by id (a person dealt with them: the way an event such as a halted rollout
 * or a refused tally is closed, so its next occurrence alerts again). Audited; answers how many
 * were open.
 */
export async function resolveAlerts(args: { db: Db; audit: AuditContext; ids: string[] }): Promise<number> {
  if (!args.ids.length) return 0;
  const now = Date.now();
  const open = and(inArray(alerts.id, args.ids), isNull(alerts.resolvedAt));
  const resolved = await args.db
    .select({ id: alerts.id, kind: alerts.kind, subject: alerts.subject })
    .from(alerts)
    .where(open);
  if (!resolved.length) return 0;
  await args.db.batch([
    args.db.update(alerts).set({ resolvedAt: now, retryAt: null }).where(open),
    auditInsert(args.db, args.audit, {
      action: "alerts.resolve",
      target: "alerts",
      after: { alerts: resolved },
    }),
  ]);
  return resolved.length;
}
