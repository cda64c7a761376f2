// Squid's access-log line for Fleetgate and its parser. Every field is one space-free token: numbers
// as Squid prints them, text URL-encoded (%#code), absent values as "-". So a line splits on spaces
// with no quoting rules, and a user name, path or rule id can never shift a column.

import { clipLogText, LOG_FIELD_MAX, type LogRecord } from "../../../protocol/wire";

export const LOG_VERSION = "fg1";

/** Columns in order (docs/squid.md, "Access log"). */
export const SQUID_LOGFORMAT = [
  LOG_VERSION,
  "%ts.%03tu", // start, epoch seconds.milliseconds
  "%tr", // duration, ms
  "%#>a", // client address
  "%#ue", // user: the one the helper verified (user=), never a failed login
  "%#>rm", // method
  "%#>rs", // scheme ("-" for CONNECT)
  "%#>rd", // host
  "%>rP", // port
  "%#>rp", // path with query ("-" for CONNECT)
  "%>Hs", // status sent to the client
  "%>st", // bytes received from the client
  "%<st", // bytes sent to the client
  "%#err_code", // Squid's error page id, "-" when it forwarded
  "%#{fg_action}note", // the helper's refusal kind: block | auth | error
  "%#{fg_rule}note", // the deciding rule id
  "%#{fg_request}note", // the request id the helper gave (shown on the block page)
  "%master_xaction",
].join(" ");

const COLUMNS = 18;

function text(token: string): string | undefined {
  if (token === "-" || token === "") return undefined;
  try {
    return decodeURIComponent(token);
  } catch {
    return token;
  }
}

function count(token: string): number {
  const n = Number(token);
  return Number.isFinite(n) && n >= 0 ? Math.floor(n) : 0;
}

/**
 * The action of a logged request: the helper's refusal kind when it refused; Squid's 407
 * challenge is "auth"; any other Squid error page is "block" for a 403 (squid.conf's own guards,
 * such as `CONNECT !SSL_ports`) and "error" otherwise (an unreachable origin, a timeout).
 */
function actionOf(
  status: number,
  errCode: string | undefined,
  fgAction: string | undefined,
): LogRecord["action"] {
  if (fgAction === "block" || fgAction === "auth" || fgAction === "error") return fgAction;
  if (status === 407) return "auth";
  if (errCode === undefined) return status >= 500 || status === 0 ? "error" : "allow";
  return status === 403 ? "block" : "error";
}

/** A connection that closed before sending a request (a port probe): Squid logs it, the built-in proxy does not. */
export const NO_REQUEST = "no-request";

/** One log line as a LogRecord; NO_REQUEST for a connection without a request; null for a line that is not ours. */
export function parseSquidLine(line: string, includeQuery: boolean): LogRecord | typeof NO_REQUEST | null {
  const f = line.split(" ");
  if (f.length !== COLUMNS || f[0] !== LOG_VERSION) return null;
  const startedSeconds = Number(f[1]);
  if (!Number.isFinite(startedSeconds) || startedSeconds <= 0) return null;
  const method = text(f[5]!) ?? "-";
  const isConnect = method === "CONNECT";
  const status = count(f[10]!);
  if (method === "-" && status === 0) return NO_REQUEST;
  const fgAction = text(f[14]!);
  const host = text(f[7]!) ?? "";
  const record: LogRecord = {
    ts: new Date(Math.round(startedSeconds * 1000)).toISOString(),
    client: clipLogText(text(f[3]!) ?? "-", LOG_FIELD_MAX.client),
    method: clipLogText(method, LOG_FIELD_MAX.method),
    scheme: isConnect ? "connect" : "http",
    host: clipLogText(host, LOG_FIELD_MAX.host),
    port: Math.min(65_535, count(f[8]!)),
    status: Math.min(999, status),
    action: actionOf(status, text(f[13]!), fgAction),
    bytesIn: count(f[11]!),
    bytesOut: count(f[12]!),
    durationMs: count(f[2]!),
    requestId: clipLogText(text(f[16]!) ?? `squid-${f[17]}`, LOG_FIELD_MAX.requestId),
  };
  const user = text(f[4]!);
  if (user !== undefined) record.user = clipLogText(user, LOG_FIELD_MAX.user);
  let path = isConnect ? undefined : text(f[9]!);
  if (path !== undefined) {
    if (!includeQuery) {
      const q = path.indexOf("?");
      if (q >= 0) path = path.slice(0, q);
    }
    record.path = clipLogText(path, LOG_FIELD_MAX.path);
  }
  const rule = text(f[15]!);
  if (rule !== undefined) record.rule = clipLogText(rule, LOG_FIELD_MAX.rule);
  return record;
}
