// The destination guard: before the proxy connects anywhere it judges the address it will connect
// to, so a client cannot turn the proxy against the node itself or its network neighbourhood.
// docs/proxy.md "Destination guard" and docs/policy.md "Destinations" are the user-facing side.
//
// - A host is first normalised: IPv4 literals are read the way WHATWG URL and inet_aton read them
//   (`127.1`, `2130706433`, `0x7f000001`, `0177.0.0.1`, `0x7f.0.0.1`, `127.000.000.001` are all
//   127.0.0.1), IPv6 literals with their IPv4-mapped, -compatible and NAT64 forms judged as the
//   IPv4 address inside. A host that ends in a number but is no valid IPv4 address is refused.
// - A name is resolved once, the first address is judged, and the proxy connects to exactly that
//   address (never the name again), so DNS rebinding between check and connect cannot happen.
// - Refused unless the policy's `destinations.allow` lists them: loopback, link-local (169.254/16
//   incl. the cloud metadata address, fe80::/10), unspecified (0/8, ::), multicast, the reserved
//   240/4 (incl. broadcast), and the node's own addresses. Its own proxy port is refused always (a
//   request loop). `destinations.deny` refuses more; `privateRanges: "deny"` refuses RFC 1918,
//   100.64/10 and fc00::/7. Ports: CONNECT to 443 and plain HTTP to Squid's Safe_ports unless the
//   policy lists its own.
// IP literals are judged synchronously (the benchmark's and most intranet paths); only names wait.
// One file past 300 lines: the normalisation and the address ranges are one security decision and
// are read (and reviewed) together; the tests pin every case in test/agent/proxy-guard.test.ts.

import { parseIpInto } from "../../../protocol/policy/cidr";
import { PORT_CONNECT, PORT_HTTP } from "../../../protocol/policy/destinations";
import type { CompiledDestinations } from "../../../protocol/policy/types";

export type GuardVerdict =
  | { ok: true; address: string }
  | {
      ok: false;
      /** 403 for a refused destination, 502 when the name did not resolve. */
      status: 403 | 502;
      /** Logged as the record's rule, e.g. "guard:loopback". */
      rule: string;
      /** One sentence for the refusal page. */
      text: string;
    };

/** Resolves a name to addresses (first one used); the platform's is Bun.dns.lookup. */
export type Resolver = (name: string) => Promise<string[]>;

const CLASS_TEXT: Record<string, string> = {
  loopback: "is a loopback address (the proxy's own machine)",
  "link-local": "is a link-local address (e.g. a cloud metadata service)",
  unspecified: "is the unspecified address (the proxy's own machine)",
  multicast: "is a multicast address",
  reserved: "is a reserved or broadcast address",
  self: "is one of this proxy node's own addresses",
  private: "is in a private address range, which this policy does not let the proxy reach",
  denied: "is listed in the policy's destinations.deny",
};

// ---- host normalisation ----

/** WHATWG "ends in a number": the last label (ignoring one trailing dot) is decimal or 0x-hex. */
function endsInNumber(host: string): boolean {
  let end = host.length;
  if (end > 1 && host.charCodeAt(end - 1) === 46) end--;
  const start = host.lastIndexOf(".", end - 1) + 1;
  if (start >= end) return false;
  let digits = true;
  for (let i = start; i < end; i++) {
    const c = host.charCodeAt(i);
    if (c < 48 || c > 57) {
      digits = false;
      break;
    }
  }
  if (digits) return true;
  if (end - start < 2 || host.charCodeAt(start) !== 48 || (host.charCodeAt(start + 1) | 32) !== 120)
    return false;
  for (let i = start + 2; i < end; i++) if (hexDigit(host.charCodeAt(i)) < 0) return false;
  return true;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 32;
  return lower >= 97 && lower <= 102 ? lower - 87 : -1;
}

/** One WHATWG IPv4 number: 0x-hex, 0-octal or decimal; -1 when invalid. */
function ipv4Number(part: string): number {
  if (part.length === 0) return -1;
  let radix = 10;
  let at = 0;
  if (part.length >= 2 && part.charCodeAt(0) === 48 && (part.charCodeAt(1) | 32) === 120) {
    radix = 16;
    at = 2;
  } else if (part.length >= 2 && part.charCodeAt(0) === 48) {
    radix = 8;
    at = 1;
  }
  let value = 0;
  for (let i = at; i < part.length; i++) {
    const digit = hexDigit(part.charCodeAt(i));
    if (digit < 0 || digit >= radix) return -1;
    value = value * radix + digit;
    if (value > 0xffff_ffff) return -1;
  }
  return value;
}

