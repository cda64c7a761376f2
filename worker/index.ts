import { app } from "./app";
import { runScheduled } from "./services/housekeeping";

export { IngestCoalescer } from "./durable/ingest-coalescer";
export { PolicyHub } from "./durable/policy-hub";

export default {
  fetch: app.fetch,
  scheduled: (controller, env, ctx) => ctx.waitUntil(runScheduled(env, controller.cron)),
} satisfies ExportedHandler<Env>;
