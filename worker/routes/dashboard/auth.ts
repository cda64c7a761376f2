// Moved to worker/middleware/ (session.ts, write-guard.ts); kept so pages written before the
// move still import from here. New code imports worker/middleware/session.ts.
export { auditOf, type DashContext, type DashEnv, type DashVariables } from "../../middleware/session";
