import { app } from "./app";
import { runHousekeeping } from "./services/housekeeping";

export { IngestCoalescer } from "./durable/ingest-coalescer";
export { PolicyHub } from "./durable/policy-hub";

export default {
  fetch: app.fetch,
  scheduled: (_controller, env, ctx) => ctx.waitUntil(runHousekeeping(env)),
} satisfies ExportedHandler<Env>;
