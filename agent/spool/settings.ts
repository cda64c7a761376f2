import { CHUNK_LIMITS } from "../../protocol/wire";

/** Every spool knob with its default; docs/spool.md explains each. */
export interface SpoolSettings {
  /** How often buffered records are written and fsynced: the crash window. */
  syncIntervalMs: number;
  maxChunkRecords: number;
  /** Inflated NDJSON bytes per chunk. */
  maxChunkBytes: number;
  maxChunkAgeMs: number;
  maxChunkGzipBytes: number;
  /** Disk the spool may use (segments, pending and quarantined chunks); the oldest are dropped past it. */
  quotaBytes: number;
  /** Records waiting in memory for the next sync; only a stuck disk fills it, then the oldest are dropped. */
  maxBufferedBytes: number;
  uploadConcurrency: number;
  /** Upload starts per second, so a backlog after an outage drains without a thundering herd. */
  maxUploadsPerSecond: number;
  uploadTimeoutMs: number;
  backoffBaseMs: number;
  backoffCapMs: number;
  nodeUnknownRetryMs: number;
}

export const DEFAULT_SPOOL_SETTINGS: SpoolSettings = {
  syncIntervalMs: 200,
  maxChunkRecords: 5_000,
  maxChunkBytes: 4 * 1024 * 1024,
  maxChunkAgeMs: 10_000,
  maxChunkGzipBytes: CHUNK_LIMITS.maxGzipBytes,
  quotaBytes: 1024 * 1024 * 1024,
  maxBufferedBytes: 32 * 1024 * 1024,
  uploadConcurrency: 2,
  maxUploadsPerSecond: 5,
  uploadTimeoutMs: 60_000,
  backoffBaseMs: 1_000,
  backoffCapMs: 60_000,
  nodeUnknownRetryMs: 5 * 60_000,
};

/** Defaults, then overrides, kept inside the master's hard chunk limits. */
export function resolveSpoolSettings(overrides: Partial<SpoolSettings> = {}): SpoolSettings {
  const s = { ...DEFAULT_SPOOL_SETTINGS, ...definedOnly(overrides) };
  return {
    ...s,
    syncIntervalMs: clamp(s.syncIntervalMs, 1, 60_000),
    maxChunkRecords: clamp(s.maxChunkRecords, 1, CHUNK_LIMITS.maxRecords),
    maxChunkBytes: clamp(s.maxChunkBytes, 1024, CHUNK_LIMITS.maxInflatedBytes),
    maxChunkGzipBytes: clamp(s.maxChunkGzipBytes, 1024, CHUNK_LIMITS.maxGzipBytes),
    maxChunkAgeMs: clamp(s.maxChunkAgeMs, 1, 24 * 3_600_000),
    quotaBytes: Math.max(1, s.quotaBytes),
    uploadConcurrency: clamp(s.uploadConcurrency, 1, 16),
    maxUploadsPerSecond: clamp(s.maxUploadsPerSecond, 0.01, 1_000),
  };
}

const ENV_KNOBS: Record<string, keyof SpoolSettings> = {
  FLEETGATE_SPOOL_SYNC_MS: "syncIntervalMs",
  FLEETGATE_SPOOL_CHUNK_RECORDS: "maxChunkRecords",
  FLEETGATE_SPOOL_CHUNK_BYTES: "maxChunkBytes",
  FLEETGATE_SPOOL_CHUNK_AGE_MS: "maxChunkAgeMs",
  FLEETGATE_SPOOL_QUOTA_BYTES: "quotaBytes",
  FLEETGATE_SPOOL_UPLOAD_CONCURRENCY: "uploadConcurrency",
  FLEETGATE_SPOOL_UPLOADS_PER_SECOND: "maxUploadsPerSecond",
};

/**
 * Node-local overrides from the environment (`FLEETGATE_SPOOL_QUOTA_BYTES=512M`); unreadable values
 * are reported and ignored rather than stopping the proxy.
 */
export function spoolSettingsFromEnv(
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void = () => undefined,
): Partial<SpoolSettings> {
  const out: Partial<SpoolSettings> = {};
  for (const [name, key] of Object.entries(ENV_KNOBS)) {
    const raw = env[name];
    if (raw === undefined || raw === "") continue;
    const value = parseAmount(raw);
    if (value === null) warn(`${name}=${raw} is not a number: using the default`);
    else out[key] = value;
  }
  return out;
}

/**
 * What `run` uses: the `spool` block of config.json, with any `FLEETGATE_SPOOL_*` environment
 * variable on top (the environment wins), then defaults for whatever neither sets.
 */
export function nodeSpoolSettings(
  fromConfig: Partial<SpoolSettings> | undefined,
  env: NodeJS.ProcessEnv,
  warn: (message: string) => void = () => undefined,
): Partial<SpoolSettings> {
  return { ...definedOnly(fromConfig ?? {}), ...spoolSettingsFromEnv(env, warn) };
}

function parseAmount(raw: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?)?\s*$/i.exec(raw);
  if (!match) return null;
  const unit = (match[2] ?? "").toLowerCase()[0];
  const scale = unit === "k" ? 1024 : unit === "m" ? 1024 ** 2 : unit === "g" ? 1024 ** 3 : 1;
  return Number(match[1]) * scale;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
