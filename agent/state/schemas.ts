import { z } from "zod";
import { CHUNK_LIMITS, MasterKey, ProxyKind, SpoolFigures } from "../../protocol/wire";
import { SquidConfig } from "../proxy/squid/settings";

const MIB = 1024 * 1024;

/**
 * The node's log spool settings (docs/spool.md, Configuration), each optional: unset means the
 * default, and a `FLEETGATE_SPOOL_*` environment variable overrides the value set here. Strict, so
 * a misspelt key is an error rather than a setting silently not applied.
 */
export const SpoolConfig = z.strictObject({
  syncIntervalMs: z.number().int().min(1).max(60_000).optional(),
  maxChunkRecords: z.number().int().min(1).max(CHUNK_LIMITS.maxRecords).optional(),
  maxChunkBytes: z.number().int().min(1024).max(CHUNK_LIMITS.maxInflatedBytes).optional(),
  maxChunkAgeMs: z
    .number()
    .int()
    .min(1)
    .max(24 * 3_600_000)
    .optional(),
  quotaBytes: z.number().int().min(MIB).optional(),
  uploadConcurrency: z.number().int().min(1).max(16).optional(),
  maxUploadsPerSecond: z.number().min(0.01).max(1_000).optional(),
});
export type SpoolConfig = z.infer<typeof SpoolConfig>;

const timeoutMs = (max: number) => z.number().int().min(100).max(max).optional();

/**
 * The built-in proxy's limits and timeouts (docs/proxy.md, Limits and timeouts), each optional:
 * unset means `PROXY_DEFAULTS`. Strict, like `spool`, so a misspelt key stops `run`.
 */
export const ProxyConfig = z.strictObject({
  headerTimeoutMs: timeoutMs(3_600_000),
  bodyTimeoutMs: timeoutMs(3_600_000),
  tunnelIdleTimeoutMs: timeoutMs(7 * 24 * 3_600_000),
  idleTimeoutMs: timeoutMs(3_600_000),
  connectTimeoutMs: timeoutMs(600_000),
  upstreamTimeoutMs: timeoutMs(3_600_000),
  maxConnections: z.number().int().min(1).max(1_000_000).optional(),
});
export type ProxyConfig = z.infer<typeof ProxyConfig>;

/**
 * Node-local settings (SafeSquid's "startup params"). Written by `enroll`, never synced from the master.
 * `nodeId` is null between a first enroll attempt and its success, so a retried enroll re-uses the
 * same instanceId and the master answers with the same node.
 */
/** The opt-in Prometheus endpoint (docs/agent.md, Metrics): off without `listen`. */
export const MetricsConfig = z.strictObject({
  listen: z.string().min(3).optional(),
  /** Without it, only a loopback `listen` is accepted. */
  allowRemote: z.boolean().optional(),
});

export const NodeConfig = z.object({
  masterUrl: z.string().url(),
  listen: z.string().min(3),
  driver: ProxyKind,
  hostname: z.string().min(1),
  instanceId: z.string().min(8),
  nodeId: z.string().nullable(),
  pollWaitSeconds: z.number().int().min(0).max(55).default(25),
  enrolledAt: z.string().nullable().default(null),
  spool: SpoolConfig.optional(),
  proxy: ProxyConfig.optional(),
  /** The Squid driver's paths and helper settings (docs/squid.md, Settings). */
  squid: SquidConfig.optional(),
  metrics: MetricsConfig.optional(),
});
export type NodeConfig = z.infer<typeof NodeConfig>;

export const Credentials = z.object({
  nodeToken: z.string().min(1),
  masterKey: MasterKey,
  /** The next signing key, announced in a bundle signed by `masterKey`: trusted too until it takes over. */
  nextMasterKey: MasterKey.optional(),
});
export type Credentials = z.infer<typeof Credentials>;

/** The keys a bundle may be signed by: the pin, and during a rotation the announced next key. */
export function trustedKeys(credentials: Credentials): MasterKey[] {
  return credentials.nextMasterKey
    ? [credentials.masterKey, credentials.nextMasterKey]
    : [credentials.masterKey];
}

/** What a running agent enforces right now; written by `run`, read by `status`. */
export const RuntimeState = z.object({
  pid: z.number().int(),
  startedAt: z.string(),
  updatedAt: z.string(),
  enforcing: z.enum(["policy", "fail-closed"]),
  appliedVersion: z.number().int().nullable(),
  appliedHash: z.string().nullable(),
  appliedAt: z.string().nullable(),
  lastContactAt: z.string().nullable(),
  lastError: z.string().nullable(),
  lastRefusal: z.string().nullable().default(null),
  master: z.enum(["connecting", "ok", "unreachable", "node-unknown"]),
  listen: z.string(),
  proxyKind: ProxyKind,
  proxyVersion: z.string(),
  spool: SpoolFigures,
});
export type RuntimeState = z.infer<typeof RuntimeState>;
