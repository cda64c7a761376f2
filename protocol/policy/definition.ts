// Policy language v1 (DESIGN.md "Policy language v1"). Only `rules` and `defaultAction` are
// required; every other section is optional:
//   access absent      → every client may use the proxy (present, it must list at least one entry)
//   auth absent        → no authentication (auth.required defaults to false)
//   lists / schedules  → default to {}
//   blockPage, logging → default texts / includeQuery false
//   destinations, tls  → the destination guard's defaults (protocol/policy/destinations.ts)
// Objects are strict: an unknown key is an error, so typos never silently do nothing.
// Names (lists, schedules, rule ids, groups) and user names are matched exactly (case-sensitive).
// Match fields that are present must list at least one value (an empty list would never match).

import { z } from "zod";
import { MAX_REGEX_LENGTH } from "./regex-safety";

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/i;
export const MAX_RULES = 10_000;
export const MAX_LIST_DOMAINS = 2_000_000;
export const MAX_ISSUES = 100;

const Name = z
  .string()
  .regex(NAME_PATTERN, "must be 1-64 letters, digits, '_' or '-', starting with a letter or digit");
// Basic auth splits user:password at the first colon, so a user name cannot contain one.
const UserName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[^\s:\p{Cc}]+$/u, "must not contain spaces, colons or control characters");
const Clock = z.string().regex(/^([01][0-9]|2[0-3]):[0-5][0-9]$/, 'must be "HH:MM" (00:00-23:59)');
const EndClock = z.string().regex(/^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$/, 'must be "HH:MM" (00:00-24:00)');
const DomainEntry = z.string().min(1).max(300);
const ClientEntry = z.string().min(1).max(100);

export const Day = z.enum(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]);

export const PolicyList = z.strictObject({
  domains: z.array(DomainEntry).max(MAX_LIST_DOMAINS).optional(),
  cidrs: z.array(ClientEntry).max(1_000_000).optional(),
  /** Site-scoped: the list exists only on nodes of these sites; elsewhere a reference to it matches nothing. */
  sites: z.array(Name).min(1).max(1_000).optional(),
});

export const Schedule = z.strictObject({
  tz: z.string().min(1).max(64),
  days: z.array(Day).min(1).max(7),
  from: Clock,
  to: EndClock,
});

export const RuleMatch = z.strictObject({
  domains: z.array(DomainEntry).min(1).max(MAX_LIST_DOMAINS).optional(),
  urlRegex: z.string().min(1).max(MAX_REGEX_LENGTH).optional(),
  clients: z.array(ClientEntry).min(1).max(1_000_000).optional(),
  users: z.array(UserName).min(1).max(10_000).optional(),
  groups: z.array(Name).min(1).max(1_000).optional(),
  methods: z
    .array(z.string().regex(/^[A-Za-z]{1,20}$/, "must be an HTTP method like GET or CONNECT"))
    .min(1)
    .max(32)
    .optional(),
  ports: z.array(z.number().int().min(1).max(65_535)).min(1).max(1_000).optional(),
  schemes: z
    .array(z.enum(["http", "https", "connect"]))
    .min(1)
    .max(3)
    .optional(),
  schedule: Name.optional(),
  /** The node's site (docs/fleet.md): the rule applies only on nodes of these sites. */
  sites: z.array(Name).min(1).max(1_000).optional(),
});

export const Rule = z.strictObject({
  id: Name,
  name: z.string().min(1).max(200).optional(),
  action: z.enum(["allow", "block"]),
  enabled: z.boolean().optional(),
  /** Absent or {} matches every request. */
  match: RuleMatch.prefault({}),
  message: z.string().max(2_000).optional(),
});

const PortEntry = z.union([
  z.number().int().min(1).max(65_535),
  z.string().regex(/^\d{1,5}-\d{1,5}$/, 'must be a port number or a range "low-high"'),
]);

/** Where the proxy may connect, judged on the resolved address (docs/policy.md "Destinations"). */
export const Destinations = z.strictObject({
  allow: z.array(ClientEntry).min(1).max(100_000).optional(),
  deny: z.array(ClientEntry).min(1).max(1_000_000).optional(),
  privateRanges: z.enum(["allow", "deny"]).optional(),
  connectPorts: z.array(PortEntry).min(1).max(1_000).optional(),
  httpPorts: z.array(PortEntry).min(1).max(1_000).optional(),
});

export const TlsSettings = z.strictObject({
  sniMismatch: z.enum(["log", "block"]).optional(),
});

export const PolicyUser = z.strictObject({
  name: UserName,
  passwordHash: z.string().min(1).max(512),
  groups: z.array(Name).max(100).default([]),
});

export const Policy = z.strictObject({
  access: z.strictObject({ clients: z.array(ClientEntry).min(1).max(100_000) }).optional(),
  auth: z
    .strictObject({
      required: z.boolean().default(false),
      realm: z
        .string()
        .min(1)
        .max(100)
        .regex(/^[^"\\\p{Cc}]+$/u, "must not contain quotes, backslashes or control characters")
        .default("Fleetgate"),
      users: z.array(PolicyUser).max(10_000).default([]),
    })
    .optional(),
  destinations: Destinations.optional(),
  tls: TlsSettings.optional(),
  lists: z.record(Name, PolicyList).default({}),
  schedules: z.record(Name, Schedule).default({}),
  rules: z.array(Rule).max(MAX_RULES),
  defaultAction: z.enum(["allow", "block"]),
  blockPage: z
    .strictObject({
      title: z.string().min(1).max(200).default("Blocked by policy"),
      body: z.string().max(10_000).default("This site is blocked by your organisation's web policy."),
    })
    .prefault({}),
  logging: z.strictObject({ includeQuery: z.boolean().default(false) }).prefault({}),
});

export type Policy = z.infer<typeof Policy>;
export type PolicyRule = z.infer<typeof Rule>;
export type PolicyInput = z.input<typeof Policy>;

export interface PolicyIssue {
  /** JSON path like `rules[2].match.domains[0]` or `schedules.work-hours.tz`; "" for the root. */
  path: string;
  message: string;
}

export type ValidationResult = { ok: true; policy: Policy } | { ok: false; issues: PolicyIssue[] };

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (typeof segment === "string" && /^[A-Za-z0-9_-]+$/.test(segment))
      out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}
