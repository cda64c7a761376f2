// The PAC script itself, pure (no D1): a site's settings and its healthy nodes in, JavaScript out.
import type { SiteSettings } from "./site-settings";

const ADDRESS_TEXT = /^[A-Za-z0-9.:[\]-]{3,260}$/;

/**
 * Where clients reach a node: the admin-set public address, else the listen address the node
 * reports, with a wildcard host (0.0.0.0, ::) replaced by the address the node polls from.
 */
export function proxyAddress(node: {
  publicAddress: string | null;
  proxyListen: string | null;
  lastAddress: string | null;
}): string | null {
  if (node.publicAddress) return node.publicAddress;
  const listen = node.proxyListen;
  if (!listen) return null;
  const colon = listen.lastIndexOf(":");
  if (colon <= 0) return null;
  let host = listen.slice(0, colon);
  const port = listen.slice(colon + 1);
  if (!/^\d{1,5}$/.test(port)) return null;
  if (host === "0.0.0.0" || host === "[::]" || host === "::" || host === "") {
    if (!node.lastAddress) return null;
    host = node.lastAddress.includes(":") ? `[${node.lastAddress}]` : node.lastAddress;
  }
  const address = `${host}:${port}`;
  return ADDRESS_TEXT.test(address) ? address : null;
}

export interface PacEntry {
  nodeId: string;
  hostname: string;
  address: string;
}

function ipv4Mask(bits: number): string {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [24, 16, 8, 0].map((s) => (mask >>> s) & 255).join(".");
}

/** The PAC script; every value is a validated name or address, embedded as a JSON string literal. */
export function renderPac(
  site: string,
  settings: SiteSettings,
  entries: PacEntry[],
  generatedAt: Date,
): string {
  const domains: string[] = [];
  const nets: [string, string][] = [];
  for (const entry of settings.bypass) {
    const cidr = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(entry);
    if (cidr) nets.push([cidr[1]!, ipv4Mask(Number(cidr[2] ?? 32))]);
    else if (!entry.includes(":")) domains.push(entry.toLowerCase().replace(/^\.+|\.+$/g, ""));
    // IPv6 CIDRs: PAC has no portable IPv6 test (isInNetEx is Chromium/IE only), so they are left out.
  }
  const proxies = entries.map((e) => `PROXY ${e.address}`);
  if (settings.allowDirect) proxies.push("DIRECT");
  // No healthy node and no DIRECT: name a closed port, so browsers fail visibly instead of bypassing policy.
  const answer = proxies.length > 0 ? proxies.join("; ") : "PROXY 127.0.0.1:9";
  const lines = [
    `// Fleetgate PAC for site ${JSON.stringify(site)}, generated ${generatedAt.toISOString()}.`,
    `// Healthy nodes in failover order: ${entries.map((e) => e.hostname).join(", ") || "none"}.`,
    "function FindProxyForURL(url, host) {",
    "  host = host.toLowerCase();",
    '  if (isPlainHostName(host)) return "DIRECT";',
    `  var domains = ${JSON.stringify(domains)};`,
    "  for (var i = 0; i < domains.length; i++) {",
    '    if (host === domains[i] || dnsDomainIs(host, "." + domains[i])) return "DIRECT";',
    "  }",
    // Only IP literals are tested against the bypass networks: resolving every name would make each
    // request wait for DNS in the browser (name bypasses go in the domain list).
    `  var nets = ${JSON.stringify(nets)};`,
    "  if (/^\\d+\\.\\d+\\.\\d+\\.\\d+$/.test(host)) {",
    "    for (var j = 0; j < nets.length; j++) {",
    '      if (isInNet(host, nets[j][0], nets[j][1])) return "DIRECT";',
    "    }",
    "  }",
    `  return ${JSON.stringify(answer)};`,
    "}",
    "",
  ];
  return lines.join("\n");
}
