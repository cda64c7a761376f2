// What a request search asks for (RequestFilter), what it answers (RequestRow), and the test of
// one archived log line against a filter (a cheap substring "no" first, then the parsed record).
import type { LogRecord } from "../../protocol/wire";
import type { Db } from "../db/client";
import { nodes } from "../db/schema";

export type Action = LogRecord["action"];

export interface RequestFilter {
  from: number;
  to: number;
  node?: string;
  /** A site's nodes (its members now, as reports count them); not together with `node`. */
  site?: string;
  client?: string;
  user?: string;
  /** Suffix match on domain labels: `example.com` matches it and every subdomain. */
  host?: string;
  action?: Action;
  rule?: string;
  /** An exact status (403) or a class ("4xx" → 400–499). */
  status?: { min: number; max: number };
}

export interface RequestRow {
  ts: string;
  nodeId: string;
  node: string;
  client: string;
  user: string | null;
  method: string;
  scheme: LogRecord["scheme"];
  host: string;
  port: number;
  path: string | null;
  status: number;
  action: Action;
  rule: string | null;
  bytesIn: number;
  bytesOut: number;
  durationMs: number;
  requestId: string;
}

/** The time of the record in text[start, end) without a full JSON.parse: agents write `ts` first. */
export function recordTime(text: string, start: number, end: number): number {
  if (text.startsWith('{"ts":"', start)) {
    const close = text.indexOf('"', start + 7);
    if (close > start + 7 && close < end) return Date.parse(text.slice(start + 7, close));
  }
  try {
    return Date.parse((JSON.parse(text.slice(start, end)) as { ts: string }).ts);
  } catch {
    return Number.NaN;
  }
}

const PLAIN = /^[A-Za-z0-9._:@-]+$/;

/** A cheap substring test that can only say "no", then the exact test on the parsed record. */
export function matcherFor(f: RequestFilter) {
  const needles = [f.client, f.user, f.rule, f.action].filter(
    (v): v is string => v !== undefined && PLAIN.test(v),
  );
  const host = f.host
    ?.toLowerCase()
    .replace(/^\*?\./, "")
    .replace(/\.$/, "");
  return {
    maybe: (line: string) => needles.every((n) => line.includes(n)),
    exact: (r: LogRecord) =>
      (f.client === undefined || r.client === f.client) &&
      (f.user === undefined || r.user === f.user) &&
      (f.rule === undefined || r.rule === f.rule) &&
      (f.action === undefined || r.action === f.action) &&
      (f.status === undefined || (r.status >= f.status.min && r.status <= f.status.max)) &&
      (host === undefined ||
        (() => {
          const h = r.host.toLowerCase().replace(/\.$/, "");
          return h === host || h.endsWith(`.${host}`);
        })()),
  };
}

export async function hostnames(db: Db): Promise<Map<string, string>> {
  const rows = await db.select({ id: nodes.id, hostname: nodes.hostname }).from(nodes);
  return new Map(rows.map((r) => [r.id, r.hostname]));
}

export function toRow(r: LogRecord, nodeId: string, names: Map<string, string>): RequestRow {
  return {
    ts: r.ts,
    nodeId,
    node: names.get(nodeId) ?? nodeId,
    client: r.client,
    user: r.user ?? null,
    method: r.method,
    scheme: r.scheme,
    host: r.host,
    port: r.port,
    path: r.path ?? null,
    status: r.status,
    action: r.action,
    rule: r.rule ?? null,
    bytesIn: r.bytesIn,
    bytesOut: r.bytesOut,
    durationMs: r.durationMs,
    requestId: r.requestId,
  };
}
