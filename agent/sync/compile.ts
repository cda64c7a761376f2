import { compilePolicy, validatePolicy } from "../../protocol/policy/index";
import type { Policy, PolicyIssue } from "../../protocol/policy/schema";
import type { CompileResult } from "./types";

export function describeIssues(issues: readonly PolicyIssue[]): string {
  const shown = issues
    .slice(0, 5)
    .map((issue) => `${issue.path || "(root)"}: ${issue.message}`)
    .join("; ");
  return `policy does not validate: ${shown}`;
}

/** Validates then compiles with the same engine the master validated with at publish time. */
export function compileWithEngine(input: unknown): CompileResult {
  const validated = validatePolicy(input);
  if (!validated.ok) return { ok: false, error: describeIssues(validated.issues) };
  try {
    return { ok: true, compiled: compilePolicy(validated.policy) };
  } catch (error) {
    return { ok: false, error: `policy does not compile: ${(error as Error).message}` };
  }
}

/** The policy without its lists' domains: what the main thread still needs once a worker built the domain table. */
export function withoutListDomains(policy: Policy): Policy {
  const lists: Policy["lists"] = {};
  for (const [name, list] of Object.entries(policy.lists)) {
    lists[name] = list.domains ? { ...list, domains: [] } : list;
  }
  return { ...policy, lists };
}
