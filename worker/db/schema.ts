// The D1 schema, one table after another (drizzle). One file past 300 lines on purpose: drizzle-kit
// reads it whole, and a reader sees every table and index of the database in one place.
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

// Timestamps are epoch milliseconds in INTEGER columns; ids a person sees carry a prefix.
const now = sql`(unixepoch('subsec') * 1000)`;

export const apiTokens = sqliteTable(
  "api_tokens",
  {
    id: text("id").primaryKey(), // tok_…
    name: text("name").notNull(),
    role: text("role", { enum: ["admin", "viewer"] }).notNull(),
    tokenHash: text("token_hash").notNull(),
    prefix: text("prefix").notNull(),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull().default(now),
    expiresAt: integer("expires_at"),
    lastUsedAt: integer("last_used_at"),
    revokedAt: integer("revoked_at"),
    /** The user this token acts for (creator, or the creating token's owner); null: bootstrap. */
    ownerUserId: text("owner_user_id"),
  },
  (t) => [
    uniqueIndex("api_tokens_hash_idx").on(t.tokenHash),
    index("api_tokens_owner_idx").on(t.ownerUserId),
  ],
);

export const enrollmentKeys = sqliteTable(
  "enrollment_keys",
  {
    id: text("id").primaryKey(), // key_…
    name: text("name").notNull(),
    keyHash: text("key_hash").notNull(),
    prefix: text("prefix").notNull(),
    maxUses: integer("max_uses"),
    uses: integer("uses").notNull().default(0),
    expiresAt: integer("expires_at"),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull().default(now),
    lastUsedAt: integer("last_used_at"),
    revokedAt: integer("revoked_at"),
    /** Nodes enrolled with this key join this site (sites.name). */
    site: text("site"),
  },
  (t) => [uniqueIndex("enrollment_keys_hash_idx").on(t.keyHash)],
);

export const nodes = sqliteTable(
  "nodes",
  {
    id: text("id").primaryKey(), // node_…
    instanceId: text("instance_id").notNull(),
    hostname: text("hostname").notNull(),
    tokenHash: text("token_hash").notNull(),
    enrollmentKeyId: text("enrollment_key_id"),
    enrolledAt: integer("enrolled_at").notNull(),
    agentVersion: text("agent_version").notNull(),
    proxyKind: text("proxy_kind").notNull(),
    proxyListen: text("proxy_listen"),
    proxyVersion: text("proxy_version"),
    lastSeenAt: integer("last_seen_at"),
    lastAddress: text("last_address"),
    appliedVersion: integer("applied_version"),
    appliedHash: text("applied_hash"),
    syncState: text("sync_state", { enum: ["applied", "rejected"] }),
    lastError: text("last_error"),
    lastErrorAt: integer("last_error_at"),
    lastStatusAt: integer("last_status_at"),
    uptimeSeconds: integer("uptime_seconds"),
    spool: text("spool", { mode: "json" }),
    revokedAt: integer("revoked_at"),
    /** Until then (epoch ms) one re-enrollment without the node's token is allowed (admin restore). */
    reenrollUntil: integer("reenroll_until"),
    /** sites.name; set at enrollment from the key, changed by an admin. */
    site: text("site"),
    /** When the node got its site: the signed site assertion carries it (docs/fleet.md). */
    siteSince: integer("site_since"),
    /** host:port clients use for this node in PAC files; null: derived from proxyListen. */
    publicAddress: text("public_address"),
  },
  (t) => [
    uniqueIndex("nodes_instance_idx").on(t.instanceId),
    uniqueIndex("nodes_token_idx").on(t.tokenHash),
    index("nodes_site_idx").on(t.site),
  ],
);

export const nodeEvents = sqliteTable(
  "node_events",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    nodeId: text("node_id").notNull(),
    at: integer("at").notNull(),
    type: text("type").notNull(),
    version: integer("version"),
    detail: text("detail"),
  },
  (t) => [index("node_events_node_at_idx").on(t.nodeId, t.at), index("node_events_at_idx").on(t.at)],
);

export const policyVersions = sqliteTable("policy_versions", {
  version: integer("version").primaryKey(),
  hash: text("hash").notNull(),
  size: integer("size").notNull(), // characters of canonical JSON, kept in policy_chunks
  chunks: integer("chunks").notNull(),
  issuedAt: text("issued_at").notNull(),
  kid: text("kid").notNull(),
  signature: text("signature").notNull(),
  message: text("message").notNull(),
  createdBy: text("created_by").notNull(),
  rollbackOf: integer("rollback_of"),
  createdAt: integer("created_at").notNull().default(now),
  /** The series: bundles order by (generation, version); a new series follows a restore or a key switch. */
  generation: integer("generation").notNull().default(0),
  /** Signature over the v2 message (generation and next key included); null before migration 0007. */
  signatureV2: text("signature_v2"),
  /** JSON {kid, publicKey} of the announced next signing key, or null. */
  nextKey: text("next_key"),
});

