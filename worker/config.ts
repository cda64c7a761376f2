// Every deployment var and secret, read and validated once per env object (one per isolate in
// production; a test that passes its own env gets its own). Handlers read `config(c.env)`, never
// `c.env.X`; bindings (DB, LOG_ARCHIVE, the Durable Objects) stay on the env.
// A value that is not a number where one is needed fails the first request that reads the config,
// naming the var (logged by app.onError); an out-of-range number is clamped into its range.

import { z } from "zod";
import { MAX_POLL_WAIT_SECONDS } from "../protocol/wire";

export interface AccessConfig {
  /** `https://<team>.cloudflareaccess.com` */
  issuer: string;
  audience: string;
  admins: Set<string>;
  viewers: Set<string>;
}

/** The signing seeds: the current one, and during a rotation the one that signs next. */
export interface SigningSeeds {
  current: string | undefined;
  next?: string | undefined;
}

export interface Config {
  /** FLEETGATE_BOOTSTRAP_TOKEN; undefined means there is no bootstrap token at all. */
  bootstrapToken: string | undefined;
  signingSeeds: SigningSeeds;
  /** Seconds a node's long-poll is held open (POLL_WAIT_SECONDS, 0–55). */
  pollWaitSeconds: number;
  policyHubShards: number;
  /** Enrollment attempts per source address per 10 minutes. */
  enrollRateLimit: number;
  retentionDays: number;
  archiveRetentionDays: number;
  auditRetentionDays: number;
  ingestFlushMs: number;
  /** One in this many tallied chunks is also folded from its records and compared (0: none). */
  tallyVerifyEvery: number;
  /** The first pause before a failed alert delivery is tried again; it doubles per try. */
  alertRetryMs: number;
  session: { idleMs: number; maxAgeMs: number };
  /** Cloudflare Access SSO; null unless both ACCESS_TEAM_DOMAIN and ACCESS_AUD are set. */
  access: AccessConfig | null;
}

/** An integer var: unset or empty → the default; clamped into [min, max]. */
const intVar = (fallback: number, min: number, max: number) =>
  z
    .union([z.string(), z.number()])
    .optional()
    .transform((value, ctx) => {
      const text = String(value ?? "").trim();
      if (text === "") return fallback;
      if (!/^-?\d+$/.test(text)) {
        ctx.addIssue({ code: "custom", message: `must be an integer, got ${JSON.stringify(text)}` });
        return z.NEVER;
      }
      return Math.min(max, Math.max(min, Number.parseInt(text, 10)));
    });

const text = z
  .string()
  .optional()
  .transform((v) => v || undefined);

const listVar = (value: string | undefined) =>
  new Set(
    (value ?? "")
      .split(",")
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
  );

const EnvVars = z.object({
  FLEETGATE_BOOTSTRAP_TOKEN: text,
  FLEETGATE_SIGNING_KEY: text,
  FLEETGATE_NEXT_SIGNING_KEY: text,
  POLL_WAIT_SECONDS: intVar(25, 0, MAX_POLL_WAIT_SECONDS),
  POLICY_HUB_SHARDS: intVar(4, 1, 64),
  ENROLL_RATE_LIMIT: intVar(20, 1, 10_000),
  RETENTION_DAYS: intVar(90, 1, 3650),
  ARCHIVE_RETENTION_DAYS: intVar(30, 1, 3650),
  AUDIT_RETENTION_DAYS: intVar(365, 1, 3650),
  INGEST_FLUSH_MS: intVar(1000, 10, 600_000),
  TALLY_VERIFY_EVERY: intVar(16, 0, 1_000_000),
  ALERT_RETRY_MS: intVar(60_000, 100, 3_600_000),
  SESSION_IDLE_MINUTES: intVar(30, 1, 24 * 60),
  SESSION_MAX_HOURS: intVar(12, 1, 24 * 30),
  ACCESS_TEAM_DOMAIN: text,
  ACCESS_AUD: text,
  ACCESS_ADMINS: text,
  ACCESS_VIEWERS: text,
});

function accessFrom(vars: z.infer<typeof EnvVars>): AccessConfig | null {
  const team = vars.ACCESS_TEAM_DOMAIN?.trim();
  const audience = vars.ACCESS_AUD?.trim();
  if (!team || !audience) return null;
  const host = team.includes(".")
    ? team.replace(/^https?:\/\//, "").replace(/\/+$/, "")
    : `${team}.cloudflareaccess.com`;
  return {
    issuer: `https://${host}`,
    audience,
    admins: listVar(vars.ACCESS_ADMINS),
    viewers: listVar(vars.ACCESS_VIEWERS),
  };
}

/** Parses the vars or throws an Error that names each bad var. */
export function parseConfig(env: Record<string, unknown>): Config {
  const parsed = EnvVars.safeParse(env);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ");
    throw new Error(`invalid Worker configuration: ${issues}`);
  }
  const vars = parsed.data;
  return {
    bootstrapToken: vars.FLEETGATE_BOOTSTRAP_TOKEN,
    signingSeeds: { current: vars.FLEETGATE_SIGNING_KEY, next: vars.FLEETGATE_NEXT_SIGNING_KEY },
    pollWaitSeconds: vars.POLL_WAIT_SECONDS,
    policyHubShards: vars.POLICY_HUB_SHARDS,
    enrollRateLimit: vars.ENROLL_RATE_LIMIT,
    retentionDays: vars.RETENTION_DAYS,
    archiveRetentionDays: vars.ARCHIVE_RETENTION_DAYS,
    auditRetentionDays: vars.AUDIT_RETENTION_DAYS,
    ingestFlushMs: vars.INGEST_FLUSH_MS,
    tallyVerifyEvery: vars.TALLY_VERIFY_EVERY,
    alertRetryMs: vars.ALERT_RETRY_MS,
    session: { idleMs: vars.SESSION_IDLE_MINUTES * 60_000, maxAgeMs: vars.SESSION_MAX_HOURS * 3600_000 },
    access: accessFrom(vars),
  };
}

const cache = new WeakMap<object, Config>();

/** The validated configuration of this env object, parsed on first use. */
export function config(env: Env): Config {
  let found = cache.get(env);
  if (!found) {
    found = parseConfig(env as unknown as Record<string, unknown>);
    cache.set(env, found);
  }
  return found;
}
