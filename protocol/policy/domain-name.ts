// Domain pattern normalisation shared by validation and compilation: lowercase, one trailing dot
// stripped, IDN converted to punycode with the platform's URL parser (UTS #46), same in every runtime.

/** EXACT: the name itself; SUB: any name below it. A plain pattern is both. */
export const MODE_EXACT = 1;
export const MODE_SUB = 2;
export const MODE_PLAIN = MODE_EXACT | MODE_SUB;

export interface DomainPattern {
  host: string;
  mode: number;
}

const LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** RFC 1123 host name (underscores tolerated, as real names carry them), at most 253 chars. */
export function isValidHostname(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  for (const label of host.split(".")) if (!LABEL.test(label)) return false;
  return true;
}

/** True when every char is one of [a-z0-9._-], i.e. the name needs no further normalisation. */
function isPlainAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const ok = (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 46 || c === 45 || c === 95;
    if (!ok) return false;
  }
  return true;
}

/** Lowercase, strip one trailing dot, punycode IDN. Returns null for anything that is not a bare name. */
export function toAsciiHost(name: string): string | null {
  let host = name.endsWith(".") ? name.slice(0, -1) : name;
  if (isPlainAscii(host)) return host;
  host = host.toLowerCase();
  if (isPlainAscii(host)) return host;
  // Anything URL syntax would reinterpret (port, path, userinfo, brackets) is not a bare name.
  if (/[\s/\\?#@:[\]%*=]/.test(host)) return null;
  try {
    const converted = new URL(`http://${host}`).hostname;
    const stripped = converted.endsWith(".") ? converted.slice(0, -1) : converted;
    return isPlainAscii(stripped) ? stripped : null;
  } catch {
    return null;
  }
}

/**
 * Parses `example.com` (itself and subdomains), `=example.com` (only itself) or `*.example.com`
 * (only subdomains). Returns null when the name is not a valid host name after normalisation.
 * `trusted` skips the per-label syntax check (compile runs on already validated policies).
 */
export function parseDomainPattern(text: string, trusted = false): DomainPattern | null {
  let mode = MODE_PLAIN;
  let rest = text;
  if (rest.startsWith("=")) {
    mode = MODE_EXACT;
    rest = rest.slice(1);
  } else if (rest.startsWith("*.")) {
    mode = MODE_SUB;
    rest = rest.slice(2);
  }
  const host = toAsciiHost(rest);
  if (host === null) return null;
  if (trusted ? host.length === 0 : !isValidHostname(host)) return null;
  return { host, mode };
}

export function describePattern(host: string, mode: number): string {
  return mode === MODE_EXACT ? `=${host}` : mode === MODE_SUB ? `*.${host}` : host;
}
