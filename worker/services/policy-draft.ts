// The dashboard's working copy of the policy. Editing happens here, section by section and in
// any order, so a draft may be invalid; validation runs on it and publishing goes through
// publishPolicy like every other publish. One shared draft: it says who changed it last.

import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { settings } from "../db/schema";
import type { Actor } from "../env";
import { AppError } from "../errors";
import type { AuditContext } from "./audit";
import { getVersion, latestHead, type PublishResult, publishPolicy, signingSeeds } from "./policy";
import { announceVersion } from "./policy-hub";

const KEY = "policy-draft";
// The draft lives in one settings row; D1 refuses rows over 2 MB. Bigger policies go through the API.
export const MAX_DRAFT_CHARS = 1_500_000;

export type DraftPolicy = Record<string, unknown> & { rules?: unknown[] };

export interface PolicyDraft {
  policy: DraftPolicy;
  /** The published version the draft started from (null before the first publish). */
  baseVersion: number | null;
  /** False when the draft is just the latest version, untouched. */
  edited: boolean;
  updatedAt: number | null;
  updatedBy: string | null;
}

export const STARTER_POLICY: DraftPolicy = {
  rules: [],
  defaultAction: "allow",
  lists: {},
  schedules: {},
  blockPage: { title: "Blocked by policy", body: "This site is blocked by your organisation's web policy." },
  logging: { includeQuery: false },
};

export async function getDraft(db: Db): Promise<PolicyDraft> {
  const [row] = await db.select().from(settings).where(eq(settings.key, KEY)).limit(1);
  if (row) {
    const value = row.value as { policy: DraftPolicy; baseVersion: number | null };
    return { ...value, edited: true, updatedAt: row.updatedAt, updatedBy: row.updatedBy };
  }
  const head = await latestHead(db);
  const policy = head
    ? ((await getVersion(db, head.version)).policy as DraftPolicy)
    : structuredClone(STARTER_POLICY);
  return { policy, baseVersion: head?.version ?? null, edited: false, updatedAt: null, updatedBy: null };
}

export async function saveDraft(db: Db, draft: Pick<PolicyDraft, "policy" | "baseVersion">, actor: Actor) {
  const value = { policy: draft.policy, baseVersion: draft.baseVersion };
  if (JSON.stringify(value).length > MAX_DRAFT_CHARS) {
    throw new AppError(
      "PAYLOAD_TOO_LARGE",
      `the dashboard draft is limited to ${MAX_DRAFT_CHARS / 1_000_000} M characters; publish larger policies with the API`,
    );
  }
  const now = Date.now();
  await db
    .insert(settings)
    .values({ key: KEY, value, updatedAt: now, updatedBy: actor.id })
    .onConflictDoUpdate({ target: settings.key, set: { value, updatedAt: now, updatedBy: actor.id } });
}

/** Throws the draft away: the next read starts again from the latest published version. */
export async function discardDraft(db: Db) {
  await db.delete(settings).where(eq(settings.key, KEY));
}

/**
 * Loads the draft, applies `change` to a copy and saves it. `change` returns a message when the
 * form it came from makes no sense (nothing is saved then).
 */
export async function editDraft(args: {
  db: Db;
  actor: Actor;
  change: (policy: DraftPolicy) => unknown;
}): Promise<{ problem?: string; policy: DraftPolicy }> {
  const draft = await getDraft(args.db);
  const policy = structuredClone(draft.policy);
  const problem = args.change(policy);
  if (typeof problem === "string") return { problem, policy: draft.policy };
  await saveDraft(args.db, { policy, baseVersion: draft.baseVersion }, args.actor);
  return { policy };
}

/** Publishes the draft as the next version and throws the draft away (one verb, one outcome). */
export async function publishDraft(args: {
  db: Db;
  env: Env;
  audit: AuditContext;
  input: { message: string };
}): Promise<PublishResult> {
  const draft = await getDraft(args.db);
  const result = await publishPolicy({
    db: args.db,
    seeds: signingSeeds(args.env),
    actor: args.audit,
    notify: (v) => announceVersion(args.env, v),
    input: { policy: draft.policy, message: args.input.message },
  });
  await discardDraft(args.db);
  return result;
}