// A policy's canonical JSON, exactly what was hashed, split to stay under D1's row size limit.
export const policyChunks = sqliteTable(
  "policy_chunks",
  {
    version: integer("version").notNull(),
    seq: integer("seq").notNull(),
    data: text("data").notNull(),
  },
  (t) => [primaryKey({ columns: [t.version, t.seq] })],
);

export const settings = sqliteTable("settings", {
  key: text("key").primaryKey(),
  value: text("value", { mode: "json" }).notNull(),
  updatedAt: integer("updated_at").notNull().default(now),
  updatedBy: text("updated_by"),
});

export const auditLog = sqliteTable(
  "audit_log",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    at: integer("at").notNull(),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    target: text("target"),
    before: text("before", { mode: "json" }),
    after: text("after", { mode: "json" }),
    requestId: text("request_id"),
    address: text("address"),
  },
  (t) => [
    index("audit_log_at_idx").on(t.at),
    // The audit page's filters (services/audit-search.ts), newest first: each walks its own index.
    index("audit_log_actor_idx").on(t.actor, t.id),
    index("audit_log_action_idx").on(t.action, t.id),
    index("audit_log_target_idx").on(t.target, t.id),
  ],
);

// Fixed-window counters (enrollment attempts per address, later login attempts).
export const rateLimits = sqliteTable("rate_limits", {
  key: text("key").primaryKey(),
  windowStart: integer("window_start").notNull(),
  count: integer("count").notNull(),
});

// Dashboard identities. Passwords are PBKDF2-SHA256 (protocol/policy/password.ts format).
export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(), // usr_…
    name: text("name").notNull(),
    email: text("email"),
    role: text("role", { enum: ["admin", "viewer"] }).notNull(),
    passwordHash: text("password_hash"),
    createdAt: integer("created_at").notNull(),
    createdBy: text("created_by").notNull(),
    disabledAt: integer("disabled_at"),
    failedLogins: integer("failed_logins").notNull().default(0),
    lockedUntil: integer("locked_until"),
    lastLoginAt: integer("last_login_at"),
  },
  (t) => [uniqueIndex("users_name_idx").on(t.name), index("users_email_idx").on(t.email)],
);

// Dashboard sessions: the cookie carries a random id, only its SHA-256 is stored.
export const sessions = sqliteTable(
  "sessions",
  {
    idHash: text("id_hash").primaryKey(),
    userId: text("user_id").notNull(),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    lastSeenAt: integer("last_seen_at").notNull(),
    address: text("address"),
    userAgent: text("user_agent"),
  },
  (t) => [index("sessions_user_idx").on(t.userId), index("sessions_expires_idx").on(t.expiresAt)],
);

// One row per accepted access-log chunk: the idempotency key (node, epoch, seq) and what it
// covered, for duplicate detection and gap reports. Raw records are never stored in D1.
export const logChunks = sqliteTable(
  "log_chunks",
  {
    nodeId: text("node_id").notNull(),
    epoch: text("epoch").notNull(),
    seq: integer("seq").notNull(),
    records: integer("records").notNull(),
    firstTs: integer("first_ts").notNull(),
    lastTs: integer("last_ts").notNull(),
    receivedAt: integer("received_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.nodeId, t.epoch, t.seq] }), index("log_chunks_last_ts_idx").on(t.lastTs)],
);

/**
 * Report rollups, one table so a chunk lands in a few json_each upserts. `kind` packs the
 * dimension and grain (see services/rollup-kinds.ts); per-action counts are columns, so a
 * (kind, node, bucket, key) is one row. Node "*" holds fleet-wide sums so fleet reports never
 * scan per-node rows; per-node rows exist at minute/hour grain, fleet rows also per day. After
 * 48 h a node's dimension rows are compacted into day rows and its minute rows dropped; every
 * node-hour and day keeps its top keys per dimension, the rest summed under `(other)`.
 */
export const rollups = sqliteTable(
  "rollups",
  {
    kind: integer("kind").notNull(),
    nodeId: text("node_id").notNull(),
    bucket: integer("bucket").notNull(),
    key: text("key").notNull(),
    requests: integer("requests").notNull(),
    blocked: integer("blocked").notNull(),
    auth: integer("auth").notNull(),
    errors: integer("errors").notNull(),
    bytesIn: integer("bytes_in").notNull(),
    bytesOut: integer("bytes_out").notNull(),
  },
  (t) => [primaryKey({ columns: [t.kind, t.nodeId, t.bucket, t.key] })],
);

// Ledger rows older than 48 h, collapsed into runs of consecutive chunk ids (node, epoch): what
// duplicate detection and gap reports need, at a few rows per node-day (services/rollup-compact.ts).
export const logChunkRuns = sqliteTable(
  "log_chunk_runs",
  {
    nodeId: text("node_id").notNull(),
    epoch: text("epoch").notNull(),
    firstSeq: integer("first_seq").notNull(),
    lastSeq: integer("last_seq").notNull(),
    records: integer("records").notNull(),
    firstTs: integer("first_ts").notNull(),
    lastTs: integer("last_ts").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.nodeId, t.epoch, t.firstSeq] }),
    index("log_chunk_runs_last_ts_idx").on(t.lastTs),
  ],
);

