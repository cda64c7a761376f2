import { app } from "./app";
import { runHousekeeping } from "./services/housekeeping";
import { runScheduled } from "./services/scheduled";

export { IngestCoalescer } from "./durable/ingest-coalescer";
export { PolicyHub } from "./durable/policy-hub";

export default {
  fetch: app.fetch,
  scheduled: (controller, env, ctx) => ctx.waitUntil(runScheduled(controller.cron, env, runHousekeeping)),
} satisfies ExportedHandler<Env>;