/** The WHATWG URL IPv4 parser (also what inet_aton accepts); the unsigned value or -1. */
export function parseIpv4Whatwg(host: string): number {
  const parts = host.split(".");
  if (parts.length > 1 && parts[parts.length - 1] === "") parts.pop();
  if (parts.length > 4 || parts.length === 0) return -1;
  const numbers: number[] = [];
  for (const part of parts) {
    const n = ipv4Number(part);
    if (n < 0) return -1;
    numbers.push(n);
  }
  const last = numbers.pop()!;
  for (const n of numbers) if (n > 255) return -1;
  if (last >= 256 ** (4 - numbers.length)) return -1;
  let value = last;
  for (let i = 0; i < numbers.length; i++) value += numbers[i]! * 256 ** (3 - i);
  return value;
}

export function formatIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

const words = new Uint32Array(4);

/**
 * The host as the proxy judges and logs it: an IPv4 literal in dotted-quad form (whatever its
 * spelling), an IPv4-mapped IPv6 literal as its IPv4 address, other IPv6 literals and names as
 * they are. null: it ends in a number yet is no valid IPv4 address (WHATWG URL refuses it too).
 */
export function normalizeHost(host: string): string | null {
  // Fast path, allocation-free: already a canonical dotted quad (no leading zeros), the common case.
  const c = host.charCodeAt(host.length - 1);
  if (c >= 48 && c <= 57 && host.indexOf(":") < 0 && parseIpInto(host, words) === 4) return host;
  if (host.includes(":")) {
    const kind = parseIpInto(host, words);
    if (kind === 4) return formatIpv4(words[0]!);
    return kind === 6 ? host : null;
  }
  if (!endsInNumber(host)) return host;
  const v4 = parseIpv4Whatwg(host);
  return v4 < 0 ? null : formatIpv4(v4);
}

// ---- address classes ----

/** The always-refused class of an IPv4 address, or null. */
function v4Class(v: number): string | null {
  const a = v >>> 24;
  if (a === 127) return "loopback";
  if (a === 0) return "unspecified";
  if (a >= 224) return a < 240 ? "multicast" : "reserved";
  if (v >>> 16 === 0xa9fe) return "link-local";
  return null;
}

function v4Private(v: number): boolean {
  const a = v >>> 24;
  return a === 10 || v >>> 20 === 0xac1 || v >>> 16 === 0xc0a8 || v >>> 22 === 0x191;
}

/** The IPv4 address an IPv6 address carries (compatible ::a.b.c.d, ::ffff:0:a.b.c.d, NAT64 64:ff9b::/96), or -1. */
function embeddedV4(w: Uint32Array): number {
  if (w[1] !== 0) return -1;
  if (w[0] === 0 && (w[2] === 0 || w[2] === 0xffff_0000) && w[3]! > 1) return w[3]!;
  if (w[0] === 0x0064_ff9b && w[2] === 0) return w[3]!;
  return -1;
}

function v6Class(w: Uint32Array): string | null {
  if (w[0] === 0 && w[1] === 0 && w[2] === 0 && w[3]! <= 1) return w[3] === 0 ? "unspecified" : "loopback";
  const top = w[0]!;
  if (top >>> 22 === 0x3fa) return "link-local";
  if (top >>> 24 === 0xff) return "multicast";
  return null;
}

function v6Private(w: Uint32Array): boolean {
  return w[0]! >>> 25 === 0x7e || w[0]! >>> 22 === 0x3fb;
}

// ---- the guard ----

export interface SelfAddresses {
  v4: Set<number>;
  /** Canonical "w0:w1:w2:w3" hex keys. */
  v6: Set<string>;
  /** The proxy's own listening port: own address + this port is a request loop. */
  port: number;
}

function v6Key(w: Uint32Array): string {
  return `${w[0]!.toString(16)}:${w[1]!.toString(16)}:${w[2]!.toString(16)}:${w[3]!.toString(16)}`;
}

/** Builds the node's own address set from interface addresses (and the listen address). */
export function selfAddresses(addresses: readonly string[], port: number): SelfAddresses {
  const self: SelfAddresses = { v4: new Set(), v6: new Set(), port };
  const w = new Uint32Array(4);
  for (const address of addresses) {
    const kind = parseIpInto(address, w);
    if (kind === 4) self.v4.add(w[0]!);
    else if (kind === 6) self.v6.add(v6Key(w));
  }
  return self;
}

