import { desc, eq } from "drizzle-orm";
import type { EnrollRequest } from "../../protocol/wire";
import type { Db } from "../db/client";
import { enrollmentKeys, nodes } from "../db/schema";
import { AppError } from "../errors";
import { type AuditedWrite, auditInsert } from "./audit";
import { displayPrefix, hashSecret, newId, newSecret } from "./secrets";
import { getSite } from "./sites";

export interface CreateEnrollmentKeyInput {
  name: string;
  maxUses?: number | null;
  expiresAt?: number | null;
  /** Nodes enrolled with this key join this site. */
  site?: string | null;
}

function publicKey(row: typeof enrollmentKeys.$inferSelect) {
  const { keyHash: _hash, ...rest } = row;
  return rest;
}

export async function createEnrollmentKey({ db, input, actor: ctx }: AuditedWrite<CreateEnrollmentKeyInput>) {
  if (input.expiresAt != null && input.expiresAt <= Date.now()) {
    throw new AppError("VALIDATION_FAILED", "expiresAt must be in the future", [
      { path: "expiresAt", message: "in the past" },
    ]);
  }
  if (input.site) await getSite(db, input.site);
  const key = newSecret("fge");
  const row = {
    id: newId("key"),
    name: input.name,
    keyHash: await hashSecret(key),
    prefix: displayPrefix(key),
    maxUses: input.maxUses ?? null,
    uses: 0,
    expiresAt: input.expiresAt ?? null,
    createdBy: ctx.actor.id,
    createdAt: Date.now(),
    lastUsedAt: null,
    revokedAt: null,
    site: input.site ?? null,
  };
  await db.batch([
    db.insert(enrollmentKeys).values(row),
    auditInsert(db, ctx, { action: "enrollment-key.create", target: row.id, after: publicKey(row) }),
  ]);
  return { key, ...publicKey(row) };
}

export async function listEnrollmentKeys(db: Db) {
  const rows = await db.select().from(enrollmentKeys).orderBy(desc(enrollmentKeys.createdAt));
  return rows.map(publicKey);
}

