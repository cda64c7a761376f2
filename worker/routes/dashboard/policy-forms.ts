// Form fields → policy pieces. The draft may end up invalid; validatePolicy says where.

import type { DraftPolicy } from "../../services/policy-draft";

export const lines = (text: string | undefined) =>
  (text ?? "")
    .split(/\r?\n/)
    .map((l) => l.replace(/#.*$/, "").trim())
    .filter(Boolean);

/** Domain lists as people paste them: one per line, commas, or hosts-file lines (`0.0.0.0 ads.example`). */
export function domainLines(text: string | undefined): string[] {
  const out: string[] = [];
  for (const line of lines(text)) {
    const words = line.split(/[\s,;]+/).filter(Boolean);
    const hosts = /^(0\.0\.0\.0|127\.0\.0\.1|::1?)$/.test(words[0] ?? "") ? words.slice(1) : words;
    for (const w of hosts) if (w !== "localhost") out.push(w.toLowerCase());
  }
  return [...new Set(out)];
}

const list = (text: string | undefined) => domainLines(text);
const plain = (text: string | undefined) => [
  ...new Set(
    lines(text)
      .flatMap((l) => l.split(/[\s,]+/))
      .filter(Boolean),
  ),
];

export function ruleFromForm(form: Record<string, string>, schemes: string[]) {
  const match: Record<string, unknown> = {};
  const domains = list(form.domains);
  if (domains.length) match.domains = domains;
  if (form.urlRegex?.trim()) match.urlRegex = form.urlRegex.trim();
  const clients = plain(form.clients);
  if (clients.length) match.clients = clients;
  const users = plain(form.users);
  if (users.length) match.users = users;
  const groups = plain(form.groups);
  if (groups.length) match.groups = groups;
  const methods = plain(form.methods).map((m) => m.toUpperCase());
  if (methods.length) match.methods = methods;
  const ports = plain(form.ports).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  if (ports.length) match.ports = ports;
  if (schemes.length) match.schemes = schemes;
  if (form.schedule?.trim()) match.schedule = form.schedule.trim();
  const rule: Record<string, unknown> = {
    id: (form.id ?? "").trim(),
    action: form.action === "allow" ? "allow" : "block",
  };
  if (form.name?.trim()) rule.name = form.name.trim();
  if (form.enabled !== "1") rule.enabled = false;
  rule.match = match;
  if (form.message?.trim()) rule.message = form.message.trim();
  return rule;
}

export const rulesOf = (policy: DraftPolicy): Record<string, unknown>[] =>
  Array.isArray(policy.rules) ? (policy.rules as Record<string, unknown>[]) : [];

export const recordOf = (policy: DraftPolicy, key: string): Record<string, Record<string, unknown>> => {
  const v = policy[key];
  return v && typeof v === "object" && !Array.isArray(v)
    ? (v as Record<string, Record<string, unknown>>)
    : {};
};

export interface IssueIndex {
  all: { path: string; message: string }[];
  /** Issues whose path starts with `prefix` (`rules[2]`, `lists.social`), with the rest of the path. */
  under(prefix: string): { rest: string; message: string }[];
  /** Messages for one field of a rule: `domains`, `id`, `schedule`… */
  field(prefix: string, field: string): string[];
}

export function indexIssues(issues: { path: string; message: string }[]): IssueIndex {
  const under = (prefix: string) =>
    issues
      .filter((i) => i.path === prefix || i.path.startsWith(`${prefix}.`) || i.path.startsWith(`${prefix}[`))
      .map((i) => ({ rest: i.path.slice(prefix.length).replace(/^\./, ""), message: i.message }));
  return {
    all: issues,
    under,
    field: (prefix, field) =>
      under(prefix)
        .filter((i) => i.rest.replace(/^match\./, "").split(/[.[]/)[0] === field)
        .map((i) => (i.rest ? `${i.rest}: ${i.message}` : i.message)),
  };
}
