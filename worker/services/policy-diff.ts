import { canonicalJson } from "../../protocol/canonical";
import type { Policy } from "../../protocol/policy/schema";

export interface Change {
  kind: "added" | "removed" | "changed" | "moved";
  path: string;
  summary: string;
  before?: unknown;
  after?: unknown;
}

export interface SectionDiff {
  section: string;
  changes: Change[];
}

const SAMPLE = 20;
const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);

type Rule = Policy["rules"][number];

function diffRules(before: Rule[], after: Rule[]): Change[] {
  const changes: Change[] = [];
  const beforeById = new Map(before.map((r, i) => [r.id, { rule: r, index: i }]));
  const afterIds = new Set(after.map((r) => r.id));
  for (const [id, { rule }] of beforeById) {
    if (!afterIds.has(id))
      changes.push({ kind: "removed", path: `rules.${id}`, summary: `rule ${id} removed`, before: rule });
  }
  after.forEach((rule, index) => {
    const old = beforeById.get(rule.id);
    if (!old) {
      changes.push({
        kind: "added",
        path: `rules.${rule.id}`,
        summary: `rule ${rule.id} added at position ${index + 1}`,
        after: rule,
      });
      return;
    }
    if (!same(old.rule, rule)) {
      const fields = [...new Set([...Object.keys(old.rule), ...Object.keys(rule)])].filter(
        (k) => !same((old.rule as Record<string, unknown>)[k], (rule as Record<string, unknown>)[k]),
      );
      changes.push({
        kind: "changed",
        path: `rules.${rule.id}`,
        summary: `rule ${rule.id}: ${fields.join(", ")} changed`,
        before: old.rule,
        after: rule,
      });
    }
    if (old.index !== index) {
      changes.push({
        kind: "moved",
        path: `rules.${rule.id}`,
        summary: `rule ${rule.id} moved from ${old.index + 1} to ${index + 1}`,
      });
    }
  });
  return changes;
}

function diffEntries(path: string, before: string[] = [], after: string[] = []): Change[] {
  const b = new Set(before);
  const a = new Set(after);
  const added = after.filter((x) => !b.has(x));
  const removed = before.filter((x) => !a.has(x));
  const changes: Change[] = [];
  if (added.length) {
    changes.push({
      kind: "added",
      path,
      summary: `${added.length} added to ${path}`,
      after: added.slice(0, SAMPLE),
    });
  }
  if (removed.length) {
    changes.push({
      kind: "removed",
      path,
      summary: `${removed.length} removed from ${path}`,
      before: removed.slice(0, SAMPLE),
    });
  }
  return changes;
}

function diffLists(before: Policy["lists"] = {}, after: Policy["lists"] = {}): Change[] {
  const changes: Change[] = [];
  for (const name of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const b = before[name];
    const a = after[name];
    if (!a) changes.push({ kind: "removed", path: `lists.${name}`, summary: `list ${name} removed` });
    else if (!b) changes.push({ kind: "added", path: `lists.${name}`, summary: `list ${name} added` });
    else {
      changes.push(...diffEntries(`lists.${name}.domains`, b.domains, a.domains));
      changes.push(...diffEntries(`lists.${name}.cidrs`, b.cidrs, a.cidrs));
    }
  }
  return changes;
}

/** A per-section, human-readable diff: rules by id (added/removed/changed/moved), lists by entry. */
export function diffPolicies(before: Policy, after: Policy): SectionDiff[] {
  const sections: SectionDiff[] = [];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  for (const section of keys) {
    const b = (before as Record<string, unknown>)[section];
    const a = (after as Record<string, unknown>)[section];
    if (same(b, a)) continue;
    let changes: Change[];
    if (section === "rules") changes = diffRules(before.rules ?? [], after.rules ?? []);
    else if (section === "lists") changes = diffLists(before.lists, after.lists);
    else
      changes = [
        {
          kind: b === undefined ? "added" : a === undefined ? "removed" : "changed",
          path: section,
          summary: `${section} changed`,
          before: b,
          after: a,
        },
      ];
    if (changes.length) sections.push({ section, changes });
  }
  return sections;
}
