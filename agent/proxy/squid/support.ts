// What a Squid node can and cannot enforce of a policy (docs/squid.md, "What a Squid node enforces").
// `destinations` is enforced: the decision server runs the built-in proxy's destination guard.
// A bundle that needs what Squid cannot do is NACKed with the reason, never applied half-way.

import { compileWithEngine } from "../../sync/compile";
import type { CompileResult } from "../../sync/types";

/** Reasons this policy cannot be enforced on Squid; empty when it can. */
export function squidLimitations(policy: unknown): string[] {
  const reasons: string[] = [];
  if (policy === null || typeof policy !== "object") return reasons;
  const p = policy as { tls?: { sniMismatch?: unknown } };
  if (p.tls?.sniMismatch === "block") {
    reasons.push(
      'tls.sniMismatch "block" needs the TLS server name of each CONNECT tunnel; Debian\'s Squid has no ssl-bump (peek), so a Squid node cannot read it',
    );
  }
  return reasons;
}

/** The agent's validate + compile, with Squid's limits checked first. */
export function compileForSquid(input: unknown): CompileResult {
  const reasons = squidLimitations(input);
  if (reasons.length > 0)
    return { ok: false, error: `not enforceable on a Squid node: ${reasons.join("; ")}` };
  return compileWithEngine(input);
}
