// The domain matcher. A host is hashed right to left in one pass (domain-hash.ts); at every
// label boundary the suffix seen so far is looked up, first in a cache-sized blocked Bloom filter,
// then in an open-addressing table of 8-byte slots [hash2, meta]:
//   meta bit 0 occupied, bit 1 interior, bits 2-3 mode, bit 4 overflow, bits 5-19 set id,
//   bits 20-31 the top 12 bits of hash1 (the rest of hash1 chose the slot).
// Identity is hash2 + 12 bits of hash1 + the home slot: ~44 bits compared, so a false positive
// is ~1e-13 per lookup, and no strings are kept. Parents of every pattern are stored as
// "interior" slots so a walk stops at the first suffix with nothing below it: a lookup touches
// one table cache line, two for names below an interior parent. Slots are 8 bytes because the
// table outgrows the caches and the TLB; halving it buys more than anything else on this path.
// A set is a list or one rule's own domains; names in several sets (or set ids past 15 bits)
// keep their memberships (setId << 2 | mode) in `overflow`, keyed by slot offset.

import { hashName, P1, P2, slotOf } from "./domain-hash";
import { describePattern, MODE_EXACT, MODE_SUB, toAsciiHost } from "./domain-name";

export const META_OCCUPIED = 1;
export const META_INTERIOR = 2;
export const META_OVERFLOW = 16;
export const MAX_INLINE_SET = 0x7fff;

export interface DomainMatch {
  pattern: string;
  setId: number;
}

/** A DomainTable as plain data: typed arrays a worker can transfer instead of copying. */
export interface DomainTableParts {
  slots: Int32Array;
  mask: number;
  filter: Int32Array;
  overflow: [number, Int32Array][];
  seed1: number;
  seed2: number;
  size: number;
  setCount: number;
}

export class DomainTable {
  private readonly mask2: number;
  private readonly fmask: number;

  constructor(
    private readonly slots: Int32Array,
    private readonly mask: number,
    private readonly filter: Int32Array,
    private readonly overflow: Map<number, Int32Array>,
    private readonly seed1: number,
    private readonly seed2: number,
    /** Number of distinct names stored (interior-only parents excluded). */
    readonly size: number,
    /** One more than the largest set id. */
    readonly setCount: number,
  ) {
    this.mask2 = (mask << 1) | 1;
    this.fmask = (filter.length >>> 1) - 1;
  }

  static fromParts(p: DomainTableParts): DomainTable {
    return new DomainTable(
      p.slots,
      p.mask,
      p.filter,
      new Map(p.overflow),
      p.seed1,
      p.seed2,
      p.size,
      p.setCount,
    );
  }

  toParts(): DomainTableParts {
    return {
      slots: this.slots,
      mask: this.mask,
      filter: this.filter,
      overflow: [...this.overflow],
      seed1: this.seed1,
      seed2: this.seed2,
      size: this.size,
      setCount: this.setCount,
    };
  }

  /** True when any pattern of any set matches the host. */
  has(host: string): boolean {
    return this.walk(host, null, 0);
  }

  /** Sets `stamps[setId] = gen` for every set with a matching pattern; true if any matched. */
  collect(host: string, stamps: Uint32Array, gen: number): boolean {
    return this.walk(host, stamps, gen);
  }

  private walk(host: string, stamps: Uint32Array | null, gen: number): boolean {
    const slots = this.slots;
    const filter = this.filter;
    const mask = this.mask;
    const mask2 = this.mask2;
    const fmask = this.fmask;
    let end = host.length;
    if (end > 0 && host.charCodeAt(end - 1) === 46) end--;
    let h1 = this.seed1;
    let h2 = this.seed2;
    let hit = false;
    for (let i = end - 1; ; i--) {
      let c = i >= 0 ? host.charCodeAt(i) : 46;
      if (c === 46) {
        // Bloom filter first (inlined filterOf/filterBits): it stays in cache, the table does not.
        let f = Math.imul(h2 ^ (h2 >>> 15), 0x2c1b3c6d);
        f = ((f ^ (f >>> 12)) & fmask) << 1;
        const bits = Math.imul(h1 ^ h2, 0x9e3779b1);
        const m0 = (1 << (bits & 31)) | (1 << ((bits >>> 5) & 31));
        const m1 = (1 << ((bits >>> 10) & 31)) | (1 << ((bits >>> 15) & 31));
        if ((filter[f]! & m0) !== m0 || (filter[f + 1]! & m1) !== m1) return hit;
        const tag = h1 >>> 20;
        let at = slotOf(h1, mask, 1);
        let meta = slots[at + 1]!;
        while (meta !== 0 && (slots[at] !== h2 || meta >>> 20 !== tag)) {
          at = (at + 2) & mask2;
          meta = slots[at + 1]!;
        }
        if (meta === 0) return hit;
        const want = i < 0 ? MODE_EXACT : MODE_SUB;
        if ((meta & META_OVERFLOW) !== 0) {
          if (this.visitOverflow(at, want, stamps, gen)) {
            if (stamps === null) return true;
            hit = true;
          }
        } else if (((meta >>> 2) & want) !== 0) {
          if (stamps === null) return true;
          stamps[(meta >>> 5) & MAX_INLINE_SET] = gen;
          hit = true;
        }
        if (i < 0 || (meta & META_INTERIOR) === 0) return hit;
      } else if (c > 127) {
        const ascii = toAsciiHost(host);
        return ascii !== null && ascii !== host && this.walk(ascii, stamps, gen);
      } else if (c >= 65 && c <= 90) {
        c |= 32;
      }
      h1 = Math.imul(h1 ^ c, P1);
      h2 = Math.imul(((h2 << 5) | (h2 >>> 27)) ^ c, P2);
    }
  }

  private visitOverflow(at: number, want: number, stamps: Uint32Array | null, gen: number): boolean {
    const memberships = this.overflow.get(at);
    if (!memberships) return false;
    let hit = false;
    for (const membership of memberships) {
      if ((membership & want) === 0) continue;
      if (stamps === null) return true;
      stamps[membership >>> 2] = gen;
      hit = true;
    }
    return hit;
  }

  /** Which patterns match the host, for traces and tests (allocates; not for the hot path). */
  explain(host: string): DomainMatch[] {
    const ascii = toAsciiHost(host.toLowerCase());
    if (ascii === null) return [];
    const labels = ascii.split(".");
    const matches: DomainMatch[] = [];
    for (let k = labels.length - 1; k >= 0; k--) {
      const suffix = labels.slice(k).join(".");
      const want = k === 0 ? MODE_EXACT : MODE_SUB;
      const at = this.find(suffix);
      if (at < 0) break;
      const meta = this.slots[at + 1]!;
      const memberships =
        (meta & META_OVERFLOW) !== 0
          ? Array.from(this.overflow.get(at) ?? [])
          : [(((meta >>> 5) & MAX_INLINE_SET) << 2) | ((meta >>> 2) & 3)];
      for (const m of memberships) {
        if ((m & want) !== 0) matches.push({ pattern: describePattern(suffix, m & 3), setId: m >>> 2 });
      }
      if ((meta & META_INTERIOR) === 0) break;
    }
    return matches;
  }

  private find(name: string): number {
    const [h1, h2] = hashName(name, this.seed1, this.seed2);
    let at = slotOf(h1, this.mask, 1);
    while (this.slots[at + 1] !== 0) {
      if (this.slots[at] === h2 && this.slots[at + 1]! >>> 20 === h1 >>> 20) return at;
      at = (at + 2) & this.mask2;
    }
    return -1;
  }
}
