// Every extension of the generated `Env` (worker-configuration.d.ts, from `wrangler types`) in
// one place: secrets and optional vars that wrangler.toml does not list, and the entry module for
// `ctx.exports`. No file imports this one, so `typeof import("./index")` here closes no cycle.
// Read them through `config(env)` (worker/config.ts), which validates each one.

declare namespace Cloudflare {
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
    /** Optional: the seed that will sign next; announced in every bundle so nodes can move their pin. */
    FLEETGATE_NEXT_SIGNING_KEY?: string;
    /** Milliseconds an ingest coalescer buffers chunks before flushing them to D1 (default 1000). */
    INGEST_FLUSH_MS?: string;
    TALLY_VERIFY_EVERY?: string;
    ALERT_RETRY_MS?: string;
    /** Minutes without a request after which a dashboard session ends (default 30). */
    SESSION_IDLE_MINUTES?: string;
    /** Hours after login after which a dashboard session ends (default 12). */
    SESSION_MAX_HOURS?: string;
    /** Days of audit log kept by the cron trigger (default 365). */
    AUDIT_RETENTION_DAYS?: string;
    // Cloudflare Access SSO, on when both the team domain and the audience are set.
    /** Team name (`acme`) or domain (`acme.cloudflareaccess.com`). */
    ACCESS_TEAM_DOMAIN?: string;
    /** The Access application's audience tag (AUD). */
    ACCESS_AUD?: string;
    /** Comma-separated emails or Access groups that get the admin role. */
    ACCESS_ADMINS?: string;
    /** Comma-separated emails or groups that get the viewer role; "*" for every Access user. */
    ACCESS_VIEWERS?: string;
    /** Only in the test pool: the migrations test/worker/setup applies. */
    TEST_MIGRATIONS?: { name: string; queries: string[] }[];
    /** Only in the test pool: replays one fuzz run (test/worker/fuzz.test.ts). */
    FUZZ_SEED?: string;
  }
}
