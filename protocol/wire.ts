// Agent protocol v1 wire schemas. The master validates requests with these and the agent
// parses responses with the same imports, so both sides cannot drift apart.
import { z } from "zod";
import { SiteAssertion } from "./site";

export const PROTOCOL_PREFIX = "/api/agent/v1";
export const MAX_POLL_WAIT_SECONDS = 55;

/** Every 4xx/5xx body from the master, agent protocol and admin API alike. */
export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    requestId: z.string(),
    /** Validation failures: each JSON path and what is wrong with it. */
    details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBody>;

const AGENT_PRODUCT = "fleetgate-agent";
const AGENT_UA = /^fleetgate-agent\/(\S{1,64})/;

/** The User-Agent every agent request carries: `fleetgate-agent/<version>`. */
export function agentUserAgent(version: string): string {
  return `${AGENT_PRODUCT}/${version}`;
}

/** The agent version in a User-Agent built by agentUserAgent; undefined for any other client. */
export function agentVersionFromUserAgent(userAgent: string | null | undefined): string | undefined {
  return AGENT_UA.exec(userAgent ?? "")?.[1];
}

export const ProxyKind = z.enum(["builtin", "squid"]);
export type ProxyKind = z.infer<typeof ProxyKind>;

const shortText = (max: number) => z.string().trim().min(1).max(max);

export const EnrollRequest = z.strictObject({
  enrollmentKey: shortText(200),
  instanceId: z.string().regex(/^[A-Za-z0-9._:-]{8,128}$/, "8–128 of A–Z a–z 0–9 . _ : -"),
  hostname: shortText(253),
  agentVersion: shortText(64),
  proxyKind: ProxyKind,
});
export type EnrollRequest = z.infer<typeof EnrollRequest>;

export const MasterKey = z.object({
  kid: z.string(),
  alg: z.literal("Ed25519"),
  publicKey: z.string(),
});
export type MasterKey = z.infer<typeof MasterKey>;

export const EnrollResponse = z.object({
  nodeId: z.string(),
  nodeToken: z.string(),
  masterKey: MasterKey,
  pollWaitSeconds: z.number().int().min(0).max(MAX_POLL_WAIT_SECONDS),
  /** The node's site, signed (protocol/site.ts); agents that predate sites ignore it. */
  site: SiteAssertion.optional(),
});
export type EnrollResponse = z.infer<typeof EnrollResponse>;

const Signature = z.object({ kid: z.string(), sig: z.string() });

/**
 * `signature` signs the v1 message (version, issuedAt, hash) for agents that predate v2;
 * `signatureV2` also covers `generation` (the series, see docs/architecture.md) and `nextKey` (a
 * signing-key rotation announced by the current key). Agents that know v2 judge by it alone.
 */
export const PolicyBundle = z.object({
  version: z.number().int().positive(),
  hash: z.string(),
  issuedAt: z.string(),
  policy: z.record(z.string(), z.unknown()),
  signature: Signature,
  generation: z.number().int().min(0).optional(),
  nextKey: MasterKey.optional(),
  signatureV2: Signature.optional(),
});
export type PolicyBundle = z.infer<typeof PolicyBundle>;

/** What names one signed bundle: a new series may republish unchanged content (same hash). */
export interface BundleName {
  generation?: number | undefined;
  version: number;
  hash: string;
}

/**
 * The bundle's entity tag (ETag / If-None-Match): `<generation>.<version>.<hash>`, so a new
 * series or a key rotation that republishes the same content is still news to a node holding it.
 */
export function bundleTag(bundle: BundleName): string {
  return `${bundle.generation ?? 0}.${bundle.version}.${bundle.hash}`;
}

/** Whether an If-None-Match value names `bundle`: its tag, or (agents before tags) its hash alone. */
export function tagNames(tag: string | null, bundle: BundleName): boolean {
  return tag !== null && (tag === bundleTag(bundle) || tag === bundle.hash);
}

/** True for a tag as bundleTag writes it; a master before tags sends the bare hash. */
export function isBundleTag(tag: string): boolean {
  return /^\d{1,16}\.\d{1,12}\.[^.\s"]{1,128}$/.test(tag);
}

export const SpoolFigures = z.strictObject({
  pendingChunks: z.number().int().min(0),
  pendingBytes: z.number().int().min(0),
  oldestPendingAt: z.string().max(40).nullable(),
  droppedRecords: z.number().int().min(0),
  quarantinedChunks: z.number().int().min(0).optional(),
});
export type SpoolFigures = z.infer<typeof SpoolFigures>;

export const StatusReport = z.strictObject({
  appliedVersion: z.number().int().min(0).nullable(),
  appliedHash: z.string().max(100).nullable(),
  state: z.enum(["applied", "rejected"]),
  error: z.string().max(2000).optional(),
  proxy: z.strictObject({
    kind: ProxyKind,
    listen: z.string().max(300),
    version: z.string().max(100),
  }),
  spool: SpoolFigures,
  agentVersion: shortText(64),
  uptimeSeconds: z.number().min(0),
});
export type StatusReport = z.infer<typeof StatusReport>;

/**
 * The longest text the master accepts per access-log field (UTF-16 units, as zod counts). The
 * agent truncates to these where it builds a record (`clipLogText`), since one record over a limit
 * makes the master refuse its whole chunk.
 */
export const LOG_FIELD_MAX = {
  ts: 40,
  client: 64,
  user: 200,
  method: 32,
  host: 260,
  path: 4096,
  rule: 200,
  sni: 260,
  requestId: 100,
} as const;

export const LogRecord = z.strictObject({
  ts: z.string().max(LOG_FIELD_MAX.ts),
  client: z.string().max(LOG_FIELD_MAX.client),
  user: z.string().max(LOG_FIELD_MAX.user).optional(),
  method: z.string().max(LOG_FIELD_MAX.method),
  scheme: z.enum(["http", "connect"]),
  host: z.string().max(LOG_FIELD_MAX.host),
  port: z.number().int().min(0).max(65535),
  path: z.string().max(LOG_FIELD_MAX.path).optional(),
  status: z.number().int().min(0).max(999),
  action: z.enum(["allow", "block", "auth", "error"]),
  rule: z.string().max(LOG_FIELD_MAX.rule).optional(),
  /** CONNECT: the TLS server name from the client's ClientHello (never decrypted). */
  sni: z.string().max(LOG_FIELD_MAX.sni).optional(),
  /** CONNECT: the ClientHello carried an encrypted_client_hello extension (the inner name is hidden). */
  ech: z.boolean().optional(),
  bytesIn: z.number().int().min(0),
  bytesOut: z.number().int().min(0),
  durationMs: z.number().min(0),
  requestId: z.string().max(LOG_FIELD_MAX.requestId),
});
export type LogRecord = z.infer<typeof LogRecord>;

/** `text` cut to at most `max` UTF-16 units, never between the two halves of a surrogate pair. */
export function clipLogText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

export const LogChunkAnswer = z.object({
  accepted: z.number().int(),
  duplicate: z.boolean(),
  /** What the counts came from: the node's tally, or the records (no tally, or one refused). */
  counted: z.enum(["tally", "records"]).optional(),
  /** Why the tally sent with this chunk was not used (its JSON path and the rule it broke). */
  tallyRefused: z.string().optional(),
});
export type LogChunkAnswer = z.infer<typeof LogChunkAnswer>;

export const CHUNK_LIMITS = {
  maxGzipBytes: 1024 * 1024,
  maxInflatedBytes: 16 * 1024 * 1024,
  maxRecords: 50_000,
} as const;
