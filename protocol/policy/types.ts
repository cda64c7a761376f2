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

/** A set of addresses as the guard asks it: IPv4 as one unsigned word, IPv6 as four. */
export interface AddressSet {
  containsV4(value: number): boolean;
  containsV6(words: Uint32Array): boolean;
}

/** The policy's `destinations` and `tls` sections, compiled (protocol/policy/destinations.ts). */
export interface CompiledDestinations {
  /** Addresses the guard may connect to even in a class it refuses by default (loopback, …). */
  readonly allow: AddressSet | null;
  /** Addresses never connected to, whatever else says. */
  readonly deny: AddressSet | null;
  /** 10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7: "allow" (the default) or "deny". */
  readonly privateRanges: "allow" | "deny";
  /** Per port 1-65535: bit 1 (PORT_HTTP) plain HTTP may go there, bit 2 (PORT_CONNECT) CONNECT may. */
  readonly ports: Uint8Array;
  /** A CONNECT whose TLS server name differs from its host: logged (default) or refused. */
  readonly sniMismatch: "log" | "block";
}

/** Asked for each credential check that needs a PBKDF2 derive (the cache missed): may it run? */
export interface CredentialGate {
  allowDerive(): boolean;
  /** The derive finished: whether the password was right. */
  derived(ok: boolean): void;
}

export interface CompiledPolicy {
  readonly authRequired: boolean;
  readonly realm: string;
  readonly includeQuery: boolean;
  readonly blockPage: { title: string; body: string };
  readonly destinations: CompiledDestinations;
  /** The node's site as last set (null: none known; rules with match.sites then never match). */
  readonly nodeSite: string | null;
  /**
   * One policy serves the fleet; the node's site decides which site rules and site-scoped lists
   * count. Set by the agent after compile and again when the master moves the node (docs/fleet.md).
   */
  setSite(site: string | null): void;
  /** The access list alone (true when there is none): checked before any password is hashed. */
  clientAllowed(client: string): boolean;
  /** Synchronous and allocation-light: this runs on every proxied request. */
  evaluate(facts: RequestFacts, options?: { trace?: boolean }): Decision;
  /**
   * Checks a user name and password against the policy's PBKDF2 hashes. Successes are cached for
   * the policy's life, failures briefly; `gate` may refuse a derive (then the answer is null).
   */
  verifyCredentials(user: string, password: string, gate?: CredentialGate): Promise<VerifiedUser | null>;
}
