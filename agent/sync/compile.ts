import { compilePolicy, validatePolicy } from "../../protocol/policy/index";
import type { CompileResult } from "./types";

/** Validates then compiles with the same engine the master validated with at publish time. */
export function compileWithEngine(input: unknown): CompileResult {
  const validated = validatePolicy(input);
  if (!validated.ok) {
    const shown = validated.issues
      .slice(0, 5)
      .map((issue) => `${issue.path || "(root)"}: ${issue.message}`)
      .join("; ");
    return { ok: false, error: `policy does not validate: ${shown}` };
  }
  try {
    return { ok: true, compiled: compilePolicy(validated.policy) };
  } catch (error) {
    return { ok: false, error: `policy does not compile: ${(error as Error).message}` };
  }
}
