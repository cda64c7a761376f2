// The Hono environment every route and middleware shares. The `Env` bindings come from
// worker-configuration.d.ts (`wrangler types`) and worker/env-vars.d.ts; vars are read through
// config(env) in worker/config.ts.

export type Role = "admin" | "viewer";

export interface Actor {
  /** "bootstrap", "token:tok_…" or "user:usr_…"; written to the audit log. */
  id: string;
  name: string;
  role: Role;
  /** The user this actor acts for (a signed-in user, or an API token's owner); none for bootstrap. */
  userId?: string | null;
}

/** What the agent protocol needs to know about an authenticated node (services/node-auth.ts). */
export interface AuthedNode {
  id: string;
  tokenHash: string;
  lastAddress: string | null;
  agentVersion: string;
  /** The node's site and since when (services/sites.ts); a move reaches the cache through the sweep. */
  site: string | null;
  siteSince: number | null;
}

export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    actor: Actor;
    /** Set by middleware/node-auth.ts on the agent protocol's authenticated routes. */
    nodeId: string;
    node: AuthedNode;
  };
}
