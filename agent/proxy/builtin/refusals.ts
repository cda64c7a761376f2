// The answers the proxy gives instead of forwarding: 400 for what is not a proxy request, 503 with no
// policy, 407 challenges, 403 for the access list and for blocking rules (an HTML block page for plain
// HTTP, a short plain answer for CONNECT, whose body browsers never show), and OPTIONS and TRACE
// that reached their last hop (Max-Forwards: 0).

import type { CompiledPolicy, Decision } from "../../../protocol/policy/types";
import type { LogRecord } from "../../../protocol/wire";
import type { GuardVerdict } from "./destination-guard";
import { Field, type Head } from "./http-head";
import { blockPage, connectRefusal, plainAnswer, simplePage } from "./pages";

export interface Refusal {
  status: number;
  action: LogRecord["action"];
  bytes: Uint8Array;
}

/** What the proxy relays: any method, and CONNECT. */
const ALLOW = "Allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, CONNECT\r\n";
/** Fields a TRACE echo leaves out (RFC 9110 §9.3.8: the final recipient excludes sensitive data). */
const SECRET_FIELDS = new Set(["authorization", "cookie"]);

/**
 * RFC 9110 §7.6.2: an OPTIONS or TRACE with Max-Forwards 0 is answered by the proxy itself.
 * OPTIONS gets 200 with Allow; TRACE gets 200 message/http echoing the request head as received,
 * without credentials and cookies, so a TRACE cannot read what a browser or this proxy attached.
 */
export function answerAtLastHop(head: Head, requestId: string, keep: boolean): Refusal {
  if (head.method === "OPTIONS") {
    return {
      status: 200,
      action: "allow",
      bytes: plainAnswer(200, ALLOW, new Uint8Array(0), requestId, keep),
    };
  }
  const { text, starts, colons, kinds } = head;
  let echo = text.slice(0, starts[0] ?? text.length);
  if (starts.length === 0) echo += "\r\n";
  for (let i = 0; i < starts.length; i++) {
    const name = text.slice(starts[i]!, colons[i]!).toLowerCase();
    if (kinds[i] === Field.ProxyAuthorization || SECRET_FIELDS.has(name)) continue;
    echo += i + 1 < starts.length ? text.slice(starts[i]!, starts[i + 1]!) : `${text.slice(starts[i]!)}\r\n`;
  }
  const body = Buffer.from(`${echo}\r\n`, "latin1");
  return {
    status: 200,
    action: "allow",
    bytes: plainAnswer(200, "Content-Type: message/http\r\n", body, requestId, keep),
  };
}

export function refuseBadConnect(requestId: string): Refusal {
  return { status: 400, action: "error", bytes: connectRefusal(400, "CONNECT needs host:port.", requestId) };
}

export function refuseNotProxyRequest(target: string, requestId: string): Refusal {
  const text = target.startsWith("/")
    ? "This is a forward proxy: configure it as your HTTP proxy instead of opening it directly."
    : "Only http:// URLs can be requested through this proxy; HTTPS goes through CONNECT.";
  return {
    status: 400,
    action: "error",
    bytes: simplePage(400, "Not a proxy request", text, requestId, false),
  };
}

export function refuseNoPolicy(isConnect: boolean, requestId: string, keep: boolean): Refusal {
  const text = "This proxy node has not received a policy yet, so it forwards nothing. Try again shortly.";
  const bytes = isConnect
    ? connectRefusal(503, text, requestId)
    : simplePage(503, "No policy yet", text, requestId, keep);
  return { status: 503, action: "error", bytes };
}

/** `action` is the decision's, possibly turned into "auth" for an anonymous client. */
export function refuseDecision(
  compiled: CompiledPolicy,
  decision: Decision,
  action: "block" | "auth",
  isConnect: boolean,
  url: string,
  requestId: string,
  keep: boolean,
): Refusal {
  if (action === "auth") {
    const realm = compiled.realm.replace(/["\\]/g, "\\$&");
    const challenge = `Proxy-Authenticate: Basic realm="${realm}"\r\n`;
    const text = "This proxy needs your user name and password.";
    const bytes = isConnect
      ? connectRefusal(407, text, requestId, challenge)
      : simplePage(407, "Proxy authentication required", text, requestId, keep, challenge);
    return { status: 407, action: "auth", bytes };
  }
  if (decision.reason === "access-list") {
    const text = "This proxy does not accept requests from your address.";
    const bytes = isConnect
      ? connectRefusal(403, text, requestId)
      : simplePage(403, "Access denied", text, requestId, keep);
    return { status: 403, action: "block", bytes };
  }
  const bytes = isConnect
    ? connectRefusal(403, `Blocked by policy${decision.rule ? `: ${decision.rule.id}` : ""}.`, requestId)
    : blockPage(compiled, decision, url, requestId, keep);
  return { status: 403, action: "block", bytes };
}

/** The destination guard refused (403) or the name did not resolve (502). */
export function refuseDestination(
  verdict: Extract<GuardVerdict, { ok: false }>,
  isConnect: boolean,
  requestId: string,
  keep: boolean,
): Refusal {
  const status = verdict.status;
  const title = status === 403 ? "Destination not allowed" : "Origin unreachable";
  const text =
    status === 403 ? `This proxy does not connect there: ${verdict.text} (${verdict.rule})` : verdict.text;
  const bytes = isConnect
    ? connectRefusal(status, text, requestId)
    : simplePage(status, title, text, requestId, keep);
  return { status, action: status === 403 ? "block" : "error", bytes };
}

export function refuseHostSyntax(host: string, isConnect: boolean, requestId: string): Refusal {
  const text = `${host} ends in a number but is not a valid IPv4 address.`;
  const bytes = isConnect
    ? connectRefusal(400, text, requestId)
    : simplePage(400, "Bad address", text, requestId, false);
  return { status: 400, action: "error", bytes };
}

/** Too many failed sign-ins from this address (auth-limiter.ts). */
export function refuseAuthLimited(
  isConnect: boolean,
  requestId: string,
  retryAfter: number,
  keep: boolean,
): Refusal {
  const text = "Too many failed sign-in attempts from your address. Try again shortly.";
  const extra = `Retry-After: ${retryAfter}\r\n`;
  const bytes = isConnect
    ? connectRefusal(429, text, requestId, extra)
    : simplePage(429, "Too many sign-in attempts", text, requestId, keep, extra);
  return { status: 429, action: "auth", bytes };
}

/** Proxy-Authorization: Basic base64(user:password); null when absent or not Basic. */
export function parseBasic(value: string): { user: string; password: string } | null {
  if (value.length < 7 || value.slice(0, 6).toLowerCase() !== "basic ") return null;
  const decoded = Buffer.from(value.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
