// What a doctor check is given (DoctorContext) and what it reports (CheckResult); the checks in
// master-checks.ts, local-checks.ts and squid.ts all take and give these.
import type { FetchLike } from "../ports";
import type { Credentials, NodeConfig, RuntimeState } from "../state/schemas";
import type { StateDir } from "../state/state-dir";

export type CheckStatus = "ok" | "warn" | "fail" | "skip";

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  hint?: string;
}

export interface DoctorContext {
  state: StateDir;
  config: NodeConfig;
  credentials: Credentials | null;
  runtime: RuntimeState | null;
  fetch: FetchLike;
}

export function skipped(name: string, why: string): CheckResult {
  return { name, status: "skip", detail: `skipped: ${why}` };
}
