// Turns a validated Policy into the structures evaluate() walks: one DomainTable for every
// domain set (each referenced list once, plus each rule's own entries), merged CIDR sets,
// compiled schedules and regexes, and a frozen Decision per rule so the hot path allocates nothing.
// Pass only policies that validatePolicy accepted; compile throws on what validation rejects.

import { CidrSet } from "./cidr";
import { CredentialChecker } from "./credentials";
import { compileDestinations } from "./destinations";
import type { DomainTable } from "./domain-table";
import { buildDomainTable, DomainTableBuilder } from "./domain-table-builder";
import { Engine } from "./engine";
import { compileUrlRegex } from "./regex-safety";
import { type CompiledRule, SCHEME_CONNECT, SCHEME_HTTP, SCHEME_HTTPS } from "./rule";
import { compileSchedule } from "./schedule";
import type { Policy, PolicyRule } from "./schema";
import type { CompiledPolicy, Decision, RequestFacts } from "./types";

const SCHEME_BITS = { http: SCHEME_HTTP, https: SCHEME_HTTPS, connect: SCHEME_CONNECT } as const;

function ruleDecision(rule: PolicyRule): Decision {
  const summary: { id: string; name?: string; message?: string } = { id: rule.id };
  if (rule.name !== undefined) summary.name = rule.name;
  if (rule.message !== undefined) summary.message = rule.message;
  return Object.freeze({ action: rule.action, reason: "rule" as const, rule: Object.freeze(summary) });
}

function listOrThrow(policy: Policy, name: string) {
  const list = Object.hasOwn(policy.lists, name) ? policy.lists[name] : undefined;
  if (!list) throw new Error(`unknown list @${name}`);
  return list;
}

class ClientSets {
  private readonly byList = new Map<string, CidrSet>();
  constructor(private readonly policy: Policy) {}

  /**
   * A rule's clients: inline entries and node-wide lists in one set, each site-scoped list apart
   * (it counts only on its sites, decided when the node's site is set).
   */
  compileRule(entries: readonly string[]) {
    const scopedNames = entries
      .filter((e) => e.startsWith("@"))
      .map((e) => e.slice(1))
      .filter((name) => listOrThrow(this.policy, name).sites);
    if (scopedNames.length === 0) return { clients: this.compile(entries), scopedClients: null };
    const rest = entries.filter((e) => !(e.startsWith("@") && scopedNames.includes(e.slice(1))));
    return {
      // Empty, not null: a rule whose only clients are site-scoped lists matches no client off-site.
      clients: this.compile(rest),
      scopedClients: scopedNames.map((name) => ({
        sites: new Set(listOrThrow(this.policy, name).sites),
        set: this.compile([`@${name}`]),
      })),
    };
  }

  /** Merges inline entries and @list references into one set; a lone reference reuses the list's set. */
  compile(entries: readonly string[]): CidrSet {
    const refs = entries.filter((e) => e.startsWith("@")).map((e) => e.slice(1));
    const inline = entries.filter((e) => !e.startsWith("@"));
    if (refs.length === 1 && inline.length === 0) {
      const name = refs[0]!;
      let set = this.byList.get(name);
      if (!set) {
        set = CidrSet.parse(listOrThrow(this.policy, name).cidrs ?? []);
        this.byList.set(name, set);
      }
      return set;
    }
    return CidrSet.parse([...inline, ...refs.flatMap((name) => listOrThrow(this.policy, name).cidrs ?? [])]);
  }
}

export interface CompiledDomains {
  table: DomainTable;
  setNames: string[];
  ruleSets: (Int32Array | null)[];
}

/**
 * Assigns a set id to every referenced domain list and every rule with its own domain entries.
 * The expensive part of a compile (all of it for a large list): the agent runs it in a worker and
 * hands the result to compilePolicy.
 */
