// The one file the agent writes for Squid (docs/squid.md, "The include file"). It holds no policy
// data: every decision goes to the external ACL helper, so a policy change never changes this file.
// It changes only with the realm (auth_param basic realm is static in Squid) or the node's own
// settings, and only then is Squid reconfigured.

import path from "node:path";
import { SQUID_LOGFORMAT } from "./log-format";
import type { SquidSettings } from "./settings";

export const INCLUDE_MARK = "# fleetgate-include v1";
/** The block page template (Squid error page), written next to the include. */
export const PAGE_NAME = "fleetgate-page.html";

/**
 * What the helper is asked, one token each, URL-escaped by Squid (logformat codes). `%>lp` is the
 * Squid port the client came in on: the destination guard refuses the node's own address at it (a
 * request loop). Squid 5 has no code for the address it will connect to (`%DST` is the requested
 * host, `%<a` is empty before a server connection), so the agent resolves names itself.
 */
export const DECIDE_FORMAT = "%>a %>rm %>rs %>rd %>rP %>rp %{Proxy-Authorization}>h %>lp";

export function pagePath(settings: SquidSettings): string {
  return path.join(path.dirname(settings.includePath), PAGE_NAME);
}

/** Squid's config tokenizer splits on whitespace: such paths cannot be written safely. */
function token(value: string, what: string): string {
  if (value === "" || /[\s"#]/.test(value)) {
    throw new Error(`${what} "${value}" contains a space, quote or '#': Squid cannot take it unquoted`);
  }
  return value;
}

/**
 * Squid looks error templates up under its error directories only; a path that climbs to / from
 * any of them reaches the agent's own template (Squid 5 has no absolute deny_info file names).
 */
function templateReference(file: string): string {
  return `${"../".repeat(16)}${path.resolve(file).slice(1)}`;
}

export function renderInclude(settings: SquidSettings, realm: string): string {
  const helper = [...settings.helperCommand, "--socket", settings.socketPath]
    .map((part) => token(part, "helper command"))
    .join(" ");
  const template = token(templateReference(pagePath(settings)), "include directory");
  const logPath = token(settings.accessLogPath, "squid.accessLogPath");
  const n = settings.helperChildren;
  const c = settings.helperConcurrency;
  // The realm is the rest of its line: no line breaks, and Squid's own limit.
  const safeRealm =
    realm
      .replace(/[\r\n\p{Cc}]+/gu, " ")
      .trim()
      .slice(0, 120) || "Fleetgate";
  return [
    INCLUDE_MARK,
    "# Written by fleetgate-agent (docs/squid.md). Do not edit: the agent rewrites this file, and",
    "# removing its include line from squid.conf (then `squid -k reconfigure`) turns Fleetgate off.",
    "",
    `logformat fleetgate ${SQUID_LOGFORMAT}`,
    `access_log stdio:${logPath} logformat=fleetgate`,
    "",
    // cache=0: no cached answers, so a new policy version decides the very next request.
    `external_acl_type fleetgate_decide ttl=0 negative_ttl=0 cache=0 concurrency=${c} children-max=${n} children-startup=1 children-idle=1 ${DECIDE_FORMAT} ${helper} decide`,
    `auth_param basic program ${helper} auth`,
    `auth_param basic children ${n} startup=1 idle=1 concurrency=${c}`,
    `auth_param basic realm ${safeRealm}`,
    // Squid's login cache only gates the 407 challenge; the decision helper checks every request.
    "auth_param basic credentialsttl 5 seconds",
    "",
    "acl fleetgate_decide external fleetgate_decide",
    "acl fleetgate_login proxy_auth REQUIRED",
    "acl fleetgate_wants_login note fg_action auth",
    "acl fleetgate_unavailable note fg_action error",
    "acl fleetgate_refused src all",
    `deny_info 503:${template} fleetgate_unavailable`,
    `deny_info ${template} fleetgate_refused`,
    "",
    "http_access allow fleetgate_decide",
    "http_access deny fleetgate_wants_login !fleetgate_login",
    "http_access deny fleetgate_unavailable",
    "http_access deny fleetgate_refused",
    "",
  ].join("\n");
}

/** The error page: every text comes from the helper's answer (notes), so it never needs a reload. */
export function renderPageTemplate(): string {
  return [
    "<!doctype html>",
    '<html lang="en"><head><meta charset="utf-8"><title>@Squid{%\'{fg_title}note}</title>',
    "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#222}",
    ".meta{color:#666;font-size:.9rem}</style></head><body><h1>@Squid{%'{fg_title}note}</h1>",
    "@Squid{%'{fg_html}note}",
    '<p class="meta">Request ID: <code>@Squid{%\'{fg_request}note}</code> · fleetgate</p>',
    "</body></html>",
    "",
  ].join("\n");
}
