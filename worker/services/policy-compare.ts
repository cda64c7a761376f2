// "Fetch two versions and diff": the API's /policy/diff, the history page and the editor's
// draft-versus-published panel all come here.

import type { Policy } from "../../protocol/policy/schema";
import type { Db } from "../db/client";
import { getVersion, latestHead } from "./policy";
import { diffPolicies, type SectionDiff } from "./policy-diff";
import { getDraft } from "./policy-draft";

export interface VersionDiff {
  from: number;
  to: number;
  sections: SectionDiff[];
}

export async function diffVersions(args: {
  db: Db;
  input: { from: number; to: number };
}): Promise<VersionDiff> {
  const { db, input } = args;
  const [a, b] = await Promise.all([getVersion(db, input.from), getVersion(db, input.to)]);
  return { from: input.from, to: input.to, sections: diffPolicies(a.policy, b.policy) };
}

/** The diff the history page opens with: the pair asked for, else the latest against the one before. */
export async function historyDiff(args: {
  db: Db;
  input: { from?: number; to?: number; paging?: boolean };
}): Promise<VersionDiff | null> {
  const { db, input } = args;
  if (input.from && input.to && input.from > 0 && input.to > 0)
    return diffVersions({ db, input: { from: input.from, to: input.to } });
  if (input.paging) return null;
  const head = await latestHead(db);
  if (!head || head.version < 2) return null;
  return diffVersions({ db, input: { from: head.version - 1, to: head.version } });
}

/**
 * The unpublished draft against the latest published version (or against nothing). A draft may
 * be invalid, so sections are compared as they stand; the diff never throws on a bad draft.
 */
export async function diffDraft(args: {
  db: Db;
}): Promise<{ against: number | null; sections: SectionDiff[] }> {
  const draft = await getDraft(args.db);
  const head = await latestHead(args.db);
  const published = head ? ((await getVersion(args.db, head.version)).policy as Policy) : ({} as Policy);
  const current = draft.policy as unknown as Policy;
  try {
    return { against: head?.version ?? null, sections: diffPolicies(published, current) };
  } catch {
    // Rules without ids or lists of the wrong shape: fall back to a whole-section comparison.
    return {
      against: head?.version ?? null,
      sections: diffPolicies(
        { ...published, rules: undefined, lists: undefined } as unknown as Policy,
        { ...current, rules: undefined, lists: undefined } as unknown as Policy,
      ),
    };
  }
}