export async function revokeEnrollmentKey({ db, input: { id }, actor: ctx }: AuditedWrite<{ id: string }>) {
  const [row] = await db.select().from(enrollmentKeys).where(eq(enrollmentKeys.id, id)).limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no enrollment key ${id}`);
  if (row.revokedAt !== null) return publicKey(row);
  const revokedAt = Date.now();
  await db.batch([
    db.update(enrollmentKeys).set({ revokedAt }).where(eq(enrollmentKeys.id, id)),
    auditInsert(db, ctx, { action: "enrollment-key.revoke", target: id }),
  ]);
  return publicKey({ ...row, revokedAt });
}

// A key is usable when it exists, is not revoked or expired and has uses left (?1 hash, ?2 now).
const KEY_USABLE = `k.key_hash = ?1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?2)
  AND (k.max_uses IS NULL OR k.uses < k.max_uses)`;

/** Why a key cannot be used, or null when it can. */
async function keyRefusal(db: Db, keyHash: string, now: number): Promise<AppError | null> {
  const [row] = await db.select().from(enrollmentKeys).where(eq(enrollmentKeys.keyHash, keyHash)).limit(1);
  const why = !row
    ? "unknown enrollment key"
    : row.revokedAt !== null
      ? "enrollment key revoked"
      : row.expiresAt !== null && row.expiresAt <= now
        ? "enrollment key expired"
        : row.maxUses !== null && row.uses >= row.maxUses
          ? "enrollment key has no uses left"
          : null;
  return why ? new AppError("ENROLLMENT_KEY_INVALID", why) : null;
}

const isUniqueViolation = (error: unknown) =>
  /UNIQUE|PRIMARY KEY|constraint/i.test(String((error as Error)?.message));

/**
 * Enrolls a node. A new instanceId gets a new node; an existing one keeps its nodeId and gets a
 * fresh token only with proof of identity: the node's current token (`proofToken`) or an open
 * admin restore window. A revoked node stays revoked until an admin restores it.
 *
 * The node write, the key's use and the event are one D1 batch whose later statements only act
 * when the node row carries the new token, so a refused or raced enrollment uses no key.
 */
export async function enrollNode(
  db: Db,
  input: EnrollRequest,
  address: string | null,
  proofToken: string | null = null,
) {
  const now = Date.now();
  const keyHash = await hashSecret(input.enrollmentKey);
  const [existing] = await db.select().from(nodes).where(eq(nodes.instanceId, input.instanceId)).limit(1);
  if (existing?.revokedAt != null) {
    throw new AppError(
      "FORBIDDEN",
      "this node was revoked; an admin must restore it before it can enroll again",
    );
  }
  const proofHash = proofToken ? await hashSecret(proofToken) : null;
  const proven =
    existing !== undefined &&
    ((proofHash !== null && proofHash === existing.tokenHash) ||
      (existing.reenrollUntil !== null && existing.reenrollUntil > now));
  if (existing && !proven) {
    throw new AppError(
      "CONFLICT",
      "this instanceId is already enrolled: re-enroll with the node's current token (Authorization: Bearer) or ask an admin to restore the node",
    );
  }
  const nodeToken = newSecret("fgn");
  const tokenHash = await hashSecret(nodeToken);
  const nodeId = existing?.id ?? newId("node");
  const d1 = db.$client;
  const write = existing
    ? d1
        .prepare(
          `UPDATE nodes SET hostname = ?3, token_hash = ?4, agent_version = ?5, proxy_kind = ?6,
             enrolled_at = ?2, last_seen_at = ?2, last_address = ?7, reenroll_until = NULL,
             enrollment_key_id = (SELECT k.id FROM enrollment_keys k WHERE ${KEY_USABLE})
           WHERE id = ?8 AND revoked_at IS NULL AND (token_hash = ?9 OR reenroll_until > ?2)
             AND EXISTS (SELECT 1 FROM enrollment_keys k WHERE ${KEY_USABLE})
           RETURNING id`,
        )
        .bind(
          keyHash,
          now,
          input.hostname,
          tokenHash,
          input.agentVersion,
          input.proxyKind,
          address,
          nodeId,
          proofHash ?? "",
        )
    : d1
        .prepare(
          `INSERT INTO nodes (id, instance_id, hostname, token_hash, enrollment_key_id, enrolled_at,
             agent_version, proxy_kind, last_seen_at, last_address, site, site_since)
           SELECT ?3, ?4, ?5, ?6, k.id, ?2, ?7, ?8, ?2, ?9, k.site, ?2 FROM enrollment_keys k WHERE ${KEY_USABLE}
           RETURNING id`,
        )
        .bind(
          keyHash,
          now,
          nodeId,
          input.instanceId,
          input.hostname,
          tokenHash,
          input.agentVersion,
          input.proxyKind,
          address,
        );
  const useKey = d1
    .prepare(
      `UPDATE enrollment_keys SET uses = uses + 1, last_used_at = ?1
       WHERE id = (SELECT enrollment_key_id FROM nodes WHERE token_hash = ?2)`,
    )
    .bind(now, tokenHash);
  const event = d1
    .prepare(
      `INSERT INTO node_events (node_id, at, type, detail)
       SELECT id, ?1, ?2, json_object('hostname', ?3, 'address', ?4, 'agentVersion', ?5, 'keyId', enrollment_key_id)
       FROM nodes WHERE token_hash = ?6`,
    )
    .bind(now, existing ? "re-enrolled" : "enrolled", input.hostname, address, input.agentVersion, tokenHash);
  let written: unknown[];
  try {
    const [result] = await d1.batch([write, useKey, event]);
    written = result?.results ?? [];
  } catch (error) {
    // A concurrent first enrollment of this instanceId won; this batch changed nothing.
    if (!existing && isUniqueViolation(error)) {
      throw new AppError(
        "CONFLICT",
        "this instanceId was enrolled by a concurrent request; re-enroll with the token that request received",
      );
    }
    throw error;
  }
  if (written.length === 0) {
    // The key is fine, so the node changed between our read and the batch (revoked, re-enrolled).
    throw (
      (await keyRefusal(db, keyHash, now)) ??
      new AppError("CONFLICT", "this node changed during enrollment (revoked or re-enrolled); try again")
    );
  }
  // A re-enrolled node keeps its site (an admin may have moved it); a new one has its key's.
  const [placed] = await db
    .select({ site: nodes.site, siteSince: nodes.siteSince })
    .from(nodes)
    .where(eq(nodes.id, nodeId))
    .limit(1);
  return {
    nodeId,
    nodeToken,
    reEnrolled: Boolean(existing),
    site: placed?.site ?? null,
    siteSince: placed?.siteSince ?? 0,
  };
}
