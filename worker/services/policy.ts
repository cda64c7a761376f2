// Policy versions: validate, sign, store and serve bundles, and the write verbs on them (publish,
// rollback, new series). Kept in one file past ~300 lines because every write funnels into
// publishPolicy and shares its chunking, signing and bundle cache; reads and diffs live elsewhere.

import { asc, desc, eq, lt } from "drizzle-orm";
import { canonicalJson } from "../../protocol/canonical";
import { type Policy, validatePolicy } from "../../protocol/policy/schema";
import {
  importSigningKey,
  type NextKey,
  policyHash,
  type SigningKey,
  signBundle,
  signBundleV2,
} from "../../protocol/signing";
import { config, type SigningSeeds } from "../config";
import type { Db } from "../db/client";
import { policyChunks, policyVersions } from "../db/schema";
import { AppError } from "../errors";
import { type AuditContext, auditInsert } from "./audit";
import { assertKnownSites } from "./policy-sites";
import { assertNoActiveRollout } from "./rollout-active";

// ≤ 500k characters is ≤ 1.5 MB of UTF-8, under D1's 2 MB row limit.
const CHUNK_CHARS = 500_000;

/**
 * Splits text into pieces of at most `size` UTF-16 units, never between the two halves of a
 * surrogate pair: a lone half would be stored as U+FFFD and change the hashed text.
 */
export function splitChunks(text: string, size: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end -= 1;
    pieces.push(text.slice(start, end));
    start = end;
  }
  return pieces;
}

const cachedKeys = new Map<string, Promise<SigningKey>>();

export function signingKey(seed: string | undefined, name = "FLEETGATE_SIGNING_KEY"): Promise<SigningKey> {
  if (!seed) throw new AppError("NOT_CONFIGURED", `${name} is not set on the master`);
  let key = cachedKeys.get(seed);
  if (!key) {
    key = importSigningKey(seed);
    cachedKeys.set(seed, key);
    if (cachedKeys.size > 4) cachedKeys.delete(cachedKeys.keys().next().value!);
  }
  return key.catch(() => {
    cachedKeys.delete(seed);
    throw new AppError("NOT_CONFIGURED", `${name} is not a base64url 32-byte Ed25519 seed`);
  });
}

export type { SigningSeeds };

export function signingSeeds(env: Env): SigningSeeds {
  return config(env).signingSeeds;
}

async function announcedNextKey(seeds: SigningSeeds, current: SigningKey): Promise<NextKey | null> {
  if (!seeds.next) return null;
  const next = await signingKey(seeds.next, "FLEETGATE_NEXT_SIGNING_KEY");
  return next.kid === current.kid ? null : { kid: next.kid, publicKey: next.publicKey };
}

/** What POST /policy/validate answers: POLICY_INVALID (422) or unknown sites (400), with JSON paths. */
export async function checkPolicy(db: Db, input: unknown): Promise<Policy> {
  const policy = parsePolicy(input);
  await assertKnownSites(db, policy);
  return policy;
}

/** Validates or throws POLICY_INVALID with every issue and its JSON path. */
export function parsePolicy(input: unknown): Policy {
  const result = validatePolicy(input);
  if (!result.ok) {
    const first = result.issues[0]!;
    throw new AppError(
      "POLICY_INVALID",
      `${first.path || "policy"}: ${first.message}${result.issues.length > 1 ? ` (and ${result.issues.length - 1} more)` : ""}`,
      result.issues,
    );
  }
  return result.policy;
}

import type { PolicyHead } from "./policy-head";

export type { PolicyHead };

export async function latestHead(db: Db): Promise<PolicyHead | null> {
  const [row] = await db
    .select({
      version: policyVersions.version,
      hash: policyVersions.hash,
      generation: policyVersions.generation,
    })
    .from(policyVersions)
    .orderBy(desc(policyVersions.version))
    .limit(1);
  return row ?? null;
}

function versionMeta(row: typeof policyVersions.$inferSelect) {
  const { signature: _sig, signatureV2: _sig2, nextKey: _next, kid: _kid, chunks: _chunks, ...meta } = row;
  return meta;
}

/** The signed fields of a stored version beside version, hash and issuedAt, as the bundle carries them. */
function signedFields(row: typeof policyVersions.$inferSelect) {
  const fields: {
    generation: number;
    nextKey?: { kid: string; alg: "Ed25519"; publicKey: string };
    signatureV2?: { kid: string; sig: string };
  } = { generation: row.generation };
  if (row.nextKey) fields.nextKey = { alg: "Ed25519", ...(JSON.parse(row.nextKey) as NextKey) };
  if (row.signatureV2) fields.signatureV2 = { kid: row.kid, sig: row.signatureV2 };
  return fields;
}

export async function listVersions(db: Db, options: { limit: number; before?: number }) {
  const rows = await db
    .select()
    .from(policyVersions)
    .where(options.before ? lt(policyVersions.version, options.before) : undefined)
    .orderBy(desc(policyVersions.version))
    .limit(options.limit);
  return rows.map(versionMeta);
}