function refuse(address: string, klass: string): GuardVerdict {
  return {
    ok: false,
    status: 403,
    rule: `guard:${klass}`,
    text: `${address} ${CLASS_TEXT[klass] ?? "is refused"}.`,
  };
}

const scratch = new Uint32Array(4);

/** Judges one address (an IP literal, already normalised) for one port. */
export function judgeAddress(
  d: CompiledDestinations,
  self: SelfAddresses,
  address: string,
  port: number,
): GuardVerdict {
  return judgeParsed(d, self, address, parseIpInto(address, scratch), port);
}

/** `parsed` and `scratch` hold parseIpInto(address). */
function judgeParsed(
  d: CompiledDestinations,
  self: SelfAddresses,
  address: string,
  parsed: 0 | 4 | 6,
  port: number,
): GuardVerdict {
  let kind: number = parsed;
  if (kind === 0)
    return { ok: false, status: 403, rule: "guard:invalid", text: `${address} is not an IP address.` };
  const v4 = kind === 4 ? scratch[0]! : embeddedV4(scratch);
  if (v4 >= 0) kind = 4;
  if (kind === 4) {
    const isSelf = self.v4.has(v4);
    if (isSelf && port === self.port) return refuse(address, "self");
    if (d.deny?.containsV4(v4)) return refuse(address, "denied");
    if (d.allow?.containsV4(v4)) return { ok: true, address };
    const klass = v4Class(v4) ?? (isSelf ? "self" : null);
    if (klass !== null) return refuse(address, klass);
    if (d.privateRanges === "deny" && v4Private(v4)) return refuse(address, "private");
    return { ok: true, address };
  }
  const isSelf = self.v6.has(v6Key(scratch));
  if (isSelf && port === self.port) return refuse(address, "self");
  if (d.deny?.containsV6(scratch)) return refuse(address, "denied");
  if (d.allow?.containsV6(scratch)) return { ok: true, address };
  const klass = v6Class(scratch) ?? (isSelf ? "self" : null);
  if (klass !== null) return refuse(address, klass);
  if (d.privateRanges === "deny" && v6Private(scratch)) return refuse(address, "private");
  return { ok: true, address };
}

/** CONNECT to 443 and HTTP to Squid's Safe_ports unless the policy lists its own; null when allowed. */
export function judgePort(d: CompiledDestinations, isConnect: boolean, port: number): GuardVerdict | null {
  const bit = isConnect ? PORT_CONNECT : PORT_HTTP;
  if ((d.ports[port]! & bit) !== 0) return null;
  const listed = isConnect ? "destinations.connectPorts" : "destinations.httpPorts";
  return {
    ok: false,
    status: 403,
    rule: "guard:port",
    text: `Port ${port} is not allowed for ${isConnect ? "CONNECT" : "plain HTTP"} (the policy's ${listed}).`,
  };
}

export class DestinationGuard {
  private self: SelfAddresses = { v4: new Set(), v6: new Set(), port: 0 };

  constructor(private readonly resolver: Resolver) {}

  setSelf(self: SelfAddresses): void {
    this.self = self;
  }

  /**
   * `host` is normalised (normalizeHost). Port first, then the address: an IP literal is judged
   * now (a verdict returned), a name after one resolution (a promise of one).
   */
  judge(
    d: CompiledDestinations,
    isConnect: boolean,
    host: string,
    port: number,
  ): GuardVerdict | Promise<GuardVerdict> {
    const portVerdict = judgePort(d, isConnect, port);
    if (portVerdict !== null) return portVerdict;
    const kind = parseIpInto(host, scratch);
    if (kind !== 0) return judgeParsed(d, this.self, host, kind, port);
    return this.resolver(host).then(
      (addresses) => {
        const first = addresses[0];
        if (first === undefined)
          return { ok: false, status: 502, rule: "guard:dns", text: `${host} has no address.` };
        const address = first.startsWith("::ffff:") && first.includes(".") ? first.slice(7) : first;
        return judgeAddress(d, this.self, address, port);
      },
      (error: unknown): GuardVerdict => ({
        ok: false,
        status: 502,
        rule: "guard:dns",
        text: `${host} could not be resolved: ${error instanceof Error ? error.message : String(error)}.`,
      }),
    );
  }
}
