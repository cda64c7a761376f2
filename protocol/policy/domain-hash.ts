// Hashing shared by the domain table and its builder. Two independent 32-bit hashes are rolled
// over a name's chars from the END, so one right-to-left pass over a host yields the hash of
// every suffix at its label boundary. Seeds are random per table: collisions cannot be precomputed.

export const P1 = 0x01000193;
export const P2 = 0x2545f491;

/** Slot index (pre-multiplied by the stride's shift) from the first hash. */
export function slotOf(h1: number, mask: number, shift: number): number {
  let h = h1 ^ (h1 >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h & mask) << shift;
}

/** Block (two Int32 words) of the Bloom filter for a hash pair. */
export function filterOf(h2: number, fmask: number): number {
  const h = Math.imul(h2 ^ (h2 >>> 15), 0x2c1b3c6d);
  return ((h ^ (h >>> 12)) & fmask) << 1;
}

/** The filter bits, two per word; callers inline the same expression on the hot path. */
export function filterBits(h1: number, h2: number): [number, number] {
  const bits = Math.imul(h1 ^ h2, 0x9e3779b1);
  return [
    (1 << (bits & 31)) | (1 << ((bits >>> 5) & 31)),
    (1 << ((bits >>> 10) & 31)) | (1 << ((bits >>> 15) & 31)),
  ];
}

/** Hash of an already lowercase name, identical to what a walk computes at that suffix. */
export function hashName(name: string, seed1: number, seed2: number): [number, number] {
  let h1 = seed1;
  let h2 = seed2;
  for (let i = name.length - 1; i >= 0; i--) {
    const c = name.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, P1);
    h2 = Math.imul(((h2 << 5) | (h2 >>> 27)) ^ c, P2);
  }
  return [h1, h2];
}

export function randomSeeds(): [number, number] {
  const seeds = crypto.getRandomValues(new Int32Array(2));
  return [seeds[0]!, seeds[1]!];
}