async function loadCanonical(db: Db, version: number, chunks: number): Promise<string> {
  const rows = await db
    .select({ data: policyChunks.data })
    .from(policyChunks)
    .where(eq(policyChunks.version, version))
    .orderBy(asc(policyChunks.seq));
  if (rows.length !== chunks) throw new Error(`policy version ${version} is missing chunks`);
  return rows.map((r) => r.data).join("");
}

// Versions never change once written, so an isolate keeps the last few bundles it served, keyed
// by version and checked by hash. The publishing isolate puts the new bundle here itself; a cold
// isolate loads it from D1 on its first miss. Only loaded bundles are shared between requests: a
// pending D1 read belongs to the request that started it (another request awaiting it would hang
// if the first were cancelled).
type CachedBundle = { text: string; hash: string };
const bundleCache = new Map<number, CachedBundle>();
const BUNDLE_CACHE_SIZE = 3;

function cacheBundle(version: number, bundle: CachedBundle) {
  bundleCache.delete(version);
  bundleCache.set(version, bundle);
  if (bundleCache.size > BUNDLE_CACHE_SIZE) bundleCache.delete(bundleCache.keys().next().value!);
}

/** The bundle text: the policy is spliced in as stored (its canonical JSON), never re-serialised. */
function assembleBundle(row: typeof policyVersions.$inferSelect, canonical: string): CachedBundle {
  const head = JSON.stringify({ version: row.version, hash: row.hash, issuedAt: row.issuedAt });
  const signature = JSON.stringify({ kid: row.kid, sig: row.signature });
  const v2 = JSON.stringify(signedFields(row)).slice(1, -1);
  return {
    text: `${head.slice(0, -1)},"policy":${canonical},"signature":${signature},${v2}}`,
    hash: row.hash,
  };
}

async function loadBundle(db: Db, version: number): Promise<CachedBundle | null> {
  const [row] = await db.select().from(policyVersions).where(eq(policyVersions.version, version)).limit(1);
  if (!row) return null;
  return assembleBundle(row, await loadCanonical(db, version, row.chunks));
}

/** The signed bundle of `version` as JSON text; from the isolate's cache when it holds it. */
export async function bundleText(db: Db, version: number, hash?: string): Promise<CachedBundle | null> {
  const cached = bundleCache.get(version);
  // A version number can name other content after a restore and a new series: the hash decides.
  if (cached && (hash === undefined || cached.hash === hash)) return cached;
  const bundle = await loadBundle(db, version);
  if (bundle) cacheBundle(version, bundle);
  return bundle;
}

export function cachedBundleVersions(): number[] {
  return [...bundleCache.keys()];
}

