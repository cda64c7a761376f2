// Types and helpers every policy tab uses.
import type { IssueIndex } from "../../routes/dashboard/policy-forms";

export type Obj = Record<string, unknown>;

export interface EditorState {
  policy: Obj;
  baseVersion: number | null;
  latestVersion: number | null;
  edited: boolean;
  updatedAt: number | null;
  updatedBy: string | null;
  issues: IssueIndex;
}

export const TABS = [
  ["rules", "Rules"],
  ["lists", "Lists"],
  ["schedules", "Schedules"],
  ["access", "Access list"],
  ["users", "Proxy users"],
  ["settings", "Default, block page, logging"],
  ["json", "JSON"],
] as const;

export type PolicyTab = (typeof TABS)[number][0];

export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const obj = (v: unknown): Obj => (v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {});
export const text = (v: unknown) => arr(v).map(String).join("\n");
