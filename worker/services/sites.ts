import { asc, eq, sql } from "drizzle-orm";
import { isValidCidr } from "../../protocol/policy/cidr";
import { parseDomainPattern } from "../../protocol/policy/domain-name";
import { NAME_PATTERN } from "../../protocol/policy/schema";
import type { SigningKey } from "../../protocol/signing";
import { formatSiteHeader, SITE_HEADER, signSiteAssertion } from "../../protocol/site";
import type { Db } from "../db/client";
import { enrollmentKeys, nodeEvents, nodes, sites } from "../db/schema";
import { AppError } from "../errors";
import { type AuditContext, auditInsert } from "./audit";
import { signingKey, signingSeeds } from "./policy";
import type { SiteSettings } from "./site-settings";

export type SiteRow = typeof sites.$inferSelect;
export type { SiteSettings };

export const MAX_SITES = 1_000;
export const MAX_BYPASS = 500;

/** Each bypass entry is a CIDR or a domain (`corp.example` covers its subdomains too). */
export function checkBypass(entries: readonly string[]): string[] {
  const problems: string[] = [];
  entries.forEach((entry, i) => {
    if (!isValidCidr(entry) && parseDomainPattern(entry) === null) {
      problems.push(`settings.bypass[${i}]: not a CIDR or a domain: ${entry}`);
    }
  });
  return problems;
}

function invalid(problems: string[]): AppError {
  return new AppError(
    "VALIDATION_FAILED",
    problems[0]!,
    problems.map((p) => ({ path: p.slice(0, p.indexOf(":")), message: p.slice(p.indexOf(":") + 2) })),
  );
}

export async function listSites(db: Db) {
  const rows = await db
    .select({
      name: sites.name,
      description: sites.description,
      settings: sites.settings,
      createdAt: sites.createdAt,
      updatedAt: sites.updatedAt,
      nodes: sql<number>`(SELECT count(*) FROM nodes n WHERE n.site = sites.name AND n.revoked_at IS NULL)`,
    })
    .from(sites)
    .orderBy(asc(sites.name));
  return rows;
}

