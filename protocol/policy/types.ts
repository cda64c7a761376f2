// The contract between the policy engine (compile/evaluate) and its users: the master's
// simulate endpoint and the agent's proxy drivers.

export type Scheme = "http" | "https" | "connect";

/** What the proxy knows about one request when it asks the engine. */
export interface RequestFacts {
  /** Client IP address as text (IPv4 dotted, or IPv6; IPv4-mapped IPv6 is accepted). */
  client: string;
  /** Authenticated user name, if the request carried valid proxy credentials. */
  user?: string;
  groups?: readonly string[];
  method: string;
  /** "http" for absolute-form requests, "connect" for CONNECT tunnels. */
  scheme: Scheme;
  host: string;
  port: number;
  /** Path with query, if known (not for CONNECT). */
  path?: string;
  /** Epoch milliseconds; schedules are judged at this instant. */
  now: number;
}

export type DecisionReason = "access-list" | "auth-required" | "rule" | "default";

export interface TraceStep {
  /** "access", "auth", a rule id, or "default". */
  step: string;
  result: "match" | "no-match" | "skipped" | "denied" | "passed";
  detail: string;
}

export interface Decision {
  /** allow: forward; block: 403/block page; auth: 407 challenge. */
  action: "allow" | "block" | "auth";
  reason: DecisionReason;
  /** The deciding rule, when reason is "rule". */
  rule?: { id: string; name?: string; message?: string };
  /** Only filled when evaluate() is asked for a trace (the simulate endpoint); the proxy skips it. */
  trace?: TraceStep[];
}

export interface VerifiedUser {
  name: string;
  groups: readonly string[];
}

export interface CompiledPolicy {
  readonly authRequired: boolean;
  readonly realm: string;
  readonly includeQuery: boolean;
  readonly blockPage: { title: string; body: string };
  /** Synchronous and allocation-light: this runs on every proxied request. */
  evaluate(facts: RequestFacts, options?: { trace?: boolean }): Decision;
  /** Checks a user name and password against the policy's PBKDF2 hashes; successful checks are cached. */
  verifyCredentials(user: string, password: string): Promise<VerifiedUser | null>;
}
