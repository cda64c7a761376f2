// IPv4/IPv6 addresses and CIDR sets. The proxy asks `contains` on every request, so parsing a
// client address allocates nothing and lookups are a binary search over merged ranges.
// IPv4-mapped IPv6 (`::ffff:1.2.3.4`) is treated as the IPv4 address everywhere.

export type ParsedIp =
  | { version: 4; value: number }
  | { version: 6; words: [number, number, number, number] };

const MAPPED_LO = 0xffff_0000_0000n;
const MAPPED_HI = 0xffff_ffff_ffffn;
const groups = new Uint16Array(8);
const scratch = new Uint32Array(4);

/** Parses dotted-quad IPv4 in text[start, end); returns the unsigned value or -1. Leading zeros are rejected (octal ambiguity). */
function parseIpv4(text: string, start = 0, end = text.length): number {
  let value = 0;
  let octets = 0;
  let i = start;
  while (i < end) {
    let octet = 0;
    const first = i;
    while (i < end) {
      const c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      octet = octet * 10 + (c - 48);
      i++;
    }
    const digits = i - first;
    if (digits === 0 || digits > 3 || octet > 255 || (digits > 1 && text.charCodeAt(first) === 48)) return -1;
    value = value * 256 + octet;
    octets++;
    if (i === end) break;
    if (text.charCodeAt(i) !== 46 || octets === 4) return -1;
    i++;
    if (i === end) return -1;
  }
  return octets === 4 ? value : -1;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 32;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/** Parses IPv6 text (with `::` and an optional dotted-quad tail) into four 32-bit words. */
function parseIpv6Into(text: string, end: number, out: Uint32Array): boolean {
  let i = 0;
  let count = 0;
  let gap = -1;
  if (end < 2) return false;
  if (text.charCodeAt(0) === 58) {
    if (text.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < end) {
    if (count === 8) return false;
    let j = i;
    let value = 0;
    while (j < end && j - i < 5) {
      const digit = hexValue(text.charCodeAt(j));
      if (digit < 0) break;
      value = value * 16 + digit;
      j++;
    }
    if (j < end && text.charCodeAt(j) === 46) {
      if (count > 6) return false;
      const v4 = parseIpv4(text, i, end);
      if (v4 < 0) return false;
      groups[count++] = v4 >>> 16;
      groups[count++] = v4 & 0xffff;
      i = end;
      break;
    }
    if (j === i || j - i > 4) return false;
    groups[count++] = value;
    i = j;
    if (i === end) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i < end && text.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = count;
      i++;
    } else if (i === end) {
      return false;
    }
  }
  if (gap < 0 ? count !== 8 : count > 7) return false;
  const words = [0, 0, 0, 0, 0, 0, 0, 0];
  // Without "::" every group is in the head (a tail of `count` read past the groups: all-zero words).
  const tail = gap < 0 ? 0 : count - gap;
  const head = gap < 0 ? count : gap;
  for (let k = 0; k < head; k++) words[k] = groups[k]!;
  for (let k = 0; k < tail; k++) words[8 - tail + k] = groups[head + k]!;
  for (let k = 0; k < 4; k++) out[k] = ((words[2 * k]! << 16) | words[2 * k + 1]!) >>> 0;
  return true;
}

/** Parses an address into `out`: returns 4 (out[0] holds it, mapped IPv6 included), 6, or 0 when invalid. */
export function parseIpInto(text: string, out: Uint32Array): 0 | 4 | 6 {
  const v4 = parseIpv4(text);
  if (v4 >= 0) {
    out[0] = v4;
    return 4;
  }
  let start = 0;
  let end = text.length;
  if (text.charCodeAt(0) === 91 && text.charCodeAt(end - 1) === 93) {
    start = 1;
    end--;
  }
  const zone = text.indexOf("%");
  if (zone >= 0 && zone < end) end = zone;
  const body = start === 0 && end === text.length ? text : text.slice(start, end);
  if (!parseIpv6Into(body, body.length, out)) return 0;
  if (out[0] === 0 && out[1] === 0 && out[2] === 0xffff) {
    out[0] = out[3]!;
    return 4;
  }
  return 6;
}

export function parseIp(text: string): ParsedIp | null {
  const words = new Uint32Array(4);
  const kind = parseIpInto(text, words);
  if (kind === 4) return { version: 4, value: words[0]! };
  if (kind === 6) return { version: 6, words: [words[0]!, words[1]!, words[2]!, words[3]!] };
  return null;
}

interface Range {
  lo: bigint;
  hi: bigint;
}

/** Parses `ip` or `ip/prefix` into an inclusive range; host bits below the prefix are ignored. */
function parseCidr(text: string): { v4: boolean; range: Range } | null {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  if (address.includes("%") || address.startsWith("[")) return null;
  const words = new Uint32Array(4);
  const v4value = parseIpv4(address);
  const v4 = v4value >= 0;
  if (!v4 && !parseIpv6Into(address, address.length, words)) return null;
  const bits = v4 ? 32 : 128;
  let prefix = bits;
  if (slash >= 0) {
    const digits = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(digits)) return null;
    prefix = Number(digits);
    if (prefix > bits) return null;
  }
  let value = v4
    ? BigInt(v4value)
    : (BigInt(words[0]!) << 96n) |
      (BigInt(words[1]!) << 64n) |
      (BigInt(words[2]!) << 32n) |
      BigInt(words[3]!);
  const hostBits = BigInt(bits - prefix);
  value = (value >> hostBits) << hostBits;
  return { v4, range: { lo: value, hi: value + (1n << hostBits) - 1n } };
}

