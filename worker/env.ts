declare global {
  namespace Cloudflare {
    interface GlobalProps {
      mainModule: typeof import("./index");
      durableNamespaces: "PolicyHub" | "IngestCoalescer";
    }
    interface Env {
      /**
       * Admin token for first setup (/setup) and scripts (Worker secret). Accepted on every
       * request until an admin switches it off (PUT /api/v1/settings/bootstrap-token, needs an
       * active admin user) or the secret is deleted; unset means no bootstrap token at all.
       */
      FLEETGATE_BOOTSTRAP_TOKEN?: string;
      /** base64url 32-byte Ed25519 seed that signs policy bundles (Worker secret). */
      FLEETGATE_SIGNING_KEY?: string;
      /** Milliseconds an ingest coalescer buffers chunks before flushing them to D1 (default 1000). */
      INGEST_FLUSH_MS?: string;
      /** Only in the test pool. */
      TEST_MIGRATIONS?: { name: string; queries: string[] }[];
    }
  }
}

export type Role = "admin" | "viewer";

export interface Actor {
  /** "bootstrap", "token:tok_…" or "user:usr_…"; written to the audit log. */
  id: string;
  name: string;
  role: Role;
  /** The user this actor acts for (a signed-in user, or an API token's owner); none for bootstrap. */
  userId?: string | null;
}

export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    actor: Actor;
    nodeId: string;
  };
}

export function intVar(value: string | undefined, fallback: number, min: number, max: number): number {
  const parsed = Number.parseInt(value ?? "", 10);
  if (!Number.isFinite(parsed)) return fallback;
  return Math.min(max, Math.max(min, parsed));
}
