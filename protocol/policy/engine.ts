// evaluate(): access list, then authentication, then rules top-down (first match wins), then the
// default action. The untraced path is the proxy's per-request hot path: it returns frozen,
// precomputed decisions and keeps per-request scratch (parsed client address, domain-set hits,
// the URL for urlRegex) on the instance, stamped with a request counter instead of reallocated.

import { type CidrSet, parseIpInto } from "./cidr";
import type { CredentialChecker } from "./credentials";
import type { DomainTable } from "./domain-table";
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
  MATCHED,
  schemeBits,
} from "./rule";
import { matchesSchedule } from "./schedule";
import { describeFailure, describeMatch, preview, type TraceContext } from "./trace";
import type {
  CompiledDestinations,
  CompiledPolicy,
  CredentialGate,
  Decision,
  RequestFacts,
  TraceStep,
  VerifiedUser,
} from "./types";

export interface EngineParts {
  authRequired: boolean;
  realm: string;
  includeQuery: boolean;
  blockPage: { title: string; body: string };
  destinations: CompiledDestinations;
  defaultAction: "allow" | "block";
  access: CidrSet | null;
  accessEntries: readonly string[];
  rules: CompiledRule[];
  domains: DomainTable;
  setNames: readonly string[];
  /** Per domain set: the sites of its site-scoped list, or null when it applies everywhere. */
  setSites: readonly (ReadonlySet<string> | null)[];
  credentials: CredentialChecker;
}

const ACCESS_DENIED: Decision = Object.freeze({ action: "block", reason: "access-list" });
const AUTH_REQUIRED: Decision = Object.freeze({ action: "auth", reason: "auth-required" });

export class Engine implements CompiledPolicy {
  readonly authRequired: boolean;
  readonly realm: string;
  readonly includeQuery: boolean;
  readonly blockPage: { title: string; body: string };
  readonly destinations: CompiledDestinations;
  private active: CompiledRule[];
  private site: string | null = null;
  /** Per domain set: 1 when its list is site-scoped to other sites than this node's. */
  private setOff: Uint8Array;
  private readonly defaultDecision: Decision;
  private readonly stamps: Uint32Array;
  private readonly clientWords = new Uint32Array(4);
  private requestId = 0;
  private domainsAt = 0;
  private clientAt = 0;
  private clientKind = 0;
  private urlAt = 0;
  private url = "";

  constructor(private readonly parts: EngineParts) {
    this.authRequired = parts.authRequired;
    this.realm = parts.realm;
    this.includeQuery = parts.includeQuery;
    this.blockPage = parts.blockPage;
    this.destinations = parts.destinations;
    this.active = [];
    this.setOff = new Uint8Array(parts.setSites.length);
    this.setSite(null);
    this.defaultDecision = Object.freeze({ action: parts.defaultAction, reason: "default" });
    this.stamps = new Uint32Array(Math.max(1, parts.domains.setCount));
  }

  get nodeSite(): string | null {
    return this.site;
  }

  /** The node's site: rules with match.sites and site-scoped lists are judged against it. */
  setSite(site: string | null): void {
    this.site = site;
    this.active = this.parts.rules.filter((rule) => rule.enabled && siteMatches(rule.sites, site));
    this.parts.setSites.forEach((sites, id) => {
      this.setOff[id] = sites !== null && !siteMatches(sites, site) ? 1 : 0;
    });
  }

