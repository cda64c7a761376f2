// Builds a DomainTable. While building, slots are 16 bytes [hash1, hash2, payload, flags] so the
// table can grow (rehash needs all of hash1); build() packs them into the 8-byte lookup layout
// at the same positions, adds the Bloom filter and moves multi-set names into the overflow map.
// payload >= 0 is one membership (setId << 2 | mode, mode 0 = interior only); payload < 0
// indexes `lists`, the memberships of a name that is in several sets.

import { filterBits, filterOf, P1, P2, randomSeeds, slotOf } from "./domain-hash";
import { parseDomainPattern } from "./domain-name";
import { DomainTable, MAX_INLINE_SET, META_INTERIOR, META_OCCUPIED, META_OVERFLOW } from "./domain-table";

const OCCUPIED = 1;
const INTERIOR = 2;
const MAX_LOAD = 0.7;
const FILTER_BITS_PER_NAME = 10;

export class DomainTableBuilder {
  private slots: Int32Array;
  private mask: number;
  private used = 0;
  private names = 0;
  private maxSet = -1;
  private readonly lists: number[][] = [];
  private readonly seed1: number;
  private readonly seed2: number;

  /** `expectedPatterns` sizes the table up front (parents add ~30%) to avoid rehashing. */
  constructor(expectedPatterns = 16) {
    let capacity = 16;
    while (capacity * MAX_LOAD < expectedPatterns * 1.3) capacity *= 2;
    this.slots = new Int32Array(capacity * 4);
    this.mask = capacity - 1;
    [this.seed1, this.seed2] = randomSeeds();
  }

  /** Adds `example.com`, `=example.com` or `*.example.com` to a set; false if it is not a domain. */
  add(pattern: string, setId = 0): boolean {
    const parsed = parseDomainPattern(pattern, true);
    if (!parsed) return false;
    this.addHost(parsed.host, parsed.mode, setId);
    return true;
  }

  /** Adds an already normalised (lowercase ASCII, no trailing dot) host with MODE_* bits. */
  addHost(host: string, mode: number, setId: number): void {
    if (setId > this.maxSet) this.maxSet = setId;
    let h1 = this.seed1;
    let h2 = this.seed2;
    for (let i = host.length - 1; i >= 0; i--) {
      const c = host.charCodeAt(i);
      if (c === 46) {
        // locate() may grow and replace this.slots: take the offset first, then index the new array.
        const at = this.locate(h1, h2);
        this.slots[at + 3]! |= INTERIOR;
      }
      h1 = Math.imul(h1 ^ c, P1);
      h2 = Math.imul(((h2 << 5) | (h2 >>> 27)) ^ c, P2);
    }
    this.addMembership(this.locate(h1, h2), (setId << 2) | mode);
  }

  private addMembership(at: number, membership: number): void {
    const setId = membership >>> 2;
    const payload = this.slots[at + 2]!;
    if (payload >= 0) {
      if ((payload & 3) === 0) {
        this.names++;
        this.slots[at + 2] = membership;
      } else if (payload >>> 2 === setId) {
        this.slots[at + 2] = payload | membership;
      } else {
        this.lists.push([payload, membership]);
        this.slots[at + 2] = -this.lists.length;
      }
      return;
    }
    const list = this.lists[-payload - 1]!;
    const same = list.findIndex((m) => m >>> 2 === setId);
    if (same >= 0) list[same]! |= membership;
    else list.push(membership);
  }

  /** Finds or inserts the slot for a hash pair; returns its offset. */
  private locate(h1: number, h2: number): number {
    const mask4 = (this.mask << 2) | 3;
    const tag = h1 >>> 20;
    let at = slotOf(h1, this.mask, 2);
    // Same identity test as the lookup layout (hash2 + top bits of hash1), so two names the
    // lookup could not tell apart share one slot instead of shadowing each other.
    while (this.slots[at + 3] !== 0) {
      if (this.slots[at + 1] === h2 && this.slots[at]! >>> 20 === tag) return at;
      at = (at + 4) & mask4;
    }
    if (this.used + 1 > (this.mask + 1) * MAX_LOAD) {
      this.grow();
      return this.locate(h1, h2);
    }
    this.used++;
    this.slots[at] = h1;
    this.slots[at + 1] = h2;
    this.slots[at + 3] = OCCUPIED;
    return at;
  }

  private grow(): void {
    const old = this.slots;
    const capacity = (this.mask + 1) * 2;
    this.slots = new Int32Array(capacity * 4);
    this.mask = capacity - 1;
    const mask4 = (this.mask << 2) | 3;
    for (let from = 0; from < old.length; from += 4) {
      if (old[from + 3] === 0) continue;
      let at = slotOf(old[from]!, this.mask, 2);
      while (this.slots[at + 3] !== 0) at = (at + 4) & mask4;
      this.slots.set(old.subarray(from, from + 4), at);
    }
  }

  build(): DomainTable {
    const source = this.slots;
    const capacity = this.mask + 1;
    const packed = new Int32Array(capacity * 2);
    const overflow = new Map<number, Int32Array>();
    let blocks = 16;
    while (blocks * 64 < this.used * FILTER_BITS_PER_NAME) blocks *= 2;
    const filter = new Int32Array(blocks * 2);
    for (let k = 0; k < capacity; k++) {
      const from = k * 4;
      const flags = source[from + 3]!;
      if (flags === 0) continue;
      const h1 = source[from]!;
      const h2 = source[from + 1]!;
      const payload = source[from + 2]!;
      let meta = META_OCCUPIED | (h1 & 0xfff00000);
      if ((flags & INTERIOR) !== 0) meta |= META_INTERIOR;
      if (payload >= 0 && payload >>> 2 < MAX_INLINE_SET) {
        meta |= ((payload & 3) << 2) | ((payload >>> 2) << 5);
      } else {
        meta |= META_OVERFLOW;
        overflow.set(k * 2, Int32Array.from(payload >= 0 ? [payload] : this.lists[-payload - 1]!));
      }
      packed[k * 2] = h2;
      packed[k * 2 + 1] = meta;
      const f = filterOf(h2, blocks - 1);
      const [m0, m1] = filterBits(h1, h2);
      filter[f]! |= m0;
      filter[f + 1]! |= m1;
    }
    return new DomainTable(
      packed,
      this.mask,
      filter,
      overflow,
      this.seed1,
      this.seed2,
      this.names,
      this.maxSet + 1,
    );
  }
}

/** A table holding one set (id 0) of patterns; entries that are not domains are skipped. */
export function buildDomainTable(patterns: readonly string[]): DomainTable {
  const builder = new DomainTableBuilder(patterns.length);
  for (const pattern of patterns) builder.add(pattern, 0);
  return builder.build();
}
