// validatePolicy: the schema (definition.ts) plus the cross-checks (checks.ts). The schemas and
// types are re-exported so callers import one module; checks.ts imports definition.ts directly,
// which keeps this file and checks.ts out of an import cycle.

import type { z } from "zod";
import { crossCheck } from "./checks";
import { formatPath, MAX_ISSUES, Policy, type ValidationResult } from "./definition";

export * from "./definition";

function issueMessage(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_key") {
    return `invalid name "${String(issue.path[issue.path.length - 1])}": ${issue.issues[0]?.message ?? "not allowed"}`;
  }
  return issue.message;
}

/** Schema plus cross-checks (references, syntax of domains/CIDRs/regexes/zones/hashes). Never throws. */
export function validatePolicy(input: unknown): ValidationResult {
  try {
    const parsed = Policy.safeParse(input);
    if (!parsed.success) {
      const issues = parsed.error.issues
        .slice(0, MAX_ISSUES)
        .map((issue) => ({ path: formatPath(issue.path), message: issueMessage(issue) }));
      return { ok: false, issues };
    }
    const issues = crossCheck(parsed.data, MAX_ISSUES);
    return issues.length > 0 ? { ok: false, issues } : { ok: true, policy: parsed.data };
  } catch (error) {
    return { ok: false, issues: [{ path: "", message: `policy could not be validated: ${String(error)}` }] };
  }
}