  evaluate(facts: RequestFacts, options?: { trace?: boolean }): Decision {
    if (options?.trace) return this.traced(facts);
    this.begin();
    if (this.parts.access !== null && !this.clientIn(this.parts.access, facts)) return ACCESS_DENIED;
    if (this.authRequired && !facts.user) return AUTH_REQUIRED;
    const rules = this.active;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (this.check(rule, facts) === MATCHED) return rule.decision;
    }
    return this.defaultDecision;
  }

  clientAllowed(client: string): boolean {
    return this.parts.access === null || this.parts.access.contains(client);
  }

  verifyCredentials(user: string, password: string, gate?: CredentialGate): Promise<VerifiedUser | null> {
    return this.parts.credentials.verify(user, password, gate);
  }

  private begin(): void {
    this.requestId++;
    if (this.requestId === 0xffff_ffff) {
      this.stamps.fill(0);
      this.requestId = 1;
      this.domainsAt = this.clientAt = this.urlAt = 0;
    }
  }

  /** The first field of the rule that does not match (F_*), or MATCHED. */
  private check(rule: CompiledRule, facts: RequestFacts): number {
    if (rule.schemes !== 0 && (schemeBits(facts.scheme) & rule.schemes) === 0) return F_SCHEMES;
    if (rule.methods !== null && !matchesMethod(rule.methods, facts.method)) return F_METHODS;
    if (rule.ports !== null && !rule.ports.has(facts.port)) return F_PORTS;
    if (rule.users !== null && (facts.user === undefined || !rule.users.has(facts.user))) return F_USERS;
    if (rule.groups !== null && !anyGroup(rule.groups, facts.groups)) return F_GROUPS;
    if (rule.sites !== null && !siteMatches(rule.sites, this.site)) return F_SITES;
    if (rule.clients !== null && !this.clientsHit(rule, facts)) return F_CLIENTS;
    if (rule.domainSets !== null && !this.domainsHit(rule.domainSets, facts)) return F_DOMAINS;
    if (rule.schedule !== null && !matchesSchedule(rule.schedule.compiled, facts.now)) return F_SCHEDULE;
    if (rule.urlRegex !== null && !rule.urlRegex.test(this.urlOf(facts))) return F_URL_REGEX;
    return MATCHED;
  }

  private clientsHit(rule: CompiledRule, facts: RequestFacts): boolean {
    if (this.clientIn(rule.clients!, facts)) return true;
    const scoped = rule.scopedClients;
    if (scoped === null) return false;
    for (let k = 0; k < scoped.length; k++) {
      const piece = scoped[k]!;
      if (siteMatches(piece.sites, this.site) && this.clientIn(piece.set, facts)) return true;
    }
    return false;
  }

  private clientIn(set: CidrSet, facts: RequestFacts): boolean {
    if (this.clientAt !== this.requestId) {
      this.clientKind = parseIpInto(facts.client, this.clientWords);
      this.clientAt = this.requestId;
    }
    if (this.clientKind === 4) return set.containsV4(this.clientWords[0]!);
    return this.clientKind === 6 && set.containsV6(this.clientWords);
  }

  private domainsHit(sets: Int32Array, facts: RequestFacts): boolean {
    if (this.domainsAt !== this.requestId) {
      this.parts.domains.collect(facts.host, this.stamps, this.requestId);
      this.domainsAt = this.requestId;
    }
    for (let k = 0; k < sets.length; k++) {
      const id = sets[k]!;
      if (this.stamps[id] === this.requestId && this.setOff[id] === 0) return true;
    }
    return false;
  }

  /** `http://host:port/path` for requests, `host:port` for CONNECT; host lowercase without trailing dot. */
  private urlOf(facts: RequestFacts): string {
    if (this.urlAt !== this.requestId) {
      let host = facts.host.toLowerCase();
      if (host.endsWith(".")) host = host.slice(0, -1);
      if (host.includes(":") && !host.startsWith("[")) host = `[${host}]`;
      this.url =
        facts.scheme === "connect"
          ? `${host}:${facts.port}`
          : `${facts.scheme}://${host}:${facts.port}${facts.path ?? "/"}`;
      this.urlAt = this.requestId;
    }
    return this.url;
  }

  private traced(facts: RequestFacts): Decision {
    this.begin();
    const trace: TraceStep[] = [];
    const { access, accessEntries } = this.parts;
    const context: TraceContext = {
      facts,
      url: () => this.urlOf(facts),
      domainMatch: (sets) => this.domainMatch(sets, facts),
      setNames: this.parts.setNames,
      site: this.site,
    };
    if (access === null) {
      trace.push({
        step: "access",
        result: "passed",
        detail: "no access.clients list: every client may connect",
      });
    } else if (!this.clientIn(access, facts)) {
      const detail = `client ${facts.client} is not in access.clients (${preview(accessEntries)})`;
      trace.push({ step: "access", result: "denied", detail });
      return { ...ACCESS_DENIED, trace };
    } else {
      trace.push({ step: "access", result: "passed", detail: `client ${facts.client} is in access.clients` });
    }
    if (!this.authRequired) {
      trace.push({ step: "auth", result: "passed", detail: "authentication is not required" });
    } else if (!facts.user) {
      trace.push({
        step: "auth",
        result: "denied",
        detail: "auth.required is on and the request has no valid credentials",
      });
      return { ...AUTH_REQUIRED, trace };
    } else {
      trace.push({ step: "auth", result: "passed", detail: `authenticated as ${facts.user}` });
    }
    for (const rule of this.parts.rules) {
      if (!rule.enabled) {
        trace.push({ step: rule.source.id, result: "skipped", detail: "rule is disabled (enabled: false)" });
        continue;
      }
      const failed = this.check(rule, facts);
      if (failed !== MATCHED) {
        trace.push({
          step: rule.source.id,
          result: "no-match",
          detail: describeFailure(failed, rule, context),
        });
        continue;
      }
      trace.push({ step: rule.source.id, result: "match", detail: describeMatch(rule, context) });
      return { ...rule.decision, trace };
    }
    const detail = `no rule matched; defaultAction is ${this.defaultDecision.action}`;
    trace.push({ step: "default", result: "match", detail });
    return { ...this.defaultDecision, trace };
  }

  /** The pattern and set that made a domain field match (trace only). */
  private domainMatch(sets: Int32Array, facts: RequestFacts): string | null {
    const wanted = new Set(Array.from(sets).filter((id) => this.setOff[id] === 0));
    const found = this.parts.domains.explain(facts.host).find((m) => wanted.has(m.setId));
    return found ? `${found.pattern} (${this.parts.setNames[found.setId] ?? "?"})` : null;
  }
}

function siteMatches(sites: ReadonlySet<string> | null, site: string | null): boolean {
  return sites === null || (site !== null && sites.has(site));
}

function matchesMethod(methods: readonly string[], method: string): boolean {
  for (let i = 0; i < methods.length; i++) if (methods[i] === method) return true;
  const upper = method.toUpperCase();
  return upper !== method && methods.includes(upper);
}

function anyGroup(wanted: ReadonlySet<string>, groups: readonly string[] | undefined): boolean {
  if (groups === undefined) return false;
  for (let i = 0; i < groups.length; i++) if (wanted.has(groups[i]!)) return true;
  return false;
}
