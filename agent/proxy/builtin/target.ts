// Request targets: absolute-form URLs of proxied requests and CONNECT's authority-form.

export interface ProxyTarget {
  host: string;
  port: number;
  /** Path with query, always starting with "/". */
  path: string;
  /** The Host header to send upstream. */
  authority: string;
  /** The URL had neither path nor query: OPTIONS goes out in asterisk-form (RFC 9112 §3.2.4). */
  pathless: boolean;
}

/** Parses an absolute-form "http://host[:port]/path" target; null when it is not one. */
export function parseAbsoluteTarget(target: string): ProxyTarget | null {
  if (target.length < 8 || target.slice(0, 7).toLowerCase() !== "http://") return null;
  let end = target.length;
  for (let i = 7; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35) {
      end = i;
      break;
    }
  }
  let authority = target.slice(7, end);
  const at = authority.lastIndexOf("@");
  if (at >= 0) authority = authority.slice(at + 1);
  const hostPort = parseAuthority(authority, 80);
  if (hostPort === null) return null;
  const pathless = end === target.length || target.charCodeAt(end) === 35;
  let path = end < target.length ? target.slice(end) : "/";
  const hash = path.indexOf("#");
  if (hash >= 0) path = path.slice(0, hash);
  if (path.charCodeAt(0) === 63) path = `/${path}`;
  if (path.length === 0) path = "/";
  return { host: hostPort.host, port: hostPort.port, path, authority, pathless };
}

/** "host:port", "[v6]:port" or, with a default port, a bare host. Host comes back lower-cased. */
export function parseAuthority(
  authority: string,
  defaultPort: number,
): { host: string; port: number } | null {
  let host: string;
  let portText = "";
  if (authority.charCodeAt(0) === 91) {
    const close = authority.indexOf("]");
    if (close < 0) return null;
    host = authority.slice(1, close);
    const rest = authority.slice(close + 1);
    if (rest.length > 0) {
      if (rest.charCodeAt(0) !== 58) return null;
      portText = rest.slice(1);
    }
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon >= 0) {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    } else {
      host = authority;
    }
  }
  let port = defaultPort;
  if (portText.length > 0) {
    if (!/^\d{1,5}$/.test(portText)) return null;
    port = Number(portText);
  }
  if (host.length === 0 || host.length > 255 || port <= 0 || port > 65535) return null;
  if (/[\s/\\?#@]/.test(host)) return null;
  return { host: host.toLowerCase(), port };
}