export function isValidCidr(text: string): boolean {
  return parseCidr(text) !== null;
}

function merge(ranges: Range[]): Range[] {
  ranges.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const merged: Range[] = [];
  for (const range of ranges) {
    const last = merged[merged.length - 1];
    if (last && range.lo <= last.hi + 1n) {
      if (range.hi > last.hi) last.hi = range.hi;
    } else {
      merged.push({ ...range });
    }
  }
  return merged;
}

function compareWords(table: Uint32Array, at: number, words: Uint32Array): number {
  for (let k = 0; k < 4; k++) {
    const a = table[at + k]!;
    const b = words[k]!;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

export class CidrSet {
  private constructor(
    private readonly v4Lo: Uint32Array,
    private readonly v4Hi: Uint32Array,
    private readonly v6Lo: Uint32Array,
    private readonly v6Hi: Uint32Array,
  ) {}

  /** Builds a set from IPs and CIDRs; throws naming the first entry that does not parse. */
  static parse(list: readonly string[]): CidrSet {
    const v4: Range[] = [];
    const v6: Range[] = [];
    for (const entry of list) {
      const parsed = parseCidr(entry.trim());
      if (!parsed) throw new Error(`not an IP address or CIDR: ${entry}`);
      if (parsed.v4) {
        v4.push(parsed.range);
        continue;
      }
      v6.push(parsed.range);
      const lo = parsed.range.lo > MAPPED_LO ? parsed.range.lo : MAPPED_LO;
      const hi = parsed.range.hi < MAPPED_HI ? parsed.range.hi : MAPPED_HI;
      if (lo <= hi) v4.push({ lo: lo - MAPPED_LO, hi: hi - MAPPED_LO });
    }
    const m4 = merge(v4);
    const m6 = merge(v6);
    const v6Lo = new Uint32Array(m6.length * 4);
    const v6Hi = new Uint32Array(m6.length * 4);
    m6.forEach((range, i) => {
      for (let k = 0; k < 4; k++) {
        const shift = BigInt(96 - 32 * k);
        v6Lo[i * 4 + k] = Number((range.lo >> shift) & 0xffff_ffffn);
        v6Hi[i * 4 + k] = Number((range.hi >> shift) & 0xffff_ffffn);
      }
    });
    return new CidrSet(
      Uint32Array.from(m4, (r) => Number(r.lo)),
      Uint32Array.from(m4, (r) => Number(r.hi)),
      v6Lo,
      v6Hi,
    );
  }

  get size(): number {
    return this.v4Lo.length + this.v6Lo.length / 4;
  }

  contains(ip: string): boolean {
    const kind = parseIpInto(ip, scratch);
    if (kind === 4) return this.containsV4(scratch[0]!);
    if (kind === 6) return this.containsV6(scratch);
    return false;
  }

  containsV4(value: number): boolean {
    const lo = this.v4Lo;
    let left = 0;
    let right = lo.length - 1;
    let found = -1;
    while (left <= right) {
      const mid = (left + right) >> 1;
      if (lo[mid]! <= value) {
        found = mid;
        left = mid + 1;
      } else {
        right = mid - 1;
      }
    }
    return found >= 0 && value <= this.v4Hi[found]!;
  }

  containsV6(words: Uint32Array): boolean {
    let left = 0;
    let right = this.v6Lo.length / 4 - 1;
    let found = -1;
    while (left <= right) {
      const mid = (left + right) >> 1;
      if (compareWords(this.v6Lo, mid * 4, words) <= 0) {
        found = mid;
        left = mid + 1;
      } else {
        right = mid - 1;
      }
    }
    return found >= 0 && compareWords(this.v6Hi, found * 4, words) >= 0;
  }
}
