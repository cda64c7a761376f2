// The audit log as a person reads it: who (users, API tokens, system actors) and what (nodes,
// keys, users, policy versions, rollouts, sites) by name with a dashboard link, filtered and paged
// in SQL. Names are looked up per page (≤ 500 entries), never stored: a rename shows everywhere.
import { and, desc, eq, gte, inArray, lt } from "drizzle-orm";
import type { Db } from "../db/client";
import { apiTokens, auditLog, enrollmentKeys, nodes, rollouts, users } from "../db/schema";
import { AppError } from "../errors";

export interface AuditQuery {
  limit: number;
  /** An entry id: entries older than it (the next page). */
  before?: number | undefined;
  /** An actor id as stored: `user:usr_…`, `token:tok_…`, `bootstrap`, `system:rollout`, `anonymous`. */
  actor?: string | undefined;
  /** An action (`policy.publish`), or a prefix ending in "." (`policy.`). */
  action?: string | undefined;
  /** A target as stored: `node_…`, `usr_…`, `v12`, `ro_…`, a site name. */
  target?: string | undefined;
  from?: number | undefined;
  to?: number | undefined;
}

export interface Named {
  name: string;
  /** "user", "token", "system" for actors; the target's kind for targets. */
  kind: string;
  href?: string | undefined;
}

export interface AuditEntryView {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string | null;
  before: unknown;
  after: unknown;
  requestId: string | null;
  address: string | null;
  actorName: Named;
  targetName: Named | null;
}

const SYSTEM_ACTORS: Record<string, string> = {
  bootstrap: "bootstrap token",
  anonymous: "anonymous (failed sign-in)",
  "system:rollout": "rollout gates (system)",
};

function conditions(q: AuditQuery) {
  if (q.from !== undefined && q.to !== undefined && !(q.from < q.to)) {
    throw new AppError("VALIDATION_FAILED", "from must be before to", [
      { path: "query.from", message: "not before to" },
    ]);
  }
  const action = q.action;
  return and(
    q.before ? lt(auditLog.id, q.before) : undefined,
    q.actor ? eq(auditLog.actor, q.actor) : undefined,
    action
      ? action.endsWith(".")
        ? // A range, not substr(): the prefix "policy." is [policy., policy/) and walks the index.
          and(gte(auditLog.action, action), lt(auditLog.action, `${action.slice(0, -1)}/`))
        : eq(auditLog.action, action)
      : undefined,
    q.target ? eq(auditLog.target, q.target) : undefined,
    q.from !== undefined ? gte(auditLog.at, q.from) : undefined,
    q.to !== undefined ? lt(auditLog.at, q.to) : undefined,
  );
}

/** A page's query, newest first, one row past the page (a test reads its query plan). */
export const auditPageQuery = (db: Db, input: AuditQuery) =>
  db
    .select()
    .from(auditLog)
    .where(conditions(input))
    .orderBy(desc(auditLog.id))
    .limit(input.limit + 1);

/** One page, newest first, and the `before` of the next page (null: no older entries). */
export async function searchAudit({ db, input }: { db: Db; input: AuditQuery }) {
  const rows = await auditPageQuery(db, input);
  const page = rows.slice(0, input.limit);
  const names = await lookUpNames(db, page);
  const entries: AuditEntryView[] = page.map((r) => ({
    ...r,
    actorName: actorOf(r.actor, names),
    targetName: r.target === null ? null : targetOf(r.action, r.target, names),
  }));
  const next = rows.length > input.limit ? (page[page.length - 1]?.id ?? null) : null;
  return { entries, next };
}

interface Names {
  users: Map<string, string>;
  tokens: Map<string, string>;
  keys: Map<string, string>;
  nodes: Map<string, string>;
  rollouts: Map<string, number | null>;
}

