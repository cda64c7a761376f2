// The master-side check of a policy's site names: the protocol cannot know which sites exist, and
// a typo would silently make a rule apply nowhere. Kept apart from sites.ts, which imports policy.ts.
import type { Db } from "../db/client";
import { sites } from "../db/schema";
import { AppError } from "../errors";

const MAX_ISSUES = 100;

/** Every site name the policy uses that is not in `known`, with its JSON path. */
export function unknownSiteIssues(
  policy: { rules: { match: { sites?: string[] } }[]; lists: Record<string, { sites?: string[] }> },
  known: Set<string>,
) {
  const issues: { path: string; message: string }[] = [];
  policy.rules.forEach((rule, i) => {
    rule.match.sites?.forEach((site, j) => {
      if (!known.has(site))
        issues.push({ path: `rules[${i}].match.sites[${j}]`, message: `unknown site "${site}"` });
    });
  });
  for (const [name, list] of Object.entries(policy.lists)) {
    list.sites?.forEach((site, j) => {
      if (!known.has(site))
        issues.push({ path: `lists.${name}.sites[${j}]`, message: `unknown site "${site}"` });
    });
  }
  return issues.slice(0, MAX_ISSUES);
}

/** Names a policy may use: every site that exists. */
export async function siteNames(db: Db): Promise<Set<string>> {
  const rows = await db.select({ name: sites.name }).from(sites);
  return new Set(rows.map((r) => r.name));
}

/**
 * Throws VALIDATION_FAILED (400) listing each unknown site with its JSON path. The policy itself
 * is valid (that is POLICY_INVALID, 422): it names something this master does not have.
 */
export async function assertKnownSites(
  db: Db,
  policy: Parameters<typeof unknownSiteIssues>[0],
): Promise<void> {
  const uses =
    policy.rules.some((r) => r.match.sites?.length) ||
    Object.values(policy.lists).some((l) => l.sites?.length);
  if (!uses) return;
  const issues = unknownSiteIssues(policy, await siteNames(db));
  if (!issues.length) return;
  const first = issues[0]!;
  throw new AppError(
    "VALIDATION_FAILED",
    `${first.path}: ${first.message}${issues.length > 1 ? ` (and ${issues.length - 1} more)` : ""}`,
    issues,
  );
}
