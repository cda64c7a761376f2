// Password hashes: `pbkdf2-sha256$<iterations>$<salt base64url>$<hash base64url>`, derived with
// WebCrypto so the master (workerd) and the agent (Bun) agree. Workers cap PBKDF2 at 100,000
// iterations, so that is both the default and the maximum.

import { fromBase64Url, toBase64Url, utf8 } from "../encoding";

export const MAX_ITERATIONS = 100_000;
export const MIN_ITERATIONS = 1_000;

export interface PasswordHash {
  iterations: number;
  salt: Uint8Array;
  hash: Uint8Array;
}

const FORMAT = /^pbkdf2-sha256\$([1-9][0-9]{0,6})\$([A-Za-z0-9_-]{11,128})\$([A-Za-z0-9_-]{22,128})$/;

/** Parses the encoded form; null unless iterations, salt (>= 8 bytes) and hash (16-64 bytes) fit. */
export function parsePasswordHash(encoded: string): PasswordHash | null {
  const match = FORMAT.exec(encoded);
  if (!match) return null;
  const iterations = Number(match[1]);
  if (iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) return null;
  try {
    const salt = fromBase64Url(match[2]!);
    const hash = fromBase64Url(match[3]!);
    if (salt.length < 8 || hash.length < 16 || hash.length > 64) return null;
    return { iterations, salt, hash };
  } catch {
    return null;
  }
}

async function derive(
  password: string,
  salt: Uint8Array,
  iterations: number,
  bytes: number,
): Promise<Uint8Array> {
  // Fresh copies: WebCrypto typings want ArrayBuffer-backed views, not ArrayBufferLike.
  const secret = Uint8Array.from(utf8(password));
  const key = await crypto.subtle.importKey("raw", secret, "PBKDF2", false, ["deriveBits"]);
  const params = { name: "PBKDF2", hash: "SHA-256", salt: Uint8Array.from(salt), iterations };
  const bits = await crypto.subtle.deriveBits(params, key, bytes * 8);
  return new Uint8Array(bits);
}

export async function hashPassword(password: string, iterations = MAX_ITERATIONS): Promise<string> {
  if (!Number.isInteger(iterations) || iterations < MIN_ITERATIONS || iterations > MAX_ITERATIONS) {
    throw new Error(`iterations must be an integer from ${MIN_ITERATIONS} to ${MAX_ITERATIONS}`);
  }
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const hash = await derive(password, salt, iterations, 32);
  return `pbkdf2-sha256$${iterations}$${toBase64Url(salt)}$${toBase64Url(hash)}`;
}

/** Compares every byte whatever the first difference, so timing reveals nothing about the hash. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ (b[i] ?? 0);
  return diff === 0;
}

/** False for a wrong password or a malformed hash; never throws. */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parsed = parsePasswordHash(encoded);
  if (!parsed) return false;
  try {
    const derived = await derive(password, parsed.salt, parsed.iterations, parsed.hash.length);
    return constantTimeEqual(derived, parsed.hash);
  } catch {
    return false;
  }
}