async function lookUpNames(db: Db, rows: { actor: string; target: string | null }[]): Promise<Names> {
  const ids = new Set<string>();
  for (const r of rows) {
    ids.add(r.actor.replace(/^(user|token):/, ""));
    if (r.target) ids.add(r.target.replace(/^(user|token):/, ""));
  }
  const pick = (prefix: string) => [...ids].filter((id) => id.startsWith(prefix)).slice(0, 500);
  const [u, t, k, n, ro] = await Promise.all([
    lookup(pick("usr_"), (list) =>
      db.select({ id: users.id, name: users.name }).from(users).where(inArray(users.id, list)),
    ),
    lookup(pick("tok_"), (list) =>
      db
        .select({ id: apiTokens.id, name: apiTokens.name })
        .from(apiTokens)
        .where(inArray(apiTokens.id, list)),
    ),
    lookup(pick("key_"), (list) =>
      db
        .select({ id: enrollmentKeys.id, name: enrollmentKeys.name })
        .from(enrollmentKeys)
        .where(inArray(enrollmentKeys.id, list)),
    ),
    lookup(pick("node_"), (list) =>
      db.select({ id: nodes.id, name: nodes.hostname }).from(nodes).where(inArray(nodes.id, list)),
    ),
    lookup(pick("ro_"), (list) =>
      db
        .select({ id: rollouts.id, name: rollouts.toVersion })
        .from(rollouts)
        .where(inArray(rollouts.id, list)),
    ),
  ]);
  return { users: u, tokens: t, keys: k, nodes: n, rollouts: ro };
}

async function lookup<V>(
  list: string[],
  query: (list: string[]) => Promise<{ id: string; name: V }[]>,
): Promise<Map<string, V>> {
  if (!list.length) return new Map();
  return new Map((await query(list)).map((r) => [r.id, r.name]));
}

function actorOf(actor: string, names: Names): Named {
  if (SYSTEM_ACTORS[actor]) return { name: SYSTEM_ACTORS[actor], kind: "system" };
  if (actor.startsWith("user:")) {
    const id = actor.slice(5);
    return { name: names.users.get(id) ?? `${id} (deleted user)`, kind: "user", href: "/settings/users" };
  }
  if (actor.startsWith("token:")) {
    const id = actor.slice(6);
    return { name: names.tokens.get(id) ?? `${id} (unknown token)`, kind: "token", href: "/settings/tokens" };
  }
  if (actor.startsWith("system:")) return { name: `${actor.slice(7)} (system)`, kind: "system" };
  return { name: actor, kind: "system" };
}

function targetOf(action: string, target: string, names: Names): Named {
  const id = target.replace(/^(user|token):/, "");
  if (id.startsWith("node_")) {
    return { name: names.nodes.get(id) ?? id, kind: "node", href: `/nodes/${encodeURIComponent(id)}` };
  }
  if (id.startsWith("usr_"))
    return { name: names.users.get(id) ?? id, kind: "user", href: "/settings/users" };
  if (id.startsWith("tok_"))
    return { name: names.tokens.get(id) ?? id, kind: "api token", href: "/settings/tokens" };
  if (id.startsWith("key_"))
    return { name: names.keys.get(id) ?? id, kind: "enrollment key", href: "/settings/keys" };
  if (id.startsWith("ro_")) {
    const to = names.rollouts.get(id);
    return {
      name: to ? `rollout of version ${to}` : id,
      kind: "rollout",
      href: `/rollouts#${encodeURIComponent(id)}`,
    };
  }
  const version = /^v(\d+)$/.exec(target);
  if (action.startsWith("policy.") && version) {
    const n = Number(version[1]);
    return {
      name: `version ${n}`,
      kind: "policy version",
      href: n > 1 ? `/policy/history?from=${n - 1}&to=${n}` : "/policy/history",
    };
  }
  if (action.startsWith("site.")) {
    return { name: target, kind: "site", href: `/nodes?site=${encodeURIComponent(target)}` };
  }
  return { name: target, kind: action.split(".")[0] ?? "other" };
}
