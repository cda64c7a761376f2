// urlRegex runs on every request a node sees, so it runs on RE2 (re2js, pure JS): matching time
// is linear in the URL's length whatever the pattern, so `(a|a)+$` or `.*.*.*b` cannot backtrack.
// What RE2 cannot promise linearly (backreferences, lookaround) is refused at validation. Counted
// repetition multiplies the program (`[a-z]{1000}` is 1,000 steps per character), so the compiled
// program is capped as well as the source.

import { RE2JS } from "re2js";

export const MAX_REGEX_LENGTH = 512;
/** Instructions of the compiled program; `[a-z]{200}` is ~200, an ordinary URL pattern ~20. */
export const MAX_REGEX_PROGRAM = 256;

export type UrlRegex = RE2JS;

/** Compiles a pattern checked by checkUrlRegex (throws on one it would refuse). */
export function compileUrlRegex(source: string): UrlRegex {
  return RE2JS.compile(source);
}

function programSize(regex: UrlRegex): number {
  // re2js keeps the program on the compiled RE2 object without a typed accessor.
  const prog = regex.re2().prog as { numInst?: () => number } | undefined;
  return typeof prog?.numInst === "function" ? prog.numInst() : 0;
}

/** Returns null when the pattern is acceptable, otherwise the reason it is refused. */
export function checkUrlRegex(source: string): string | null {
  if (source.length > MAX_REGEX_LENGTH) return `longer than ${MAX_REGEX_LENGTH} characters`;
  let regex: UrlRegex;
  try {
    regex = compileUrlRegex(source);
  } catch (error) {
    const reason = (error as Error).message.replace(/^error parsing regexp: /, "");
    return `does not compile as RE2 syntax (no backreferences or lookaround; see docs/policy.md): ${reason}`;
  }
  const size = programSize(regex);
  if (size > MAX_REGEX_PROGRAM) {
    return `compiles to ${size} steps, more than ${MAX_REGEX_PROGRAM}: use fewer or smaller counted repetitions like {n}`;
  }
  return null;
}
