// The policy's `destinations` and `tls` sections compiled for the node's destination guard
// (agent/proxy/builtin/destination-guard.ts): which resolved addresses and ports the proxy may
// connect to, and what a CONNECT tunnel's TLS server name must agree with. The guard itself (the
// always-refused address classes, DNS resolution) lives on the node; this is only the policy's part.

import type { CidrSet } from "./cidr";
import type { Policy } from "./definition";
import type { CompiledDestinations } from "./types";

/** Squid's default `Safe_ports`: where plain HTTP may go unless the policy lists its own ports. */
export const DEFAULT_HTTP_PORTS: readonly (number | string)[] = [
  80,
  21,
  443,
  70,
  210,
  "1025-65535",
  280,
  488,
  591,
  777,
];
/** Squid's default `SSL_ports`: CONNECT goes to 443 only unless the policy lists more. */
export const DEFAULT_CONNECT_PORTS: readonly (number | string)[] = [443];

export const PORT_HTTP = 1;
export const PORT_CONNECT = 2;

/** `443` or `"8000-8999"` → [low, high]; null when it is neither. */
export function parsePortEntry(entry: number | string): [number, number] | null {
  if (typeof entry === "number")
    return Number.isInteger(entry) && entry >= 1 && entry <= 65_535 ? [entry, entry] : null;
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(entry);
  if (!m) return null;
  const low = Number(m[1]);
  const high = Number(m[2]);
  return low >= 1 && high <= 65_535 && low <= high ? [low, high] : null;
}

function markPorts(table: Uint8Array, entries: readonly (number | string)[], bit: number): void {
  for (const entry of entries) {
    const range = parsePortEntry(entry);
    if (range === null) throw new Error(`not a port or port range: ${entry}`);
    for (let port = range[0]; port <= range[1]; port++) table[port]! |= bit;
  }
}

/** `cidrsOf` turns entries (inline or `@list`) into one set, as the rules' `clients` do. */
export function compileDestinations(
  policy: Policy,
  cidrsOf: (entries: readonly string[]) => CidrSet,
): CompiledDestinations {
  const d = policy.destinations;
  const ports = new Uint8Array(65_536);
  markPorts(ports, d?.httpPorts ?? DEFAULT_HTTP_PORTS, PORT_HTTP);
  markPorts(ports, d?.connectPorts ?? DEFAULT_CONNECT_PORTS, PORT_CONNECT);
  return Object.freeze({
    allow: d?.allow ? cidrsOf(d.allow) : null,
    deny: d?.deny ? cidrsOf(d.deny) : null,
    privateRanges: d?.privateRanges ?? "allow",
    ports,
    sniMismatch: policy.tls?.sniMismatch ?? "log",
  });
}

/** For a node that has no policy-given sections (and tests): the defaults above. */
export const DEFAULT_DESTINATIONS: CompiledDestinations = (() => {
  const ports = new Uint8Array(65_536);
  markPorts(ports, DEFAULT_HTTP_PORTS, PORT_HTTP);
  markPorts(ports, DEFAULT_CONNECT_PORTS, PORT_CONNECT);
  return Object.freeze({
    allow: null,
    deny: null,
    privateRanges: "allow" as const,
    ports,
    sniMismatch: "log" as const,
  });
})();
