import { app } from "./app";
import { runHousekeeping } from "./services/housekeeping";

export { PolicyHub } from "./durable/policy-hub";

export default {
  fetch: app.fetch,
  scheduled: (_controller, env, ctx) => ctx.waitUntil(runHousekeeping(env)),
} satisfies ExportedHandler<Env>;
