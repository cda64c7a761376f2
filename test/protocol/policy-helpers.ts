import { compilePolicy } from "../../protocol/policy/compile";
import { type PolicyInput, validatePolicy } from "../../protocol/policy/schema";
import type { CompiledPolicy, RequestFacts } from "../../protocol/policy/types";

/** Validates (failing the test with the issues if invalid) and compiles. */
export function compile(input: PolicyInput): CompiledPolicy {
  const result = validatePolicy(input);
  if (!result.ok) throw new Error(`policy invalid: ${JSON.stringify(result.issues)}`);
  return compilePolicy(result.policy);
}

export function facts(overrides: Partial<RequestFacts> = {}): RequestFacts {
  return {
    client: "10.0.0.5",
    method: "GET",
    scheme: "http",
    host: "www.example.com",
    port: 80,
    path: "/",
    now: Date.UTC(2026, 2, 4, 10, 0),
    ...overrides,
  };
}

/** One-rule policy whose rule blocks when `match` matches; default allow. */
export function blockIf(match: Record<string, unknown>, extra: Record<string, unknown> = {}): CompiledPolicy {
  return compile({
    rules: [{ id: "r", action: "block", match }],
    defaultAction: "allow",
    ...extra,
  } as PolicyInput);
}
