// Cross-checks that a schema cannot express: references between sections and the syntax of
// domains, CIDRs, regexes, time zones and password hashes. Each issue names its JSON path.

import { isValidCidr } from "./cidr";
import type { Policy, PolicyIssue } from "./definition";
import { parsePortEntry } from "./destinations";
import { parseDomainPattern } from "./domain-name";
import { parsePasswordHash } from "./password";
import { checkUrlRegex } from "./regex-safety";
import { isValidTimeZone } from "./schedule";

class IssueSink {
  readonly issues: PolicyIssue[] = [];
  constructor(private readonly limit: number) {}
  add(path: string, message: string): void {
    if (this.issues.length < this.limit) this.issues.push({ path, message });
  }
  get full(): boolean {
    return this.issues.length >= this.limit;
  }
}

type ListKind = "domains" | "cidrs";

function checkReference(
  policy: Policy,
  entry: string,
  kind: ListKind,
  path: string,
  sink: IssueSink,
  scoped: boolean,
): void {
  const name = entry.slice(1);
  const list = Object.hasOwn(policy.lists, name) ? policy.lists[name] : undefined;
  if (!list) {
    sink.add(path, `unknown list "@${name}"`);
  } else if (list.sites && !scoped) {
    // access and destinations are node-wide; a list that exists only on some sites would make them differ silently.
    sink.add(path, `list "@${name}" is site-scoped (lists.${name}.sites): only rules may refer to it`);
  } else if (!list[kind]) {
    const other = kind === "domains" ? "cidrs" : "domains";
    sink.add(path, `list "@${name}" has no ${kind} (it is a ${list[other] ? other : "empty"} list)`);
  }
}

const ENTRY_KINDS = {
  domains: {
    valid: (entry: string) => parseDomainPattern(entry) !== null,
    problem: "not a domain, =exact domain or *.subdomain pattern",
  },
  cidrs: { valid: isValidCidr, problem: "not an IPv4/IPv6 address or CIDR" },
} as const;

/** Checks domain or client entries; `@name` refers to a list of that kind where `refs` allows it. */
function checkEntries(
  policy: Policy,
  kind: keyof typeof ENTRY_KINDS,
  entries: readonly string[],
  path: string,
  sink: IssueSink,
  refs: boolean,
  scoped = false,
) {
  const { valid, problem } = ENTRY_KINDS[kind];
  for (let i = 0; i < entries.length && !sink.full; i++) {
    const entry = entries[i]!;
    if (entry.startsWith("@")) {
      if (refs) checkReference(policy, entry, kind, `${path}[${i}]`, sink, scoped);
      else sink.add(`${path}[${i}]`, "a list cannot refer to another list");
    } else if (!valid(entry)) {
      sink.add(`${path}[${i}]`, `${problem}: ${entry}`);
    }
  }
}

function checkSites(sites: readonly string[] | undefined, path: string, sink: IssueSink): void {
  const seen = new Set<string>();
  sites?.forEach((site, i) => {
    if (seen.has(site)) sink.add(`${path}[${i}]`, `duplicate site "${site}"`);
    seen.add(site);
  });
}

export function crossCheck(policy: Policy, limit: number): PolicyIssue[] {
  const sink = new IssueSink(limit);
  if (policy.access) checkEntries(policy, "cidrs", policy.access.clients, "access.clients", sink, true);

  const destinations = policy.destinations;
  if (destinations) {
    for (const key of ["allow", "deny"] as const) {
      const entries = destinations[key];
      if (entries) checkEntries(policy, "cidrs", entries, `destinations.${key}`, sink, true);
    }
    for (const key of ["connectPorts", "httpPorts"] as const) {
      destinations[key]?.forEach((entry, i) => {
        if (parsePortEntry(entry) === null)
          sink.add(`destinations.${key}[${i}]`, `not a port 1-65535 or a range low-high: ${entry}`);
      });
    }
  }

  const users = new Map<string, number>();
  policy.auth?.users.forEach((user, i) => {
    const first = users.get(user.name);
    if (first !== undefined)
      sink.add(`auth.users[${i}].name`, `duplicate user "${user.name}" (also auth.users[${first}])`);
    else users.set(user.name, i);
    if (!parsePasswordHash(user.passwordHash)) {
      sink.add(
        `auth.users[${i}].passwordHash`,
        "must be pbkdf2-sha256$<iterations 1000-100000>$<salt base64url, >= 8 bytes>$<hash base64url, 16-64 bytes>",
      );
    }
  });

  for (const [name, list] of Object.entries(policy.lists)) {
    checkSites(list.sites, `lists.${name}.sites`, sink);
    if (list.domains) checkEntries(policy, "domains", list.domains, `lists.${name}.domains`, sink, false);
    if (list.cidrs) checkEntries(policy, "cidrs", list.cidrs, `lists.${name}.cidrs`, sink, false);
  }

  for (const [name, schedule] of Object.entries(policy.schedules)) {
    if (!isValidTimeZone(schedule.tz))
      sink.add(`schedules.${name}.tz`, `unknown IANA time zone: ${schedule.tz}`);
  }

  const ids = new Map<string, number>();
  policy.rules.forEach((rule, i) => {
    if (sink.full) return;
    const path = `rules[${i}]`;
    const first = ids.get(rule.id);
    if (first !== undefined) sink.add(`${path}.id`, `duplicate rule id "${rule.id}" (also rules[${first}])`);
    else ids.set(rule.id, i);
    const match = rule.match;
    if (match.domains)
      checkEntries(policy, "domains", match.domains, `${path}.match.domains`, sink, true, true);
    if (match.clients)
      checkEntries(policy, "cidrs", match.clients, `${path}.match.clients`, sink, true, true);
    checkSites(match.sites, `${path}.match.sites`, sink);
    if (match.schedule !== undefined && !Object.hasOwn(policy.schedules, match.schedule)) {
      sink.add(`${path}.match.schedule`, `unknown schedule "${match.schedule}"`);
    }
    if (match.urlRegex !== undefined) {
      const problem = checkUrlRegex(match.urlRegex);
      if (problem) sink.add(`${path}.match.urlRegex`, problem);
    }
  });
  return sink.issues;
}
