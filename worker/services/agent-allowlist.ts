import { eq } from "drizzle-orm";
import { CidrSet, isValidCidr } from "../../protocol/policy/cidr";
import type { Db } from "../db/client";
import { settings } from "../db/schema";
import { AppError } from "../errors";
import { type AuditContext, auditInsert } from "./audit";

const KEY = "agent-allowlist";

export interface AgentAllowlist {
  enabled: boolean;
  cidrs: string[];
}

const DISABLED: AgentAllowlist = { enabled: false, cidrs: [] };

export async function getAgentAllowlist(db: Db): Promise<AgentAllowlist> {
  const [row] = await db.select().from(settings).where(eq(settings.key, KEY)).limit(1);
  return (row?.value as AgentAllowlist | undefined) ?? DISABLED;
}

export async function setAgentAllowlist(db: Db, next: AgentAllowlist, ctx: AuditContext) {
  const issues = next.cidrs.flatMap((cidr, i) =>
    isValidCidr(cidr) ? [] : [{ path: `cidrs[${i}]`, message: `not an IPv4/IPv6 address or CIDR: ${cidr}` }],
  );
  if (issues.length) throw new AppError("VALIDATION_FAILED", issues[0]!.message, issues);
  if (next.enabled && next.cidrs.length === 0) {
    throw new AppError("VALIDATION_FAILED", "an enabled allow list needs at least one CIDR", [
      { path: "cidrs", message: "empty while enabled would lock every node out" },
    ]);
  }
  const before = await getAgentAllowlist(db);
  const now = Date.now();
  await db.batch([
    db
      .insert(settings)
      .values({ key: KEY, value: next, updatedAt: now, updatedBy: ctx.actor.id })
      .onConflictDoUpdate({
        target: settings.key,
        set: { value: next, updatedAt: now, updatedBy: ctx.actor.id },
      }),
    auditInsert(db, ctx, { action: "settings.agent-allowlist", target: KEY, before, after: next }),
  ]);
  cachedList = null;
  return next;
}

// Every agent call passes this check, so each isolate keeps the list for a moment instead of
// reading it per poll (docs/scale.md); a change reaches every isolate within ALLOWLIST_TTL_MS.
const ALLOWLIST_TTL_MS = 2_000;
// Only the resolved list is shared between requests (a pending query belongs to its request).
let cachedList: { at: number; list: AgentAllowlist } | null = null;
// When the list goes stale, one request reads it again and the others keep the last list
// meanwhile: a publish's ACK wave arrives as a burst, and one read per request queued ~2,000 D1
// reads behind each other (docs/scale.md). A refresh whose request was cancelled is taken over.
let refreshingSince: number | null = null;
const REFRESH_STALE_MS = 5_000;

async function allowlistForAgents(db: Db): Promise<AgentAllowlist> {
  const now = Date.now();
  if (cachedList && now - cachedList.at < ALLOWLIST_TTL_MS) return cachedList.list;
  if (cachedList && refreshingSince !== null && now - refreshingSince < REFRESH_STALE_MS) {
    return cachedList.list;
  }
  refreshingSince = now;
  try {
    const list = await getAgentAllowlist(db);
    cachedList = { at: Date.now(), list };
    return list;
  } finally {
    if (refreshingSince === now) refreshingSince = null;
  }
}

/** SafeSquid's "Access Restriction → Allow list" for agents: refuses any address outside it. */
export async function assertAgentAddressAllowed(db: Db, address: string | null) {
  const list = await allowlistForAgents(db);
  if (!list.enabled) return;
  if (!address || !CidrSet.parse(list.cidrs).contains(address)) {
    throw new AppError("IP_NOT_ALLOWED", `address ${address ?? "unknown"} is not in the agent allow list`);
  }
}