export async function getVersion(db: Db, version: number) {
  const [row] = await db.select().from(policyVersions).where(eq(policyVersions.version, version)).limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no policy version ${version}`);
  const policy = JSON.parse(await loadCanonical(db, version, row.chunks)) as Policy;
  return {
    ...versionMeta(row),
    signature: { kid: row.kid, sig: row.signature },
    ...signedFields(row),
    policy,
  };
}

// Audit rows must stay far below D1's 2 MB row limit: a policy is inlined up to 256 KB of
// canonical JSON; a larger one is referenced by its immutable version (GET
// /api/v1/policy/versions/:v and /api/v1/policy/diff show it in full).
const AUDIT_INLINE_CHARS = 256 * 1024;

async function auditedVersion(db: Db, version: number) {
  const [row] = await db
    .select({ hash: policyVersions.hash, size: policyVersions.size })
    .from(policyVersions)
    .where(eq(policyVersions.version, version))
    .limit(1);
  if (!row) return null;
  if (row.size > AUDIT_INLINE_CHARS) {
    return { version, hash: row.hash, size: row.size, policy: `stored as version ${version}` };
  }
  return { version, hash: row.hash, policy: (await getVersion(db, version)).policy };
}

/** What every policy write needs besides its input. */
export interface PolicyWrite {
  db: Db;
  /** The signing seeds (config(env).signingSeeds); a bare seed signs without announcing a next key. */
  seeds: SigningSeeds | string | undefined;
  /** Who asks, and from where: written to the audit log. */
  actor: AuditContext;
  /** Hands the new head to the PolicyHub shards so parked polls answer at once. */
  notify: (head: PolicyHead) => Promise<void>;
}

export interface PublishInput {
  policy: unknown;
  message: string;
  rollbackOf?: number;
  /**
   * Start a new series: a generation above every earlier one (the current time in ms, or one more
   * than the latest), published even when the content is unchanged. See `startSeries`.
   */
  newSeries?: boolean;
  /** Set only by services/rollout.ts, which publishes while its own rollout is active. */
  duringRollout?: boolean;
}

export interface PublishResult {
  version: number;
  hash: string;
  unchanged: boolean;
  generation: number;
}

/**
 * Validates, hashes, signs and stores a new immutable version. Publishing content identical
 * to the latest version creates nothing and answers that version.
 */
export async function publishPolicy({
  db,
  seeds,
  actor: ctx,
  notify,
  input,
}: PolicyWrite & { input: PublishInput }): Promise<PublishResult> {
  const policy = parsePolicy(input.policy);
  // A rollback or a rollout's own republish or a new series restores content nodes already ran: a site deleted
  // since must not block it (its rules then match no node, as they would have).
  if (!input.duringRollout && input.rollbackOf === undefined && !input.newSeries)
    await assertKnownSites(db, policy);
  if (!input.duringRollout) await assertNoActiveRollout(db);
  const keys = typeof seeds === "object" ? seeds : { current: seeds };
  const key = await signingKey(keys.current);
  const nextKey = await announcedNextKey(keys, key);
  const canonical = canonicalJson(policy);
  const hash = await policyHash(policy);
  for (let attempt = 0; attempt < 3; attempt++) {
    const head = await latestHead(db);
    if (head?.hash === hash && !input.newSeries) {
      return { version: head.version, hash, unchanged: true, generation: head.generation };
    }
    const version = (head?.version ?? 0) + 1;
    const issuedAt = new Date().toISOString();
    // Time-based, so a series started after a restore is above every series before the backup too.
    const generation = input.newSeries
      ? Math.max(Date.now(), (head?.generation ?? 0) + 1)
      : (head?.generation ?? 0);
    const sig = await signBundle(key, version, issuedAt, hash);
    const sigV2 = await signBundleV2(key, { generation, version, issuedAt, hash, nextKey });
    const pieces = splitChunks(canonical, CHUNK_CHARS);
    const versionRow: typeof policyVersions.$inferSelect = {
      version,
      hash,
      size: canonical.length,
      chunks: pieces.length,
      issuedAt,
      kid: key.kid,
      signature: sig,
      message: input.message,
      createdBy: ctx.actor.id,
      rollbackOf: input.rollbackOf ?? null,
      createdAt: Date.now(),
      generation,
      signatureV2: sigV2,
      nextKey: nextKey ? JSON.stringify(nextKey) : null,
    };
    const before = head ? await auditedVersion(db, head.version) : null;
    try {
      await db.batch([
        db.insert(policyVersions).values(versionRow),
        ...pieces.map((data, seq) => db.insert(policyChunks).values({ version, seq, data })),
        auditInsert(db, ctx, {
          action: input.newSeries ? "policy.series" : input.rollbackOf ? "policy.rollback" : "policy.publish",
          target: `v${version}`,
          before,
          after:
            canonical.length <= AUDIT_INLINE_CHARS
              ? { version, hash, message: input.message, policy }
              : {
                  version,
                  hash,
                  message: input.message,
                  size: canonical.length,
                  policy: `stored as version ${version}`,
                },
        }),
      ]);
    } catch (error) {
      // Another publish took this version number first: read the head again and retry.
      if (/UNIQUE|constraint/i.test(String((error as Error).message))) continue;
      throw error;
    }
    // The new bundle is served from memory: this isolate holds it, the hubs get its head.
    cacheBundle(version, assembleBundle(versionRow, canonical));
    await notify({ version, hash, generation });
    return { version, hash, unchanged: false, generation };
  }
  throw new AppError("CONFLICT", "concurrent publishes kept colliding; try again");
}

/** Republishes an old version's content as a new version (its audit entry says rollback). */
export async function rollbackPolicy({
  input,
  ...write
}: PolicyWrite & { input: { version: number; message?: string | undefined } }): Promise<PublishResult> {
  const target = await getVersion(write.db, input.version);
  return publishPolicy({
    ...write,
    input: {
      policy: target.policy,
      message: input.message ?? `Rollback to version ${input.version}`,
      rollbackOf: input.version,
    },
  });
}

/**
 * Republishes the latest policy as the first version of a new series, signed with the current key:
 * after the database was restored from a backup (nodes ahead of it refuse the old series' lower
 * versions) and after a signing-key switch (so every node gets a bundle signed by the new key).
 */
export async function startSeries({
  input,
  ...write
}: PolicyWrite & { input: { message?: string | undefined } }): Promise<PublishResult> {
  const head = await latestHead(write.db);
  if (!head) throw new AppError("NOT_FOUND", "no policy has been published yet: publish one first");
  const latest = await getVersion(write.db, head.version);
  return publishPolicy({
    ...write,
    input: {
      policy: latest.policy,
      message: input.message ?? `New series from version ${head.version}`,
      newSeries: true,
    },
  });
}

/** GET /api/v1/policy/versions: a page of versions, newest first, and the latest version number. */
export async function listPolicyVersions({
  db,
  input,
}: {
  db: Db;
  input: { limit: number; before?: number };
}) {
  const versions = await listVersions(db, input);
  return { versions, latest: (await latestHead(db))?.version ?? null };
}