export async function getSite(db: Db, name: string): Promise<SiteRow> {
  const [row] = await db.select().from(sites).where(eq(sites.name, name)).limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no site ${name}`);
  return row;
}

export async function findSite(db: Db, name: string): Promise<SiteRow | null> {
  const [row] = await db.select().from(sites).where(eq(sites.name, name)).limit(1);
  return row ?? null;
}

export async function createSite(
  db: Db,
  input: { name: string; description?: string; settings?: Partial<SiteSettings> },
  ctx: AuditContext,
) {
  if (!NAME_PATTERN.test(input.name)) {
    throw invalid([`name: must be 1-64 letters, digits, '_' or '-', starting with a letter or digit`]);
  }
  const settings: SiteSettings = {
    bypass: input.settings?.bypass ?? [],
    allowDirect: input.settings?.allowDirect ?? false,
  };
  const problems = checkBypass(settings.bypass);
  if (problems.length) throw invalid(problems);
  const [{ count } = { count: 0 }] = await db.select({ count: sql<number>`count(*)` }).from(sites);
  if (count >= MAX_SITES) throw new AppError("CONFLICT", `at most ${MAX_SITES} sites`);
  if (await findSite(db, input.name)) throw new AppError("CONFLICT", `site ${input.name} exists`);
  const now = Date.now();
  const row: SiteRow = {
    name: input.name,
    description: input.description ?? "",
    settings,
    createdBy: ctx.actor.id,
    createdAt: now,
    updatedAt: now,
  };
  await db.batch([
    db.insert(sites).values(row),
    auditInsert(db, ctx, { action: "site.create", target: row.name, after: row }),
  ]);
  return row;
}

export async function updateSite(
  db: Db,
  name: string,
  input: { description?: string; settings?: Partial<SiteSettings> },
  ctx: AuditContext,
) {
  const before = await getSite(db, name);
  const settings: SiteSettings = { ...before.settings, ...input.settings };
  const problems = checkBypass(settings.bypass);
  if (problems.length) throw invalid(problems);
  const after = {
    ...before,
    description: input.description ?? before.description,
    settings,
    updatedAt: Date.now(),
  };
  await db.batch([
    db.update(sites).set(after).where(eq(sites.name, name)),
    auditInsert(db, ctx, { action: "site.update", target: name, before, after }),
  ]);
  return after;
}

/** Refused while nodes or unrevoked enrollment keys name the site (they would point at nothing). */
export async function deleteSite(db: Db, name: string, ctx: AuditContext) {
  const before = await getSite(db, name);
  const [{ n } = { n: 0 }] = await db
    .select({ n: sql<number>`count(*)` })
    .from(nodes)
    .where(sql`${nodes.site} = ${name} AND ${nodes.revokedAt} IS NULL`);
  const [{ k } = { k: 0 }] = await db
    .select({ k: sql<number>`count(*)` })
    .from(enrollmentKeys)
    .where(sql`${enrollmentKeys.site} = ${name} AND ${enrollmentKeys.revokedAt} IS NULL`);
  if (n > 0 || k > 0) {
    throw new AppError(
      "CONFLICT",
      `site ${name} still has ${n} node(s) and ${k} enrollment key(s): move or revoke them first`,
    );
  }
  await db.batch([
    db.delete(sites).where(eq(sites.name, name)),
    auditInsert(db, ctx, { action: "site.delete", target: name, before }),
  ]);
}

/** Moves a node to a site (null: none); the node learns it at its next poll, signed (docs/fleet.md). */
export async function setNodeSite(db: Db, nodeId: string, site: string | null, ctx: AuditContext) {
  if (site !== null) await getSite(db, site);
  const [node] = await db.select().from(nodes).where(eq(nodes.id, nodeId)).limit(1);
  if (!node) throw new AppError("NOT_FOUND", `no node ${nodeId}`);
  if (node.site === site) return node;
  const now = Date.now();
  await db.batch([
    db.update(nodes).set({ site, siteSince: now }).where(eq(nodes.id, nodeId)),
    db
      .insert(nodeEvents)
      .values({ nodeId, at: now, type: "site", detail: `${node.site ?? "-"} → ${site ?? "-"}` }),
    auditInsert(db, ctx, {
      action: "node.site",
      target: nodeId,
      before: { site: node.site },
      after: { site },
    }),
  ]);
  return { ...node, site, siteSince: now };
}

/** host:port clients use for this node in PAC files; null clears it (then derived from the listen address). */
export async function setNodePublicAddress(
  db: Db,
  nodeId: string,
  address: string | null,
  ctx: AuditContext,
) {
  const [node] = await db.select().from(nodes).where(eq(nodes.id, nodeId)).limit(1);
  if (!node) throw new AppError("NOT_FOUND", `no node ${nodeId}`);
  if (node.publicAddress === address) return node;
  await db.batch([
    db.update(nodes).set({ publicAddress: address }).where(eq(nodes.id, nodeId)),
    auditInsert(db, ctx, {
      action: "node.public-address",
      target: nodeId,
      before: { publicAddress: node.publicAddress },
      after: { publicAddress: address },
    }),
  ]);
  return { ...node, publicAddress: address };
}

// One signature per (node, site, since, key), not per poll: a fleet polls every few seconds.
const assertionCache = new Map<string, string>();
const ASSERTION_CACHE_SIZE = 50_000;

/** The signed SITE_HEADER value for a node's current site (docs/fleet.md "How a node knows its site"). */
export async function siteHeaderValue(
  key: SigningKey,
  node: { id: string; site: string | null; siteSince: number | null },
): Promise<string> {
  const since = node.siteSince ?? 0;
  const cacheKey = `${node.id}|${node.site ?? ""}|${since}|${key.kid}`;
  const cached = assertionCache.get(cacheKey);
  if (cached) return cached;
  const value = formatSiteHeader(await signSiteAssertion(key, node.id, node.site, since));
  assertionCache.set(cacheKey, value);
  if (assertionCache.size > ASSERTION_CACHE_SIZE) assertionCache.delete(assertionCache.keys().next().value!);
  return value;
}

/** [name, value] of the SITE_HEADER a poll answer carries. */
export async function pollSiteHeader(
  env: Env,
  node: { id: string; site: string | null; siteSince: number | null },
): Promise<[string, string]> {
  return [SITE_HEADER, await siteHeaderValue(await signingKey(signingSeeds(env).current), node)];
}
