import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { requestId } from "hono/request-id";
import { secureHeaders } from "hono/secure-headers";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { AppError, type ErrorCode, errorBody } from "./errors";
import { apiAuth } from "./middleware/api-auth";
import { createRouter } from "./openapi";
import { accessRoutes } from "./routes/admin/access";
import { alertRoutes } from "./routes/admin/alerts";
import { fleetRoutes } from "./routes/admin/fleet";
import { metricsRoutes } from "./routes/admin/metrics";
import { nodeRoutes } from "./routes/admin/nodes";
import { policyRoutes } from "./routes/admin/policy";
import { reportRoutes } from "./routes/admin/reports";
import { requestRoutes } from "./routes/admin/requests";
import { rolloutRoutes } from "./routes/admin/rollouts";
import { siteRoutes } from "./routes/admin/sites";
import { agentRoutes } from "./routes/agent";
import { assetRoutes } from "./routes/dashboard/assets";
import { nodePages } from "./routes/dashboard/nodes";
import { overviewPages } from "./routes/dashboard/overview";
import { policyPages } from "./routes/dashboard/policy";
import { prefPages } from "./routes/dashboard/prefs";
import { reportPages } from "./routes/dashboard/reports";
import { requestPages } from "./routes/dashboard/requests";
import { rolloutPages } from "./routes/dashboard/rollouts";
import { settingsPages } from "./routes/dashboard/settings";
import { loginPages, logoutPages, setupPages } from "./routes/dashboard/sign-in";
import { pacRoutes } from "./routes/pac";

const KiB = 1024;
const MiB = 1024 * KiB;
// Policies carry domain lists of up to a few million entries; everything else is small.
const POLICY_BODY_LIMIT = 32 * MiB;
const ADMIN_BODY_LIMIT = 256 * KiB;

const STATUS_CODES: Partial<Record<number, ErrorCode>> = {
  400: "BAD_REQUEST",
  401: "UNAUTHORIZED",
  403: "FORBIDDEN",
  404: "NOT_FOUND",
  405: "METHOD_NOT_ALLOWED",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
};

export const app = createRouter();

// Our own id for every request; a client's X-Request-Id is never trusted (it would land in logs
// and the audit trail). The answer carries ours.
app.use("*", requestId({ headerName: "", generator: () => crypto.randomUUID() }));
app.use("*", async (c, next) => {
  c.header("X-Request-Id", c.get("requestId"));
  await next();
});
app.use("*", secureHeaders());

const limitBody = (maxSize: number, what: string) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new AppError("PAYLOAD_TOO_LARGE", `${what} are limited to ${maxSize / KiB} KiB`);
    },
  });
const policyBodyLimit = limitBody(POLICY_BODY_LIMIT, "admin policy requests");
const adminBodyLimit = limitBody(ADMIN_BODY_LIMIT, "requests here");
// Authenticate first (a bearer token (adminAuth) or, from the browser, a dashboard session
// cookie; neither reads the body), so an anonymous caller cannot make us buffer anything.
// A viewer's write is refused here too (middleware/can-write.ts canWrite).
app.use("/api/v1/*", apiAuth);
// Then a limit that fits the route and the caller: only an admin's policy calls carry whole
// policies; a viewer's validate/simulate is small like every other call.
app.use("/api/v1/*", (c, next) =>
  c.get("actor").role === "admin" &&
  (c.req.path.startsWith("/api/v1/policy/") || c.req.path === "/api/v1/rollouts")
    ? policyBodyLimit(c, next)
    : adminBodyLimit(c, next),
);

app.get("/healthz", (c) => c.json({ ok: true }));
app.route("/pac", pacRoutes);
app.route("/api/agent/v1", agentRoutes);
app.route("/api/v1", accessRoutes);
app.route("/api/v1", alertRoutes);
app.route("/api/v1", nodeRoutes);
app.route("/api/v1", fleetRoutes);
app.route("/api/v1", policyRoutes);
app.route("/api/v1", reportRoutes);
app.route("/api/v1", requestRoutes);
app.route("/api/v1", siteRoutes);
app.route("/api/v1", rolloutRoutes);
app.route("/api/v1", metricsRoutes);

// Dashboard: server-rendered pages; each section (routes/dashboard/app.tsx) carries its own CSP,
// session (middleware/session.ts) and write guard (middleware/write-guard.ts: CSRF + canWrite).
app.get("/", (c) => c.redirect("/overview", 303));
app.route("/assets", assetRoutes);
app.route("/setup", setupPages);
app.route("/login", loginPages);
app.route("/logout", logoutPages);
app.route("/overview", overviewPages);
app.route("/nodes", nodePages);
app.route("/policy", policyPages);
app.route("/reports", reportPages);
app.route("/requests", requestPages);
app.route("/rollouts", rolloutPages);
app.route("/settings", settingsPages);
app.route("/prefs", prefPages);

app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
  type: "http",
  scheme: "bearer",
  description: "An API token (fgt_…) or FLEETGATE_BOOTSTRAP_TOKEN",
});
app.doc31("/api/openapi.json", {
  openapi: "3.1.0",
  info: {
    title: "Fleetgate master API",
    version: "1.0.0",
    description: "Admin API (/api/v1, bearer token) and agent protocol v1 (/api/agent/v1, node token).",
  },
});

app.notFound((c) =>
  c.json(errorBody("NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`, c.get("requestId")), 404),
);

app.onError((error, c) => {
  const id = c.get("requestId") ?? "unknown";
  if (error instanceof AppError) {
    return c.json(
      errorBody(error.code, error.message, id, error.details),
      error.status as ContentfulStatusCode,
      error.headers,
    );
  }
  if (error instanceof HTTPException && error.status < 500) {
    const code = STATUS_CODES[error.status] ?? "BAD_REQUEST";
    return c.json(errorBody(code, error.message || code, id), error.status as ContentfulStatusCode);
  }
  console.error(
    JSON.stringify({ requestId: id, path: c.req.path, error: String(error), stack: (error as Error).stack }),
  );
  return c.json(errorBody("INTERNAL", "internal error; quote the request id when reporting it", id), 500);
});
