// Request ids: a random per-process prefix plus a counter. Unique across restarts without a
// random draw per request, and sortable within one process.

const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

function randomBase32(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  let out = "";
  for (const b of bytes) out += ALPHABET[b & 31];
  return out;
}

export function createRequestIds(): () => string {
  const prefix = randomBase32(10);
  let counter = 0;
  return () => {
    counter++;
    return `${prefix}${counter.toString(32)}`;
  };
}
