import type { CompiledPolicy } from "../../protocol/policy/types";

export interface ActivePolicy {
  version: number;
  hash: string;
  compiled: CompiledPolicy;
}

/** A proxy implementation the agent drives: the built-in forward proxy or Squid. */
export interface ProxyDriver {
  readonly kind: "builtin" | "squid";
  /** Starts listening; resolves once the port accepts connections. */
  start(): Promise<void>;
  /** Swaps the policy for new requests without touching open connections; null means fail closed. */
  applyPolicy(policy: ActivePolicy | null): Promise<void>;
  /** Stops accepting, lets in-flight requests finish until the deadline, then closes the rest. */
  stop(deadlineMs: number): Promise<void>;
  /** "host:port" actually bound. */
  listenAddress(): string;
  version(): string;
  /** Open client connections and tunnels right now (metrics); drivers that cannot see them leave it out. */
  activity?(): { connections: number; tunnels: number };
}
