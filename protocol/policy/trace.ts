// Human-readable trace details for the simulate endpoint: why a rule did or did not match.
// Only the traced path calls these, so they may allocate freely.

import {
  type CompiledRule,
  F_CLIENTS,
  F_DOMAINS,
  F_GROUPS,
  F_METHODS,
  F_PORTS,
  F_SCHEDULE,
  F_SCHEMES,
  F_SITES,
  F_URL_REGEX,
  F_USERS,
} from "./rule";
import { DAYS, localTime } from "./schedule";
import type { RequestFacts } from "./types";

export interface TraceContext {
  facts: RequestFacts;
  url: () => string;
  domainMatch: (sets: Int32Array) => string | null;
  setNames: readonly string[];
  /** The node's site (CompiledPolicy.setSite). */
  site: string | null;
}

export function preview(values: readonly (string | number)[], max = 5): string {
  const shown = values.slice(0, max).join(", ");
  return values.length > max ? `${shown}, … ${values.length - max} more` : shown;
}

function clock(minutes: number): string {
  return `${String(Math.floor(minutes / 60)).padStart(2, "0")}:${String(minutes % 60).padStart(2, "0")}`;
}

function scheduleTime(rule: CompiledRule, facts: RequestFacts): string {
  const schedule = rule.schedule!;
  const local = localTime(schedule.compiled.tz, facts.now);
  const window = `${rule.source.match.schedule} (${schedule.compiled.tz} ${clock(schedule.compiled.from)}-${clock(schedule.compiled.to)})`;
  return `${window}; local time is ${DAYS[local.day]} ${clock(local.minutes)}`;
}

export function describeFailure(field: number, rule: CompiledRule, context: TraceContext): string {
  const { facts } = context;
  const m = rule.source.match;
  switch (field) {
    case F_SITES:
      return `sites: this node's site (${context.site ?? "none"}) is not one of ${preview(m.sites ?? [])}`;
    case F_SCHEMES:
      return `schemes: ${facts.scheme} is not one of ${preview(m.schemes ?? [])}`;
    case F_METHODS:
      return `methods: ${facts.method} is not one of ${preview(m.methods ?? [])}`;
    case F_PORTS:
      return `ports: ${facts.port} is not one of ${preview(m.ports ?? [])}`;
    case F_USERS:
      return facts.user === undefined
        ? "users: the request is not authenticated"
        : `users: ${facts.user} is not one of ${preview(m.users ?? [])}`;
    case F_GROUPS:
      return `groups: none of [${preview(facts.groups ?? [])}] is one of ${preview(m.groups ?? [])}`;
    case F_CLIENTS:
      return `clients: ${facts.client} is not in ${preview(m.clients ?? [])}`;
    case F_DOMAINS:
      return `domains: no entry matches ${facts.host}`;
    case F_SCHEDULE:
      return `schedule: outside ${scheduleTime(rule, facts)}`;
    case F_URL_REGEX:
      return `urlRegex: /${m.urlRegex}/ does not match ${context.url()}`;
    default:
      return "does not match";
  }
}

export function describeMatch(rule: CompiledRule, context: TraceContext): string {
  const { facts } = context;
  const m = rule.source.match;
  const parts: string[] = [];
  if (m.sites) parts.push(`sites: ${context.site}`);
  if (m.schemes) parts.push(`schemes: ${facts.scheme}`);
  if (m.methods) parts.push(`methods: ${facts.method}`);
  if (m.ports) parts.push(`ports: ${facts.port}`);
  if (m.users) parts.push(`users: ${facts.user}`);
  if (m.groups) parts.push(`groups: ${(facts.groups ?? []).filter((g) => rule.groups?.has(g)).join(", ")}`);
  if (m.clients) parts.push(`clients: ${facts.client} is in ${preview(m.clients)}`);
  if (rule.domainSets) {
    parts.push(`domains: ${facts.host} matches ${context.domainMatch(rule.domainSets) ?? "an entry"}`);
  }
  if (rule.schedule) parts.push(`schedule: inside ${scheduleTime(rule, facts)}`);
  if (m.urlRegex !== undefined) parts.push(`urlRegex: /${m.urlRegex}/ matches ${context.url()}`);
  return parts.length > 0 ? parts.join("; ") : "match is empty: the rule matches every request";
}