export function compileDomains(policy: Policy): CompiledDomains {
  const setNames: string[] = [];
  const listSets = new Map<string, number>();
  const ruleSets: (Int32Array | null)[] = [];
  let expected = 0;
  const plans = policy.rules.map((rule) => {
    const entries = rule.match.domains;
    if (!entries) return null;
    const refs = entries.filter((e) => e.startsWith("@")).map((e) => e.slice(1));
    const inline = entries.filter((e) => !e.startsWith("@"));
    for (const name of refs) {
      if (listSets.has(name)) continue;
      const domains = listOrThrow(policy, name).domains;
      if (!domains) throw new Error(`list @${name} has no domains`);
      listSets.set(name, setNames.length);
      setNames.push(`@${name}`);
      expected += domains.length;
    }
    expected += inline.length;
    return { refs, inline };
  });
  const builder = new DomainTableBuilder(expected);
  for (const [name, setId] of listSets) {
    for (const domain of policy.lists[name]!.domains!) {
      if (!builder.add(domain, setId)) throw new Error(`@${name}: not a domain: ${domain}`);
    }
  }
  plans.forEach((plan, index) => {
    if (!plan) {
      ruleSets.push(null);
      return;
    }
    const ids = new Set(plan.refs.map((name) => listSets.get(name)!));
    if (plan.inline.length > 0) {
      const setId = setNames.length;
      setNames.push(`rules[${index}].match.domains`);
      for (const domain of plan.inline) {
        if (!builder.add(domain, setId)) throw new Error(`rules[${index}]: not a domain: ${domain}`);
      }
      ids.add(setId);
    }
    ruleSets.push(Int32Array.from(ids));
  });
  return { table: setNames.length > 0 ? builder.build() : buildDomainTable([]), setNames, ruleSets };
}

function compileRule(rule: PolicyRule, domainSets: Int32Array | null, clients: ClientSets): CompiledRule {
  const m = rule.match;
  let schemes = 0;
  for (const scheme of m.schemes ?? []) schemes |= SCHEME_BITS[scheme];
  return {
    source: rule,
    enabled: rule.enabled !== false,
    decision: ruleDecision(rule),
    schemes,
    methods: m.methods ? m.methods.map((method) => method.toUpperCase()) : null,
    ports: m.ports ? new Set(m.ports) : null,
    users: m.users ? new Set(m.users) : null,
    groups: m.groups ? new Set(m.groups) : null,
    ...(m.clients ? clients.compileRule(m.clients) : { clients: null, scopedClients: null }),
    sites: m.sites ? new Set(m.sites) : null,
    domainSets,
    schedule: null,
    urlRegex: m.urlRegex !== undefined ? compileUrlRegex(m.urlRegex) : null,
  };
}

/** `domains`: compileDomains(policy) already done elsewhere (a worker); the lists' domains are then unused. */
export function compilePolicy(
  policy: Policy,
  domains: CompiledDomains = compileDomains(policy),
): CompiledPolicy {
  const clients = new ClientSets(policy);
  const rules = policy.rules.map((rule, index) => {
    const compiled = compileRule(rule, domains.ruleSets[index] ?? null, clients);
    const name = rule.match.schedule;
    if (name !== undefined) {
      const spec = Object.hasOwn(policy.schedules, name) ? policy.schedules[name] : undefined;
      if (!spec) throw new Error(`rules[${index}]: unknown schedule ${name}`);
      compiled.schedule = { name, compiled: compileSchedule(spec) };
    }
    return compiled;
  });
  return new Engine({
    authRequired: policy.auth?.required ?? false,
    realm: policy.auth?.realm ?? "Fleetgate",
    includeQuery: policy.logging.includeQuery,
    blockPage: Object.freeze({ ...policy.blockPage }),
    destinations: compileDestinations(policy, (entries) => clients.compile(entries)),
    defaultAction: policy.defaultAction,
    access: policy.access ? clients.compile(policy.access.clients) : null,
    accessEntries: policy.access?.clients ?? [],
    rules,
    domains: domains.table,
    setNames: domains.setNames,
    setSites: domains.setNames.map((name) => {
      const sites = name.startsWith("@") ? policy.lists[name.slice(1)]?.sites : undefined;
      return sites ? new Set(sites) : null;
    }),
    credentials: new CredentialChecker(policy.auth?.users ?? []),
  });
}

/** Compiles and evaluates once with a trace: the master's "what would happen" endpoint; `site` is the node's. */
export function simulate(policy: Policy, facts: RequestFacts, site: string | null = null): Decision {
  const compiled = compilePolicy(policy);
  compiled.setSite(site);
  return compiled.evaluate(facts, { trace: true });
}
