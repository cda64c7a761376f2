import { randomToken, sha256Hex, utf8 } from "../../protocol/encoding";

const ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

/** Prefixed random id for anything a person sees: `node_8f3k…`. */
export function newId(prefix: string, length = 16): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let id = "";
  for (const byte of bytes) id += ID_ALPHABET[byte & 31];
  return `${prefix}_${id}`;
}

/** A secret shown once: prefix + 256 random bits. Only its hash is stored. */
export function newSecret(prefix: string): string {
  return `${prefix}_${randomToken(32)}`;
}

// Secrets are 256-bit random values, so one SHA-256 round is enough: nothing to brute-force.
export function hashSecret(secret: string): Promise<string> {
  return sha256Hex(secret);
}

/** Compares two strings in time independent of where they differ (digests have equal length). */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const [da, db] = await Promise.all([
    crypto.subtle.digest("SHA-256", utf8(a)),
    crypto.subtle.digest("SHA-256", utf8(b)),
  ]);
  return crypto.subtle.timingSafeEqual(da, db);
}

export function displayPrefix(secret: string): string {
  return `${secret.slice(0, secret.indexOf("_") + 7)}…`;
}
