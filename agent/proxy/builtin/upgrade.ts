// Protocol upgrades over plain HTTP (RFC 9110 §7.8), for WebSocket through the proxy: `Upgrade` is
// hop-by-hop, so the exchange drops it like the others unless the client asked for it (Connection
// names "upgrade"); then it is forwarded, and after the origin's 101 the connection becomes a tunnel.

import { Field, type Head } from "./http-head";

const UPGRADE = "upgrade";

/** The Upgrade value of a head whose Connection names "upgrade" (e.g. "websocket"), or "". */
export function requestedUpgrade(head: Head): string {
  if (!head.connection.includes(UPGRADE)) return "";
  const { text, starts, colons, kinds } = head;
  let value = "";
  for (let i = 0; i < kinds.length; i++) {
    if (kinds[i] !== Field.HopByHop || colons[i]! - starts[i]! !== UPGRADE.length) continue;
    if (text.slice(starts[i]!, colons[i]!).toLowerCase() !== UPGRADE) continue;
    const lineEnd = text.indexOf("\r\n", colons[i]!);
    const part = text.slice(colons[i]! + 1, lineEnd < 0 ? text.length : lineEnd).trim();
    value = value === "" ? part : `${value}, ${part}`;
  }
  return value;
}
