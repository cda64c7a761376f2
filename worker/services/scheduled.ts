import { evaluateRollouts } from "./rollout";

declare global {
  namespace Cloudflare {
    interface Env {
      /**
       * The cron expression (one of wrangler.toml's [triggers] crons) that only evaluates rollout
       * gates; every other trigger also runs housekeeping. Default "* * * * *".
       */
      ROLLOUT_CRON?: string;
    }
  }
}

/**
 * Cron: rollout gates on every trigger (the gate period is the shortest cron, a minute by
 * default; tests call it directly), housekeeping on every trigger but the rollout-only one.
 */
export async function runScheduled(cron: string, env: Env, housekeeping: (env: Env) => Promise<void>) {
  try {
    await evaluateRollouts(env);
  } catch (error) {
    console.error(JSON.stringify({ rolloutGatesFailed: String(error) }));
  }
  if (cron !== (env.ROLLOUT_CRON ?? "* * * * *")) await housekeeping(env);
}
