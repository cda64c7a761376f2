// The answers the agent gives Squid's helpers, from the same compiled policy and the same steps as
// the built-in proxy (agent/proxy/builtin/client-session.ts): credentials from Proxy-Authorization
// checked against the policy's users, then evaluate(), then "never forward an anonymous client
// when the policy demands a login". Lines in and out are Squid's helper protocol with a channel id
// (concurrency=N): `<id> <fields…>` → `<id> OK|ERR key="value" …`.

import type { CompiledPolicy, Decision, VerifiedUser } from "../../../protocol/policy/types";
import { type DestinationGuard, normalizeHost } from "../builtin/destination-guard";
import { escapeHtml } from "../builtin/pages";
import { parseBasic } from "../builtin/refusals";
import type { ActivePolicy } from "../types";

const MAX_NOTE = 8_000;

/** A kv-pair value in Squid's quoted form: `"…"` with \ and " escaped, line breaks as \n. */
function quote(value: string): string {
  const v = value.length > MAX_NOTE ? value.slice(0, MAX_NOTE) : value;
  return `"${v.replace(/[\\"]/g, "\\$&").replace(/\r/g, "\\r").replace(/\n/g, "\\n")}"`;
}

/** Squid URL-escapes each value it sends; "-" stands for "not available". */
function field(token: string | undefined): string {
  return token === "-" ? "" : decodeToken(token);
}

function decodeToken(token: string | undefined): string {
  if (token === undefined) return "";
  try {
    return decodeURIComponent(token);
  } catch {
    return token;
  }
}

function refusal(
  id: string,
  action: "block" | "auth" | "error",
  title: string,
  html: string,
  requestId: string,
  rule?: string,
  user?: string,
): string {
  let line = `${id} ERR fg_action=${action} fg_request=${quote(requestId)} fg_title=${quote(title)} fg_html=${quote(html)}`;
  if (rule !== undefined) line += ` fg_rule=${quote(rule)}`;
  // user= goes to Squid's %un, so the access log names the user as the built-in proxy's does.
  if (user !== undefined) line += ` user=${quote(user)}`;
  return `${line}\n`;
}

function blockHtml(compiled: CompiledPolicy, decision: Decision, url: string): string {
  const rule = decision.rule;
  let html = `<p>${escapeHtml(compiled.blockPage.body)}</p>\n<p>Address: <code>${escapeHtml(url)}</code></p>`;
  if (rule?.message) html += `\n<p>${escapeHtml(rule.message)}</p>`;
  if (rule) {
    const label = rule.name ? `${rule.name} (${rule.id})` : rule.id;
    html += `\n<p class="meta">Rule: ${escapeHtml(label)}</p>`;
  }
  return html;
}

export interface DecideContext {
  policy: ActivePolicy | null;
  nextRequestId(): string;
  now(): number;
  /** The built-in proxy's destination guard, knowing the node's own addresses and this Squid port. */
  guard(listenPort: number): DestinationGuard;
}

/** `<id> client method scheme host port path proxy-authorization listen-port` → one answer line. */
export async function answerDecide(line: string, ctx: DecideContext): Promise<string> {
  const f = line.split(" ");
  const id = f[0] ?? "0";
  const requestId = ctx.nextRequestId();
  // Read once: a policy swap while credentials are checked does not mix two versions.
  const policy = ctx.policy;
  if (policy === null) {
    const text = "This proxy node has not received a policy yet, so it forwards nothing. Try again shortly.";
    return refusal(id, "error", "No policy yet", `<p>${escapeHtml(text)}</p>`, requestId);
  }
  const compiled = policy.compiled;
  const method = field(f[2]);
  const isConnect = method === "CONNECT";
  // Squid may hand an IPv6 literal in brackets; the guard and the engine see it bare.
  const rawHost = field(f[4]).replace(/^\[(.*)\]$/, "$1");
  // As the built-in proxy: any IPv4 spelling (2130706433, 0x7f.1) is judged as its dotted quad.
  const normal = normalizeHost(rawHost);
  if (normal === null) {
    const text = `${rawHost} ends in a number but is not a valid IPv4 address.`;
    return refusal(id, "error", "Bad address", `<p>${escapeHtml(text)}</p>`, requestId);
  }
  const host = normal;
  const port = Number(field(f[5])) || (isConnect ? 443 : 80);
  const path = isConnect ? undefined : field(f[6]) || "/";
  let user: VerifiedUser | null = null;
  if (compiled.authRequired) {
    const credentials = parseBasic(field(f[7]));
    if (credentials !== null) {
      user = await compiled.verifyCredentials(credentials.user, credentials.password).catch(() => null);
    }
  }
  const decision = compiled.evaluate({
    client: field(f[1]),
    user: user?.name,
    groups: user?.groups,
    method,
    scheme: isConnect ? "connect" : "http",
    host,
    port,
    path,
    now: ctx.now(),
  });
  let action = decision.action;
  if (action === "allow" && compiled.authRequired && user === null) action = "auth";
  const rule = decision.rule?.id;
  if (action === "allow") {
    // The same guard, after the same decision, as the built-in proxy's client-session.ts.
    const verdict = await ctx
      .guard(Number(field(f[8])) || 0)
      .judge(compiled.destinations, isConnect, host, port);
    if (!verdict.ok) {
      const refused = verdict.status === 403;
      const html = refused
        ? `<p>${escapeHtml(`This proxy does not connect there: ${verdict.text} (${verdict.rule})`)}</p>`
        : `<p>${escapeHtml(verdict.text)}</p>`;
      const title = refused ? "Destination not allowed" : "Origin unreachable";
      return refusal(id, refused ? "block" : "error", title, html, requestId, verdict.rule, user?.name);
    }
    let ok = `${id} OK fg_request=${quote(requestId)}`;
    if (rule !== undefined) ok += ` fg_rule=${quote(rule)}`;
    if (user !== null) ok += ` user=${quote(user.name)}`;
    return `${ok}\n`;
  }
  if (action === "auth") {
    const text = "This proxy needs your user name and password.";
    return refusal(
      id,
      "auth",
      "Proxy authentication required",
      `<p>${escapeHtml(text)}</p>`,
      requestId,
      rule,
    );
  }
  if (decision.reason === "access-list") {
    const text = "This proxy does not accept requests from your address.";
    return refusal(id, "block", "Access denied", `<p>${escapeHtml(text)}</p>`, requestId);
  }
  const url = isConnect ? `${host}:${port}` : `http://${host}${port === 80 ? "" : `:${port}`}${path ?? "/"}`;
  return refusal(
    id,
    "block",
    compiled.blockPage.title,
    blockHtml(compiled, decision, url),
    requestId,
    rule,
    user?.name,
  );
}

/** `<id> user password` (each URL-escaped by Squid) → `<id> OK` or `<id> ERR`. */
export async function answerAuth(line: string, policy: ActivePolicy | null): Promise<string> {
  const f = line.split(" ");
  const id = f[0] ?? "0";
  if (policy === null) return `${id} ERR message="no policy yet"\n`;
  // Here "-" is a real password, not Squid's "absent".
  const user = await policy.compiled
    .verifyCredentials(decodeToken(f[1]), decodeToken(f[2]))
    .catch(() => null);
  return user === null ? `${id} ERR\n` : `${id} OK\n`;
}
