// A rule as evaluate() sees it, and the fields in the order they are checked (cheapest first).

import type { CidrSet } from "./cidr";
import type { UrlRegex } from "./regex-safety";
import type { CompiledSchedule } from "./schedule";
import type { PolicyRule } from "./schema";
import type { Decision, Scheme } from "./types";

export const SCHEME_HTTP = 1;
export const SCHEME_HTTPS = 2;
export const SCHEME_CONNECT = 4;

// A CONNECT tunnel is how browsers reach https:// through a forward proxy, so a rule written
// with "https" matches CONNECT to any port; "connect" matches the same tunnels, spelled as the
// proxy sees them. A proxy that reports scheme "https" (TLS-terminating) matches only "https".
export function schemeBits(scheme: Scheme): number {
  return scheme === "http"
    ? SCHEME_HTTP
    : scheme === "connect"
      ? SCHEME_CONNECT | SCHEME_HTTPS
      : SCHEME_HTTPS;
}

export interface CompiledRule {
  source: PolicyRule;
  enabled: boolean;
  decision: Decision;
  /** Bit mask of SCHEME_*; 0 when the rule does not restrict schemes. */
  schemes: number;
  methods: readonly string[] | null;
  ports: ReadonlySet<number> | null;
  users: ReadonlySet<string> | null;
  groups: ReadonlySet<string> | null;
  clients: CidrSet | null;
  /** Clients from site-scoped lists: each counts only on its sites (null: the rule refers to none). */
  scopedClients: readonly { sites: ReadonlySet<string>; set: CidrSet }[] | null;
  /** match.sites: the rule applies only on nodes of these sites (null: on every node). */
  sites: ReadonlySet<string> | null;
  /** Domain set ids (referenced lists and the rule's own entries) of which any must match. */
  domainSets: Int32Array | null;
  schedule: { name: string; compiled: CompiledSchedule } | null;
  urlRegex: UrlRegex | null;
}

/** What failed, as returned by the engine's rule check (checked in this order); 0 = every field matched. */
export const MATCHED = 0;
export const F_SCHEMES = 1;
export const F_METHODS = 2;
export const F_PORTS = 3;
export const F_USERS = 4;
export const F_GROUPS = 5;
export const F_CLIENTS = 6;
export const F_DOMAINS = 7;
export const F_SCHEDULE = 8;
export const F_URL_REGEX = 9;
export const F_SITES = 10;