// One row: reports read day rows before `compactedBefore` (advanced before each compaction run).
export const reportState = sqliteTable("report_state", {
  id: integer("id").primaryKey(),
  compactedBefore: integer("compacted_before").notNull(),
});

/**
 * Raw chunks archived in R2, one row per accepted chunk (same D1 batch as its ledger row). The
 * R2 key is derived from (firstTs, nodeId, epoch, seq); `id` is the acceptance order the export
 * cursor follows. Request search reads only the chunks this index names for its window.
 */
export const logArchive = sqliteTable(
  "log_archive",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    nodeId: text("node_id").notNull(),
    epoch: text("epoch").notNull(),
    seq: integer("seq").notNull(),
    firstTs: integer("first_ts").notNull(),
    lastTs: integer("last_ts").notNull(),
    records: integer("records").notNull(),
    bytes: integer("bytes").notNull(), // gzip bytes in R2
    /** Max over records of (newest ts before it − its ts): 0 when the chunk is in time order. */
    lagMs: integer("lag_ms").notNull(),
    /**
     * The flush's R2 object holding this chunk's gzip at `offset` (`bytes` long), one object per
     * coalescer flush; null for a chunk archived as its own object (`archiveKey`) before 0009.
     */
    object: text("object"),
    offset: integer("offset"),
  },
  (t) => [
    index("log_archive_first_ts_idx").on(t.firstTs),
    index("log_archive_wide_idx").on(t.lastTs).where(sql`${t.lastTs} - ${t.firstTs} > 3600000`),
  ],
);

/** Alerts sent (or tried) to the webhook; one open row per kind and subject (services/alerts.ts). */
export const alerts = sqliteTable(
  "alerts",
  {
    id: text("id").primaryKey(), // alr_…
    kind: text("kind").notNull(),
    subject: text("subject").notNull(),
    summary: text("summary").notNull(),
    details: text("details", { mode: "json" }).notNull(),
    firedAt: integer("fired_at").notNull(),
    lastSeenAt: integer("last_seen_at").notNull(),
    resolvedAt: integer("resolved_at"),
    /** "sent", "failed" or "off" (no webhook configured, or the kind switched off). */
    delivery: text("delivery", { enum: ["sent", "failed", "off"] }).notNull(),
    deliveredAt: integer("delivered_at"),
    deliveryError: text("delivery_error"),
    /** Delivery tries so far (services/alert-delivery.ts). */
    attempts: integer("attempts").notNull().default(1),
    /** When the next try of a failed delivery is due; null when none is (sent, off, given up). */
    retryAt: integer("retry_at"),
  },
  (t) => [
    uniqueIndex("alerts_open_idx").on(t.kind, t.subject).where(sql`${t.resolvedAt} is null`),
    index("alerts_fired_idx").on(t.firedAt),
    index("alerts_retry_idx").on(t.retryAt).where(sql`${t.retryAt} is not null`),
  ],
);

/** A site: a branch office or data centre; nodes belong to one (docs/fleet.md). */
export const sites = sqliteTable("sites", {
  name: text("name").primaryKey(),
  description: text("description").notNull().default(""),
  settings: text("settings", { mode: "json" }).notNull().$type<{ bypass: string[]; allowDirect: boolean }>(),
  createdBy: text("created_by").notNull(),
  createdAt: integer("created_at").notNull().default(now),
  updatedAt: integer("updated_at").notNull().default(now),
});

/** A staged rollout of one published version: a ring first, the rest after the soak (docs/fleet.md). */
export const rollouts = sqliteTable(
  "rollouts",
  {
    id: text("id").primaryKey(), // ro_…
    state: text("state", { enum: ["pending", "soaking", "promoted", "halted", "rolled-back"] }).notNull(),
    fromVersion: integer("from_version"),
    fromHash: text("from_hash"),
    fromGeneration: integer("from_generation"),
    toVersion: integer("to_version"),
    toHash: text("to_hash"),
    ring: text("ring", { mode: "json" }).notNull(),
    ringNodes: text("ring_nodes", { mode: "json" }).notNull().$type<string[]>(),
    soakSeconds: integer("soak_seconds").notNull(),
    gates: text("gates", { mode: "json" }).notNull(),
    startedAt: integer("started_at").notNull(),
    startedBy: text("started_by").notNull(),
    ringAppliedAt: integer("ring_applied_at"),
    endedAt: integer("ended_at"),
    endedBy: text("ended_by"),
    reason: text("reason"),
    rollbackVersion: integer("rollback_version"),
    figures: text("figures", { mode: "json" }),
  },
  (t) => [index("rollouts_started_idx").on(t.startedAt)],
);
