// urlRegex runs on every request, so patterns that can backtrack catastrophically are refused.
// The rule is deliberately simple and conservative: a group that contains a repeating quantifier
// (`*`, `+`, `{n,}`, `{n,m}` with m > 1) may not itself be repeated, e.g. `(a+)+`, `(\w+\.)*x`,
// `(?:a*b?)+`. Rewrite such patterns with a character class (`[\w.]+x`). Alternations inside a
// repeated group (`(a|aa)+`) are not analysed; the length cap (512) bounds the rest.

export const MAX_REGEX_LENGTH = 512;

/** Length of a repeating quantifier at `i` (0 if none); `?` and `{0,1}` do not repeat. */
function quantifierAt(source: string, i: number): { length: number; repeats: boolean } {
  const c = source[i];
  if (c === "*" || c === "+") return { length: 1, repeats: true };
  if (c === "?") return { length: 1, repeats: false };
  if (c === "{") {
    const match = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i));
    if (match) {
      const max = match[2] === undefined ? Number(match[1]) : match[3] === "" ? Infinity : Number(match[3]);
      return { length: match[0].length, repeats: max > 1 };
    }
  }
  return { length: 0, repeats: false };
}

/** Returns null when the pattern is acceptable, otherwise the reason it is refused. */
export function checkUrlRegex(source: string): string | null {
  if (source.length > MAX_REGEX_LENGTH) return `longer than ${MAX_REGEX_LENGTH} characters`;
  try {
    new RegExp(source);
  } catch (error) {
    return `does not compile: ${(error as Error).message}`;
  }
  // One frame per open group: does anything inside it repeat?
  const stack: boolean[] = [false];
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") {
      i++;
    } else if (c === "[") {
      for (i++; i < source.length && source[i] !== "]"; i++) if (source[i] === "\\") i++;
    } else if (c === "(") {
      stack.push(false);
    } else if (c === ")") {
      const innerRepeats = stack.pop() ?? false;
      const quantifier = quantifierAt(source, i + 1);
      if (innerRepeats && quantifier.repeats) {
        return "nested repetition (like (a+)+) risks catastrophic backtracking; use a character class instead";
      }
      if (innerRepeats || quantifier.repeats) stack[stack.length - 1] = true;
      i += quantifier.length;
    } else {
      const quantifier = quantifierAt(source, i);
      if (quantifier.repeats) stack[stack.length - 1] = true;
    }
  }
  return null;
}
